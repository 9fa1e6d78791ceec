"""Data-parallel search and training: 2 CPU processes under torchrun, gloo backend."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import yaml

from gradnas.engine.files import RunDirError, load_checkpoint
from gradnas.parallel import SINGLE_PROCESS

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="this torch build has no gloo backend",
)

WORKER = Path(__file__).with_name("distributed_worker.py")
ALGORITHMS = ["darts", "darts2", "gdas", "pcdarts", "snas", "drnas", "spos"]
TINY = {
    "epochs": 2,
    "threads": 1,
    "plots": False,
    "data": {"batch_size": 4},
    "network": {"C": 4, "layers": 3, "steps": 2, "multiplier": 2},
}


def write_config(path: Path, **overrides) -> Path:
    cfg = {**TINY, **overrides}
    path.write_text(yaml.safe_dump(cfg))
    return path


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        *args,
    ]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def saved(out: Path, algorithm: str, rank: int) -> dict:
    return torch.load(out / f"{algorithm}-rank{rank}.pt", weights_only=True)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Three steps of every algorithm on 2 ranks (float32, real BatchNorm)."""
    out = tmp_path_factory.mktemp("ranks")
    config = write_config(out / "tiny.yaml")
    run(torchrun(str(WORKER), str(config), str(out), *ALGORITHMS))
    return out


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_ranks_hold_bit_identical_weights_alphas_and_buffers(two_ranks, algorithm):
    r0, r1 = saved(two_ranks, algorithm, 0), saved(two_ranks, algorithm, 1)
    # The ranks read different samples, so identical results come from the averaging, not from the
    # data.
    assert not torch.equal(r0["first_labels"], r1["first_labels"])
    for part in ("weights", "alphas", "buffers"):
        assert r0[part].keys() == r1[part].keys()
        for name in r0[part]:
            assert torch.equal(r0[part][name], r1[part][name]), (part, name)
    assert torch.equal(r0["rng"], r1["rng"])  # the same architecture samples from here on
    if algorithm != "spos":
        assert r0["alphas"]  # the check above covered alphas


