"""Any nn.Module built from gradnas mutables goes through the whole engine.

The supernet lives outside the package (tests/spaces/tiny_space.py) and is
named on the command line as ``--space FILE.py:FACTORY``. Each method searches
the same module; a search killed with SIGKILL mid-epoch and resumed ends
bit-identical to an uninterrupted one; ``gradnas train RUN_DIR`` retrains the
derived network and ``gradnas export`` writes ONNX that computes what PyTorch
computes.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from gradnas.cli import main
from gradnas.engine.files import RunDirError, load_checkpoint

SPACE_FILE = Path(__file__).parent / "spaces" / "tiny_space.py"
SPACE = f"{SPACE_FILE}:build"
ALGORITHMS = ("darts", "darts2", "gdas", "snas", "drnas", "spos", "random")
# 719 training samples / batch 256 -> 3 steps per epoch; a checkpoint after every step.
TINY = {
    "epochs": 2,
    "threads": 1,
    "checkpoint_every": 1,
    "plots": False,
    "data": {"batch_size": 256},
    "spos": {"population": 4, "generations": 2, "parents": 2},
    "random": {"trials": 3, "epochs": 2},
}


def write_config(path, **overrides):
    path.write_text(yaml.safe_dump({**TINY, **overrides}))
    return path


def search(config, out, *extra):
    return main(
        [
            "search",
            "--config",
            str(config),
            "--space",
            SPACE,
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ]
    )


def assert_bit_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_bit_identical(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def position(run_dir):
    """(epoch, step, finished trials) of the latest checkpoint, or None."""
    try:
        state = load_checkpoint(run_dir / "checkpoint.pt")
    except (RunDirError, KeyError):
        return None
    p = state["progress"]
    return p["epoch"], p["step"], len(state.get("trials", ()))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sigkill_mid_epoch_and_resume_is_bit_identical(tmp_path, algorithm):
    config = write_config(tmp_path / "tiny.yaml", algorithm=algorithm)
    full = tmp_path / "full"
    assert search(config, full) == 0
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gradnas",
            "search",
            "--config",
            str(config),
            "--space",
            SPACE,
            "--out",
            str(run_dir),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Mid-epoch for the supernet methods (epoch 2, step 1); random search trains no
    # supernet and is killed after its first trial.
    wanted = (0, 0, 1) if algorithm == "random" else (1, 1, 0)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        seen = position(run_dir)
        if seen is not None and seen >= wanted:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the search finished before it could be killed; nothing is proven"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "arch.json").exists() or algorithm not in ("spos", "random")

    assert main(["search", "--resume", str(run_dir), "--no-progress"]) == 0
    resumed, uninterrupted = (
        load_checkpoint(run_dir / "checkpoint.pt"),
        load_checkpoint(full / "checkpoint.pt"),
    )
    for key in ("supernet", "mutator", "weight_optimizer", "arch_optimizer", "algorithm"):
        assert_bit_identical(resumed[key], uninterrupted[key])

    def without_time(trials):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in trials or ()]

    assert without_time(resumed.get("trials")) == without_time(uninterrupted.get("trials"))
    assert (run_dir / "arch.json").read_text() == (full / "arch.json").read_text()
    arch = json.loads((run_dir / "arch.json").read_text())
    assert set(arch) == {"block1", "block2", "merge"} and len(arch["merge"]["chosen"]) == 2


def test_each_method_weighs_the_same_module_its_own_way(tmp_path):
    """One user module, the mutable kinds each method trains it with."""
    from gradnas.config import SearchConfig
    from gradnas.methods import build_supernet
    from gradnas.mutables import DifferentiableEdge, DirichletOP, GumbelEdge, GumbelOP, OneShotOP
    from gradnas.mutables.one_shot_edge import OneShotEdge

    expected = {
        "darts": (DifferentiableEdge, "DifferentiableOP"),
        "gdas": (GumbelEdge, GumbelOP),
        "snas": (GumbelEdge, GumbelOP),
        "drnas": (DifferentiableEdge, DirichletOP),
        "spos": (OneShotEdge, OneShotOP),
    }
    for algorithm, (edge_type, op_type) in expected.items():
        cfg = SearchConfig(algorithm=algorithm, space=SPACE)
        supernet, _ = build_supernet(cfg, 1, 10)
        assert type(supernet.merge) is edge_type, algorithm
        op = supernet.block1
        assert (type(op).__name__ if isinstance(op_type, str) else type(op)) == op_type
    gdas, _ = build_supernet(SearchConfig(algorithm="gdas", space=SPACE), 1, 10)
    snas, _ = build_supernet(SearchConfig(algorithm="snas", space=SPACE), 1, 10)
    assert gdas.block1.hard and not snas.block1.hard


def test_train_run_dir_retrains_and_export_matches_pytorch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    config = write_config(tmp_path / "tiny.yaml", algorithm="gdas", checkpoint_every=0)
    assert search(config, tmp_path / "search") == 0
    arch = json.loads((tmp_path / "search" / "arch.json").read_text())
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text(yaml.safe_dump({"epochs": 1, "threads": 1, "data": {"batch_size": 256}}))
    out = tmp_path / "train"
    argv = ["train", "--genotype", str(tmp_path / "search"), "--config", str(train_cfg)]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "arch.json").read_text()) == arch
    result = json.loads((out / "result.json").read_text())
    from gradnas.engine.train import load_trained

    model, _ = load_trained(out)
    # The fixed network keeps exactly the chosen choices of every decision.
    for name in ("block1", "block2", "merge"):
        assert list(getattr(model, name).choices) == sorted(
            arch[name]["chosen"], key=list(getattr(model, name).full_choice_names).index
        )
    assert result["parameters"] == sum(p.numel() for p in model.parameters())
    assert main(["export", str(out)]) == 0
    x = torch.randn(5, 1, 8, 8)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert abs(onnx_out - expected).max() < 1e-4


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("tests/spaces/missing.py:build", "no file"),
        (f"{SPACE_FILE}:nope", "has no attribute 'nope'"),
        ("no_such_package.mod:build", "no module named 'no_such_package'"),
        (f"{SPACE_FILE}:raises", "the factory raised RuntimeError: no GPU in this factory"),
        (f"{SPACE_FILE}:not_a_module", "not an nn.Module"),
        (f"{SPACE_FILE}:no_mutable", "holds no gradnas mutable"),
        (f"{SPACE_FILE}:wrong_shape", "forward fails on a batch of the data's shape (2, 1, 8, 8)"),
        (f"{SPACE_FILE}:NOT_CALLABLE", "not a factory"),
        ("nonsense", "unknown search space 'nonsense'"),
    ],
)
def test_a_bad_space_is_one_line_and_writes_nothing(tmp_path, capsys, space, message):
    out = tmp_path / "run"
    argv = ["search", "--config", str(write_config(tmp_path / "c.yaml")), "--space", space]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradnas: error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("algorithm", "extra", "message"),
    [
        ("pcdarts", {}, "pcdarts needs partial channel connections and edge normalisation alphas"),
        (
            "drnas",
            {"drnas": {"progressive": True}, "space": SPACE},
            "the progressive schedule searches the DARTS space only",
        ),
    ],
)
def test_methods_needing_structure_the_space_lacks_are_refused(
    tmp_path, capsys, algorithm, extra, message
):
    out = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", algorithm=algorithm, **extra)
    assert search(config, out) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_space_reference_is_recorded_for_resume_from_another_folder(tmp_path, monkeypatch):
    """A relative file reference is stored absolute, so --resume works from anywhere."""
    monkeypatch.chdir(SPACE_FILE.parent)
    config = write_config(tmp_path / "c.yaml", epochs=1, algorithm="darts")
    out = tmp_path / "run"
    assert (
        main(
            [
                "search",
                "--config",
                str(config),
                "--space",
                "tiny_space.py:build",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    record = json.loads((out / "space.json").read_text())
    assert record["space"] == SPACE and record["image_shape"] == [1, 8, 8]
    assert yaml.safe_load((out / "config.yaml").read_text())["space"] == SPACE
