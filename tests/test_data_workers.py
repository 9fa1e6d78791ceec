"""DataLoader workers change nothing: same batches, same search, exact resume after SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml
from test_resume import assert_bit_identical, final_state, progress_of

from gradnas.cli import main

# 719 training samples / batch 256 -> 3 steps per epoch; a checkpoint after every step;
# augmentation on, so the random crops must come out the same with workers as without.
TINY = {
    "epochs": 2,
    "threads": 1,
    "checkpoint_every": 1,
    "plots": False,
    "data": {"batch_size": 256, "augment": True, "cutout": 2},
    "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
}


def write_config(path, workers):
    path.write_text(yaml.safe_dump({**TINY, "data": {**TINY["data"], "num_workers": workers}}))
    return path


@pytest.fixture(scope="module")
def without_workers(tmp_path_factory):
    root = tmp_path_factory.mktemp("w0")
    cfg = write_config(root / "tiny.yaml", 0)
    assert main(["search", "--config", str(cfg), "--out", str(root / "run"), "--no-progress"]) == 0
    return root / "run"


def test_search_with_two_workers_is_bit_identical_to_none(tmp_path, without_workers):
    cfg = write_config(tmp_path / "tiny.yaml", 2)
    assert (
        main(["search", "--config", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    )
    for a, b in zip(final_state(tmp_path / "run"), final_state(without_workers)):
        assert_bit_identical(a, b)


def test_resume_with_workers_after_sigkill_is_bit_identical(tmp_path, without_workers):
    cfg = write_config(tmp_path / "tiny.yaml", 2)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradnas", "search", "--config", str(cfg), "--out", str(run_dir),
         "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        position = progress_of(run_dir)
        if position is not None and position >= (0, 2):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the search finished before the kill; the test proves nothing"
    proc.kill()
    proc.wait(timeout=60)
    assert progress_of(run_dir) < (2, 0)
    assert main(["search", "--resume", str(run_dir), "--no-progress"]) == 0
    for resumed, full in zip(final_state(run_dir), final_state(without_workers)):
        assert_bit_identical(resumed, full)