@pytest.fixture(scope="module")
def float64_runs(tmp_path_factory):
    """darts, darts2 and gdas without batch statistics in float64: 2 ranks with
    batch 4, and one process with batch 8."""
    root = tmp_path_factory.mktemp("float64")
    ranks, single = root / "ranks", root / "single"
    ranks.mkdir(), single.mkdir()
    algorithms = ["darts", "darts2", "gdas"]
    run(
        torchrun(
            str(WORKER), str(write_config(root / "b4.yaml")), str(ranks), *algorithms, "--float64"
        )
    )
    config8 = write_config(root / "b8.yaml", data={"batch_size": 8})
    run(
        [sys.executable, str(WORKER), str(config8), str(single), *algorithms, "--float64"],
        env={k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")},
    )
    return ranks, single


@pytest.mark.parametrize("algorithm", ["darts", "darts2", "gdas"])
def test_two_ranks_with_batch_b_equal_one_process_with_batch_2b(float64_runs, algorithm):
    ranks, single = float64_runs
    r0, one = saved(ranks, algorithm, 0), saved(single, algorithm, 0)
    for part in ("weights", "alphas"):
        assert r0[part].keys() == one[part].keys()
        worst = max((r0[part][n] - one[part][n]).abs().max().item() for n in r0[part])
        assert worst <= 1e-10, (part, worst)
    # The alphas had gradients, so the comparison is not between two untouched initialisations.
    assert max(g.abs().max().item() for g in r0["alpha_grads"].values()) > 0


def processes_of(run_dir: Path) -> list[int]:
    """Live processes whose command line names ``run_dir`` (torchrun and its ranks)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                state = (entry / "stat").read_text().split(") ")[-1][:1]
            except OSError:
                continue
            if str(run_dir) in cmdline and state != "Z":
                pids.append(int(entry.name))
    return pids


def progress_of(run_dir: Path, name: str = "checkpoint.pt"):
    try:
        p = load_checkpoint(run_dir / name)["progress"]
    except (RunDirError, KeyError):  # not written yet, or between the two renames
        return None
    return p["epoch"], p["step"]


def final_state(run_dir: Path) -> dict:
    state = load_checkpoint(run_dir / "checkpoint.pt")
    return {
        "supernet": state["supernet"],
        "mutator": state["mutator"],
        "momentum": state["weight_optimizer"]["state"],
        "adam": state["arch_optimizer"]["state"],
    }


def assert_bit_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_bit_identical(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


# DrNAS' progressive schedule prunes and widens the supernet after epoch 2 of 4: killed after
# that, the resume rebuilds the new shape and wraps it in DDP again.
PROGRESSIVE = {
    "algorithm": "drnas",
    "epochs": 4,
    "drnas": {
        "progressive": True,
        "partial_channels": [4, 2],
        "num_ops": [7, 4],
        "warmup_fraction": 0.5,
    },
}


RESUME_CASES = {
    "darts": {"algorithm": "darts"},
    "gdas": {"algorithm": "gdas"},
    "drnas-progressive": PROGRESSIVE,
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted 2-process search of a RESUME_CASES entry, run once per module."""
    runs: dict[str, Path] = {}

    def get(case: str) -> tuple[Path, Path]:
        if case not in runs:
            root = tmp_path_factory.mktemp(case)
            # 719 training samples, 2 ranks x batch 64: 6 steps an epoch, a checkpoint after each.
            config = write_config(
                root / "tiny.yaml",
                **RESUME_CASES[case],
                checkpoint_every=1,
                data={"batch_size": 64},
            )
            run(
                torchrun(
                    "-m",
                    "gradnas",
                    "search",
                    "--config",
                    str(config),
                    "--no-progress",
                    "--out",
                    str(root / "full"),
                )
            )
            runs[case] = config
        return runs[case], runs[case].parent / "full"

    return get


@pytest.mark.parametrize(
    "case, kill_after, signum",
    [
        ("darts", (0, 3), signal.SIGKILL),
        ("gdas", (0, 3), signal.SIGKILL),
        ("drnas-progressive", (2, 2), signal.SIGKILL),
        ("darts", (0, 2), signal.SIGTERM),
    ],
)
def test_a_stopped_two_process_search_resumes_to_the_uninterrupted_result(
    tmp_path, uninterrupted, case, kill_after, signum
):
    """SIGKILL to torchrun and both ranks at once; or SIGTERM to torchrun alone,
    which passes it on: the ranks agree on one step, checkpoint it and stop."""
    config, full = uninterrupted(case)
    epochs = RESUME_CASES[case].get("epochs", TINY["epochs"])
    killed = tmp_path / "killed"
    search = ["-m", "gradnas", "search", "--config", str(config), "--no-progress", "--out"]
    proc = subprocess.Popen(
        torchrun(*search, str(killed)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        seen = progress_of(killed)
        if seen is not None and seen >= kill_after:
            break
        time.sleep(0.02)
    assert proc.poll() is None, (
        "the search finished before it could be killed; the test proves nothing"
    )
    if signum == signal.SIGKILL:
        # torchrun starts each rank in a session of its own: kill every process of this run.
        for pid in processes_of(killed):
            os.kill(pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signum)
    assert proc.wait(timeout=120) != 0
    deadline = time.monotonic() + 60
    while processes_of(killed) and time.monotonic() < deadline:  # the ranks end with their launcher
        time.sleep(0.1)
    assert not processes_of(killed), (
        "a rank outlived its launcher and could still write the run folder"
    )
    # Killed between its two renames, a run has only checkpoint.prev.pt, which --resume then loads.
    killed_at = progress_of(killed) or progress_of(killed, "checkpoint.prev.pt")
    assert killed_at is not None and kill_after <= killed_at < (epochs, 0)

    run(torchrun("-m", "gradnas", "search", "--resume", str(killed), "--no-progress"))
    assert_bit_identical(final_state(killed), final_state(full))
    for name in ("genotype.json", "alphas.json"):
        assert (killed / name).read_text() == (full / name).read_text()
    assert load_checkpoint(full / "checkpoint.pt")["world_size"] == 2


def test_train_runs_data_parallel_with_per_rank_random_state(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "epochs": 1,
                "threads": 1,
                "data": {"batch_size": 64},
                "network": {"C": 4, "layers": 3, "drop_path_prob": 0.1},
            }
        )
    )
    out = tmp_path / "run"
    proc = run(
        torchrun(
            "-m", "gradnas", "train", "--config", str(config), "--no-progress", "--out", str(out)
        )
    )
    assert proc.stdout.count("test accuracy") == 1  # only rank 0 prints
    assert (out / "result.json").is_file() and (out / "model.pt").is_file()
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    # Each rank draws its own augmentation and drop-path masks.
    assert not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])


def test_torchrun_needs_a_named_run_folder(tmp_path):
    config = write_config(tmp_path / "tiny.yaml")
    proc = subprocess.run(
        torchrun("-m", "gradnas", "search", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "name the run folder with --out" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_cuda_asked_for_without_a_gpu_is_one_clear_error(tmp_path, capsys, monkeypatch):
    from gradnas.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = write_config(tmp_path / "tiny.yaml")
    assert (
        main(
            ["search", "--config", str(config), "--device", "cuda", "--out", str(tmp_path / "run")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config key 'device'" in err and "no CUDA device" in err
    assert not (tmp_path / "run").exists()


def test_sync_batchnorm_on_cpus_is_refused_with_the_reason():
    from gradnas.config import ConfigError
    from gradnas.parallel import convert_sync_batchnorm

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    with pytest.raises(ConfigError, match="sync_bn.*CUDA"):
        convert_sync_batchnorm(net, torch.device("cpu"))
    assert type(net[1]) is torch.nn.BatchNorm2d  # left as it was


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sync_batchnorm_keeps_the_parameters_optimizers_hold():
    from gradnas.parallel import convert_sync_batchnorm

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).cuda()
    weight = net[1].weight
    convert_sync_batchnorm(net, torch.device("cuda", 0))
    assert isinstance(net[1], torch.nn.SyncBatchNorm) and net[1].weight is weight


def test_ranks_that_read_different_checkpoints_stop_with_an_error(tmp_path):
    from gradnas.engine.common import Progress, check_same_position
    from gradnas.engine.files import RunDirError

    class TwoRanks:  # rank 1 read a checkpoint one step further on
        def gather(self, position):
            return [position, (position[0], position[1] + 1)]

    with pytest.raises(RunDirError, match=r"different checkpoints .*\[\(1, 3\), \(1, 4\)\]"):
        check_same_position(TwoRanks(), Progress(epoch=1, step=3), tmp_path)
    # one process: nothing to compare
    check_same_position(SINGLE_PROCESS, Progress(epoch=1, step=3), tmp_path)
