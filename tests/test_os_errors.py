"""A refused write and an insistent Ctrl-C: one line, the files intact, the run resumable."""

import errno
import os
import subprocess
import uuid

import pytest
import yaml

from gradnas import atomic
from gradnas.cli import main
from gradnas.engine.files import load_checkpoint

TINY = {
    "epochs": 2,
    "threads": 1,
    "plots": False,
    "data": {"batch_size": 256},
    "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
}


def search(tmp_path, out, **overrides):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, **overrides}))
    return main(["search", "--config", str(config), "--out", str(out), "--no-progress"])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("gradnas: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_refused_checkpoint_write_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path, capsys, monkeypatch, code
):
    real_replace, calls = os.replace, []

    def replace(src, dst):
        if str(dst).endswith("checkpoint.pt") and ".tmp" in os.path.basename(src):
            calls.append(dst)
            if len(calls) == 2:  # the second epoch's checkpoint
                raise OSError(code, os.strerror(code), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)  # the one atomic writer
    out = tmp_path / "run"
    assert search(tmp_path, out) == 2
    err = one_error_line(capsys)
    assert "checkpoint.pt" in err and os.strerror(code) in err
    assert load_checkpoint(out / "checkpoint.pt")["progress"]["epoch"] == 1  # the last good one
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert main(["search", "--resume", str(out), "--no-progress"]) == 0


def test_a_full_disk_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    real_open = open

    class FullFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # the one atomic writer (gradnas.atomic) opens its temporary file with open()
    monkeypatch.setattr(
        atomic, "open", lambda path, mode: FullFile(real_open(path, mode)), raising=False
    )
    assert search(tmp_path, tmp_path / "run") == 2
    err = one_error_line(capsys)
    assert f"cannot write '{tmp_path / 'run'}/" in err and "No space left on device" in err


@pytest.fixture
def read_only_folder(tmp_path):
    """A real read-only file system: a read-only bind mount (as root; skipped where refused)."""
    source, target = tmp_path / "source", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    (source / "existing").mkdir()
    if subprocess.run(
        ["mount", "--bind", str(source), str(target)], capture_output=True
    ).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        ro = ["mount", "-o", "remount,bind,ro", str(target)]
        if subprocess.run(ro, capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        probe = target / f"probe-{uuid.uuid4().hex}"
        with pytest.raises(OSError):
            probe.write_text("x")
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.mark.parametrize("where", ["new", "existing"])
def test_out_on_a_read_only_file_system_is_one_line(tmp_path, capsys, read_only_folder, where):
    out = read_only_folder / where
    assert search(tmp_path, out) == 2
    err = one_error_line(capsys)
    assert str(out) in err and "Read-only file system" in err


def test_a_second_ctrl_c_leaves_a_resumable_folder_and_prints_the_resume_command(
    tmp_path, capsys, monkeypatch
):
    from gradnas.algorithms.darts import Darts

    real_step, calls = Darts.step, []

    def step(self, train_batch, val_batch):
        calls.append(1)
        if len(calls) == 5:  # epoch 2, step 2: an insistent Ctrl-C raises at once
            raise KeyboardInterrupt
        return real_step(self, train_batch, val_batch)

    monkeypatch.setattr(Darts, "step", step)
    out = tmp_path / "run"
    assert search(tmp_path, out) == 130
    err = capsys.readouterr().err
    assert f"continue with: gradnas search --resume {out}" in err and "Traceback" not in err
    monkeypatch.undo()
    assert main(["search", "--resume", str(out), "--no-progress"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["progress"]["epoch"] == 2
