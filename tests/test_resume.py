"""Exact resume after SIGKILL, checkpoint fallback, and the NaN guard."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from gradnas.cli import main
from gradnas.engine.files import RunDirError, load_checkpoint

# 719 training samples / batch 256 -> 3 steps per epoch; a checkpoint after every step.
TINY = {
    "epochs": 2,
    "threads": 1,
    "checkpoint_every": 1,
    "plots": False,
    "data": {"batch_size": 256},
    "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
}


def write_config(path, **overrides):
    cfg = {**TINY, **overrides}
    path.write_text(yaml.safe_dump(cfg))
    return path


def final_state(run_dir):
    state = load_checkpoint(run_dir / "checkpoint.pt")
    return state["supernet"], state["mutator"], state["weight_optimizer"]["state"]


def assert_bit_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_bit_identical(a[key], b[key])
        else:
            assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    config = write_config(root / "tiny.yaml")
    assert (
        main(["search", "--config", str(config), "--out", str(root / "run"), "--no-progress"]) == 0
    )
    return root / "run"


def progress_of(run_dir):
    try:
        p = load_checkpoint(run_dir / "checkpoint.pt")["progress"]
    except (RunDirError, KeyError):  # not written yet, or between the two renames
        return None
    return p["epoch"], p["step"]


@pytest.mark.parametrize("kill_after", [(0, 2), (1, 1)])
def test_resume_after_sigkill_is_bit_identical(tmp_path, uninterrupted, kill_after):
    config = write_config(tmp_path / "tiny.yaml")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gradnas",
            "search",
            "--config",
            str(config),
            "--out",
            str(run_dir),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        seen = progress_of(run_dir)
        if seen is not None and seen >= kill_after:
            break
        time.sleep(0.02)
    assert proc.poll() is None, (
        "the search finished before it could be killed; the test proves nothing"
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = progress_of(run_dir)
    assert killed_at is not None and killed_at < (2, 0)

    assert main(["search", "--resume", str(run_dir), "--no-progress"]) == 0
    for resumed, full in zip(final_state(run_dir), final_state(uninterrupted)):
        assert_bit_identical(resumed, full)
    assert (run_dir / "genotype.json").read_text() == (uninterrupted / "genotype.json").read_text()
    assert (run_dir / "alphas.json").read_text() == (uninterrupted / "alphas.json").read_text()


@pytest.mark.parametrize("damage", ["truncate", "random_bytes"])
def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, uninterrupted, capsys, damage):
    config = write_config(tmp_path / "tiny.yaml", epochs=1)
    run_dir = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(run_dir), "--no-progress"]) == 0
    data = (run_dir / "checkpoint.pt").read_bytes()
    if damage == "truncate":  # as by a full disk
        (run_dir / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    else:  # the same size, overwritten with noise
        (run_dir / "checkpoint.pt").write_bytes(random.Random(0).randbytes(len(data)))
    assert main(["search", "--resume", str(run_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint.pt" in out and "corrupt" in out and "previous checkpoint" in out


def test_both_checkpoints_corrupt_is_one_clear_error(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    (run_dir / "checkpoint.prev.pt").write_bytes(b"nor this")
    assert main(["search", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradnas: error:") and "checkpoint.prev.pt" in err and "corrupt" in err


def test_resume_of_a_folder_without_checkpoint_names_it(tmp_path, capsys):
    assert main(["search", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and "does not exist" in err


def test_resume_rejects_flags_that_would_change_the_run(tmp_path, capsys):
    assert main(["search", "--resume", str(tmp_path), "--epochs", "5"]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_resume_warns_when_the_thread_count_differs(tmp_path, capsys):
    config = write_config(tmp_path / "tiny.yaml", epochs=1)
    run_dir = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(run_dir), "--no-progress"]) == 0
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state["threads"] = 7
    torch.save(state, run_dir / "checkpoint.pt")
    capsys.readouterr()
    assert main(["search", "--resume", str(run_dir), "--no-progress"]) == 0
    assert "checkpointed with 7 threads" in capsys.readouterr().out


def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, monkeypatch
):
    from gradnas.algorithms.darts import Darts

    real_step, calls = Darts.step, []

    def step_that_fails_at_the_fifth_call(self, train_batch, val_batch):
        metrics = real_step(self, train_batch, val_batch)
        calls.append(1)
        if len(calls) == 5:  # epoch 2, step 2
            metrics["val_loss"] = float("nan")
        return metrics

    monkeypatch.setattr(Darts, "step", step_that_fails_at_the_fifth_call)
    config = write_config(tmp_path / "tiny.yaml")
    run_dir = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(run_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "non-finite values at epoch 2, step 2: val_loss" in err and "Traceback" not in err
    progress = load_checkpoint(run_dir / "checkpoint.pt")["progress"]
    assert (progress["epoch"], progress["step"]) == (1, 1)  # the step before the failure


def test_non_finite_weights_are_never_checkpointed(tmp_path, capsys, monkeypatch):
    from gradnas.algorithms.darts import Darts

    real_step, calls = Darts.step, []

    def step_that_breaks_a_weight_at_the_second_call(self, train_batch, val_batch):
        # finite losses, computed before the update
        metrics = real_step(self, train_batch, val_batch)
        calls.append(1)
        if len(calls) == 2:
            with torch.no_grad():
                next(self.supernet.parameters())[0] = float("inf")
        return metrics

    monkeypatch.setattr(Darts, "step", step_that_breaks_a_weight_at_the_second_call)
    config = write_config(tmp_path / "tiny.yaml")
    run_dir = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(run_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "non-finite values at epoch 1, step 2 (weight " in err
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert (state["progress"]["epoch"], state["progress"]["step"]) == (0, 1)
    assert all(torch.isfinite(t).all() for t in state["supernet"].values() if t.is_floating_point())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_a_checkpoint_at_the_next_step_and_resume_matches(
    tmp_path, uninterrupted, sig
):
    config = write_config(tmp_path / "tiny.yaml")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gradnas",
            "search",
            "--config",
            str(config),
            "--out",
            str(run_dir),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and progress_of(run_dir) is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the search finished before the signal; the test proves nothing"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig
    assert "checkpoint written" in err and "Traceback" not in err
    # the hint is the command as it was started here, ready to paste
    assert f"continue with: python -m gradnas search --resume {run_dir}" in err
    assert progress_of(run_dir) < (2, 0)
    assert main(["search", "--resume", str(run_dir), "--no-progress"]) == 0
    for resumed, full in zip(final_state(run_dir), final_state(uninterrupted)):
        assert_bit_identical(resumed, full)
