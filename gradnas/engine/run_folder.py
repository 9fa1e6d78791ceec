"""One owner per run folder: the lock, the marker, and what ``--force`` may remove.

A run holds an advisory ``fcntl.flock`` on ``RUN_DIR/.gradnas.lock`` for its
whole life (search, train, resume); the lock file holds the owner's pid and
host, so a second process on the same folder stops with an error naming them.
The kernel drops the lock when its holder exits, even on ``kill -9``, so a
killed run never leaves a folder locked.

``RUN_DIR/.gradnas-run`` marks a folder as a gradnas run folder. ``--force``
clears only such a folder, and only when every file in it is one gradnas
writes (:func:`is_run_file`); anything else (a user's notes, a config the
run reads, a folder of another program) makes it refuse, naming the file.
It also refuses ``/``, the home folder and the current folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import os
import shutil
import signal
import socket
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

from .files import RunDirError, write_text
from .interrupt import Interrupted

LOCK = ".gradnas.lock"
MARKER = ".gradnas-run"

# Every name a gradnas run writes into its folder (search, random search,
# train, plot, export), as glob patterns. ``--force`` removes these and
# nothing else; a tmp pattern covers the atomic writers' temporary files.
RUN_FILE_PATTERNS = (
    LOCK,
    MARKER,
    "config.yaml",
    "data.json",
    "space.json",
    "metrics.csv",
    "alphas.json",
    "trials.csv",
    "genotype.json",
    "genotype.txt",
    "arch.json",
    "arch.txt",
    "checkpoint.pt",
    "checkpoint.prev.pt",
    "model.pt",
    "model.onnx",
    "model.pt2",
    "result.json",
    "alphas_normal.png",
    "alphas_normal.svg",
    "alphas_reduce.png",
    "alphas_reduce.svg",
    "curves.png",
    "curves.svg",
    "alphas.png",  # a custom space's one panel per decision
    "alphas.svg",
    "cell_normal.png",
    "cell_normal.svg",
    "cell_normal.dot",
    "cell_reduce.png",
    "cell_reduce.svg",
    "cell_reduce.dot",
    ".*.tmp",
    ".*.tmp.*",
)
# Sub-folders a run writes: TensorBoard's event files, and the retraining of --then-train
# (a run folder of its own, cleared by the same rules).
TENSORBOARD = "tensorboard"
THEN_TRAIN = "train"


def is_run_file(name: str) -> bool:
    """Whether ``name`` (a file directly in a run folder) is one gradnas writes."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_FILE_PATTERNS)


def _foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that gradnas did not write, recursing into its own sub-folders."""
    foreign = []
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.is_dir():
            if entry.name == TENSORBOARD:
                foreign += [
                    f"{entry.name}/{e.name}"
                    for e in entry.iterdir()
                    if not (e.is_file() and e.name.startswith("events.out.tfevents."))
                ]
            elif entry.name == THEN_TRAIN and (entry / MARKER).is_file():
                foreign += [f"{entry.name}/{name}" for name in _foreign_entries(entry)]
            else:
                foreign.append(f"{entry.name}/")
        elif not is_run_file(entry.name):
            foreign.append(entry.name)
    return foreign


def _clear(folder: Path) -> None:
    """Remove every gradnas file of ``folder`` (checked by :func:`_foreign_entries`), but
    the lock file, which this process holds."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name != LOCK:
            entry.unlink()


def _refuse_special(path: Path) -> None:
    """``--force`` never clears the file-system root or the home folder (the current
    folder only when it holds gradnas files alone, checked with every other folder)."""
    resolved = path.resolve()
    if resolved == Path(resolved.anchor):
        raise RunDirError(f"refusing to use the file-system root {str(path)!r} as a run folder")
    if resolved == Path.home().resolve():
        raise RunDirError(f"refusing to clear the home folder {str(path)!r}; choose another --out")


def _holder(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text())
        return f"pid {int(info['pid'])} on host {str(info['host'])[:100]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


# The folders this process holds locked, so that a forked child can let go of them.
_HELD: weakref.WeakSet[RunFolder] = weakref.WeakSet()


def _drop_inherited_locks() -> None:
    """In a forked child (a DataLoader worker): close the lock fds it inherited.

    A flock belongs to the open file, which fork shares, so without this the
    workers of a killed run would keep its folder locked until they notice
    their parent is gone (seconds later), and a child's ``release`` would
    unlock the parent's run.
    """
    for folder in list(_HELD):
        if folder._fd is not None:
            with contextlib.suppress(OSError):
                os.close(folder._fd)
            folder._fd = None
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


