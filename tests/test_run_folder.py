"""One owner per run folder: the lock, the marker, what --force removes and refuses."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gradnas.cli import main
from gradnas.engine.files import RunDirError, load_checkpoint
from gradnas.engine.run_folder import LOCK, MARKER, RunFolder, is_run_file

# 719 training samples / batch 256 -> 3 steps per epoch.
TINY = {
    "epochs": 1,
    "threads": 1,
    "plots": False,
    "data": {"batch_size": 256},
    "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
}


def write_config(path, **overrides):
    path.write_text(yaml.safe_dump({**TINY, **overrides}))
    return path


def search(config, out, *flags):
    return main(["search", "--config", str(config), "--out", str(out), "--no-progress", *flags])


@pytest.fixture
def finished(tmp_path):
    """A finished tiny search with seed 0 at tmp_path/run."""
    config = write_config(tmp_path / "tiny.yaml")
    assert search(config, tmp_path / "run") == 0
    return tmp_path / "run"


def test_force_removes_the_old_checkpoint_so_a_kill_cannot_resume_the_old_run(
    tmp_path, finished, monkeypatch
):
    """--force, then a death before the first checkpoint: --resume starts the *new* run."""
    from gradnas.algorithms.darts import Darts

    def killed(self, train_batch, val_batch):
        raise RuntimeError("killed before the first checkpoint")

    monkeypatch.setattr(Darts, "step", killed)
    config = write_config(tmp_path / "seed1.yaml", seed=1, network={**TINY["network"], "C": 4})
    with pytest.raises(RuntimeError, match="killed"):
        search(config, finished, "--force")
    assert not (finished / "checkpoint.pt").exists()
    assert not (finished / "checkpoint.prev.pt").exists()
    assert not (finished / "metrics.csv").exists()
    monkeypatch.undo()
    assert main(["search", "--resume", str(finished), "--no-progress"]) == 0
    state = load_checkpoint(finished / "checkpoint.pt")
    assert state["config"]["seed"] == 1 and state["config"]["network"]["C"] == 4


def test_force_removes_every_gradnas_file_the_new_run_does_not_write(tmp_path, finished):
    (finished / "trials.csv").write_text("left by a random search\n")
    (finished / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    (finished / "tensorboard").mkdir()
    (finished / "tensorboard" / "events.out.tfevents.1.host.1.0").write_bytes(b"x")
    assert search(write_config(tmp_path / "tiny.yaml"), finished, "--force") == 0
    names = {p.name for p in finished.iterdir()}
    assert "trials.csv" not in names and "tensorboard" not in names
    assert not [n for n in names if n.endswith(".tmp")]
    assert all(is_run_file(n) for n in names)


def test_force_refuses_a_folder_that_is_not_a_gradnas_run_folder(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.yaml").write_text("my own notes\n")
    assert search(write_config(tmp_path / "tiny.yaml"), folder, "--force") == 2
    err = capsys.readouterr().err
    assert err.startswith("gradnas: error:") and "not one" in err and MARKER in err
    assert (folder / "config.yaml").read_text() == "my own notes\n"
    assert {p.name for p in folder.iterdir()} <= {"config.yaml", LOCK}


def test_force_refuses_a_run_folder_that_also_holds_other_files(tmp_path, finished, capsys):
    (finished / "notes.txt").write_text("keep me\n")
    before = {p.name: p.read_bytes() for p in finished.iterdir() if p.name != LOCK}
    assert search(write_config(tmp_path / "tiny.yaml"), finished, "--force") == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "only files gradnas writes" in err
    assert {p.name: p.read_bytes() for p in finished.iterdir() if p.name != LOCK} == before


def test_force_never_removes_the_config_it_reads(tmp_path, finished, capsys):
    """`gradnas search --config RUN/config.yaml --out RUN --force` would clear its own input."""
    text = (finished / "config.yaml").read_text()
    assert search(finished / "config.yaml", finished, "--force") == 2
    assert "which this run reads" in capsys.readouterr().err
    assert (finished / "config.yaml").read_text() == text


def test_train_force_into_the_current_folder_keeps_the_users_files(tmp_path, capsys, monkeypatch):
    """The issue's case: `gradnas train --config config.yaml --out . --force` in a user's folder."""
    monkeypatch.chdir(tmp_path)
    user = {"config.yaml": "epochs: 1\nthreads: 1\n", "genotype.json": "{}", "model.pt": "mine"}
    for name, text in user.items():
        (tmp_path / name).write_text(text)
    assert main(["train", "--config", "config.yaml", "--out", ".", "--force"]) == 2
    assert capsys.readouterr().err.startswith("gradnas: error:")
    assert {name: (tmp_path / name).read_text() for name in user} == user


def test_force_refuses_the_home_folder(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"  # a stand-in: a broken check must not clear the real one
    home.mkdir()
    (home / MARKER).write_text("{}")  # even one that looks like a run folder
    monkeypatch.setenv("HOME", str(home))
    assert search(write_config(tmp_path / "tiny.yaml"), home, "--force") == 2
    err = capsys.readouterr().err
    assert err.startswith("gradnas: error: refusing to clear the home folder")
    assert {p.name for p in home.iterdir()} == {MARKER}


def test_the_file_system_root_is_never_a_run_folder(monkeypatch):
    """Checked on the path alone, before the lock file is created."""

    def no_lock(self):
        raise AssertionError("the check came too late: the lock file would be created in /")

    monkeypatch.setattr(RunFolder, "_lock", no_lock)
    for force in (False, True):
        with pytest.raises(RunDirError, match="file-system root"):
            RunFolder("/").claim_new(force, "search")


def test_an_empty_out_is_refused(tmp_path, capsys):
    assert search(write_config(tmp_path / "tiny.yaml"), "") == 2
    assert "empty path" in capsys.readouterr().err


def test_a_second_process_on_a_locked_folder_is_told_who_holds_it(tmp_path, finished, capsys):
    with RunFolder(finished) as holder:
        holder.claim_existing()
        assert main(["search", "--resume", str(finished), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"in use by pid {os.getpid()} on host {socket.gethostname()}" in err
        assert search(write_config(tmp_path / "tiny.yaml"), finished, "--force") == 2
        assert "in use by pid" in capsys.readouterr().err
    # released: the folder can be resumed again
    assert main(["search", "--resume", str(finished), "--no-progress"]) == 0


def test_resume_removes_stale_temporary_files(finished):
    stale = finished / ".checkpoint.pt.x1y2z3.tmp"
    stale.write_bytes(b"left by a killed writer")
    assert main(["search", "--resume", str(finished), "--no-progress"]) == 0
    assert not stale.exists()


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert search(write_config(tmp_path / "tiny.yaml"), tmp_path / "run") == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()}
    assert modes["checkpoint.pt"] == modes["config.yaml"] == modes["metrics.csv"] == 0o640


def _folder_is_one_run(out: Path) -> None:
    """Every derived file of ``out`` agrees with its checkpoint and its config.yaml."""
    state = load_checkpoint(out / "checkpoint.pt")
    assert yaml.safe_load((out / "config.yaml").read_text()) == state["config"]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    history = state["progress"]["history"]
    assert [float(r["val_acc"]) for r in rows] == [h["val_acc"] for h in history]
    alphas = json.loads((out / "alphas.json").read_text())
    assert alphas["history"] == state["progress"]["alpha_history"]
    assert all(is_run_file(p.name) for p in out.iterdir())


REFUSALS = (
    "is in use by pid",
    "already exists and is not empty",
    "holds neither",
    "does not exist",
)


def test_runs_racing_on_one_folder_are_refused_or_leave_one_consistent_run(tmp_path):
    """Fresh runs (two seeds), a --force and a --resume start at once on one folder."""
    out = tmp_path / "run"
    configs = [write_config(tmp_path / f"seed{s}.yaml", seed=s) for s in range(3)]
    base = [sys.executable, "-m", "gradnas", "search", "--no-progress"]
    commands = [
        [*base, "--config", str(configs[0]), "--out", str(out)],
        [*base, "--config", str(configs[1]), "--out", str(out)],
        [*base, "--config", str(configs[2]), "--out", str(out), "--force"],
        [*base, "--resume", str(out)],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished_runs = 0
    for _ in range(2):  # a second round races on the folder the first one left
        procs = [
            subprocess.Popen(
                c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
            )
            for c in commands
        ]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        for code, err in results:
            assert "Traceback" not in err, err
            assert code == 0 or (code == 2 and any(r in err for r in REFUSALS)), err
        finished_runs += sum(code == 0 for code, _ in results)
        if (out / "checkpoint.pt").exists():
            _folder_is_one_run(out)
        else:  # every run was refused (the resume took the lock first): nothing was written
            assert not (out / "config.yaml").exists()
    assert finished_runs >= 1


def test_a_forked_child_does_not_keep_the_lock_after_its_parent_is_gone(tmp_path):
    # DataLoader workers are forked; a worker outliving a killed run must not lock its folder.
    import multiprocessing

    from gradnas.engine import run_folder
    from gradnas.engine.run_folder import RunFolder

    folder = tmp_path / "run"
    folder.mkdir()
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()

    def child() -> None:  # a worker that lives on after the parent lets go of the lock
        ready.set()
        done.wait(30)

    holder = RunFolder(folder)
    holder._lock()
    worker = ctx.Process(target=child)
    worker.start()
    assert ready.wait(30)
    # A killed parent: the kernel closes its descriptor, with no unlock call.
    os.close(holder._fd)
    run_folder._HELD.discard(holder._fd)
    try:
        second = RunFolder(folder)
        second._lock()  # must not be refused while the forked child is alive
        assert worker.is_alive()
        second.release()
    finally:
        done.set()
        worker.join(30)