class RunFolder:
    """The run folder of one run, locked from :meth:`claim_new` or
    :meth:`claim_existing` until :meth:`release` (or the process's end)."""

    def __init__(self, path: str | Path) -> None:
        if str(path) == "":
            raise RunDirError("the run folder must not be an empty path; give --out a folder")
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _lock(self) -> None:
        lock_path = self.path / LOCK
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise RunDirError(
                f"cannot create the lock file {str(lock_path)!r}: {err.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(
                    f"run folder {str(self.path)!r} is in use by {_holder(lock_path)}; "
                    f"wait for that run to end or choose another --out"
                ) from None
            raise
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner, 0)
        self._fd = fd
        _HELD.add(self)

    def claim_new(self, force: bool, kind: str, inputs: Iterable[str | Path] = ()) -> None:
        """Create (or, with ``force``, clear) the folder for a fresh run and lock it.

        ``inputs`` are files the run reads (its ``--config``, its genotype);
        ``force`` refuses to clear a folder that holds one of them.
        """
        path = self.path
        if path.resolve() == Path(path.resolve().anchor):
            raise RunDirError(f"refusing to use the file-system root {str(path)!r} as a run folder")
        if path.exists() and not path.is_dir():
            raise RunDirError(f"run folder {str(path)!r} exists and is not a folder")
        if path.is_dir() and force:
            _refuse_special(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunDirError(f"cannot create run folder {str(path)!r}: {err.strerror}") from None
        self._lock()
        try:
            self._check_reusable(force, inputs)
            if force:
                _clear(path)
            write_text(path / MARKER, json.dumps({"kind": kind}) + "\n")
        except BaseException:
            self.release()
            raise

    def _check_reusable(self, force: bool, inputs: Iterable[str | Path]) -> None:
        path = self.path
        others = [e.name for e in path.iterdir() if e.name != LOCK]
        if not others:
            return
        if not force:
            raise RunDirError(
                f"run folder {str(path)!r} already exists and is not empty; "
                f"choose another --out or pass --force to start a fresh run there"
            )
        if not (path / MARKER).is_file():
            raise RunDirError(
                f"--force clears only gradnas run folders, and {str(path)!r} is not one "
                f"(no {MARKER} file); choose another --out"
            )
        foreign = _foreign_entries(path)
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise RunDirError(
                f"--force clears only files gradnas writes, and {str(path)!r} also holds {shown}; "
                f"move them away or choose another --out"
            )
        here = path.resolve()
        for item in inputs:
            item_path = Path(item).resolve()
            if item_path.parent == here or here in item_path.parents:
                raise RunDirError(
                    f"--force would remove {str(item)!r}, which this run reads; "
                    f"copy it out of {str(path)!r} first"
                )

    def claim_existing(self) -> None:
        """Lock an existing run folder to resume it, and remove stale temporary files
        that a killed writer left (no other process can be writing them now)."""
        if not self.path.is_dir():
            raise RunDirError(f"run folder {str(self.path)!r} does not exist")
        self._lock()
        for entry in self.path.iterdir():
            if entry.is_file() and entry.name.startswith(".") and ".tmp" in entry.name:
                entry.unlink(missing_ok=True)

    @property
    def claimed(self) -> bool:
        """Whether this process holds the folder's lock."""
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        _HELD.discard(self)


def is_main_process() -> bool:
    """Rank 0 under torchrun (read from its environment, before the process group
    exists), or a single process: the one that owns and writes the run folder."""
    return os.environ.get("RANK", "0") == "0"


@contextlib.contextmanager
def hint_on_second_interrupt(folder: RunFolder, command: str) -> Iterator[None]:
    """Turn the ``KeyboardInterrupt`` of an insistent second Ctrl-C into
    :class:`Interrupted` with the ``--resume`` command.

    The folder is resumable at any moment: checkpoints are replaced
    atomically (the previous one survives a rename cut short), and a run
    stopped before its first checkpoint starts over from its config.yaml.
    """
    try:
        yield
    except KeyboardInterrupt:
        if folder.claimed:
            raise Interrupted(
                f"interrupted; {folder.path} keeps its last checkpoint; "
                f"continue with: gradnas {command} --resume {folder.path}",
                int(signal.SIGINT),
            ) from None
        raise Interrupted(
            "interrupted before the run folder was written", int(signal.SIGINT)
        ) from None
