"""Writing run files so that a crash never leaves one half-written."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from ..errors import GradnasError
from ..file_mode import follow_umask


class RunDirError(GradnasError, ValueError):
    """A run folder that cannot be used as asked."""


def _atomic_write(
    path: Path, write: Callable[[IO[bytes]], None], keep_previous: Path | None = None
) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over ``path``.

    The rename is atomic on POSIX, so readers see the old file or the new
    one, never a partial one; the old file stays until the new one is whole.
    With ``keep_previous`` the old file is moved there just before the new
    one takes its place, so a last good copy survives even a new file that
    later turns out to be bad.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        follow_umask(fd)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and path.exists():
            _keep_copy(path, keep_previous)
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):  # read-only, full, no permission: one line naming the file
            raise RunDirError(
                f"cannot write {str(path)!r}: {err.strerror or err}; the files written before "
                f"are unchanged"
            ) from None
        raise


def _keep_copy(path: Path, keep: Path) -> None:
    """Make ``keep`` the current ``path`` while ``path`` stays: a hard link renamed into
    place, so a failed write of the new file still leaves ``path`` (a file system
    without hard links moves ``path`` instead, leaving only ``keep`` until the new
    one is renamed in)."""
    link = keep.with_name(f".{keep.name}.{os.getpid()}.tmp")
    try:
        link.unlink(missing_ok=True)
        os.link(path, link)
        os.replace(link, keep)
    except OSError:
        link.unlink(missing_ok=True)
        os.replace(path, keep)


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def _torch_bytes(obj: Any) -> memoryview:
    """``obj`` serialised in memory first: torch's zip writer reports a full disk as a
    RuntimeError without the path; a plain write reports it as an OSError."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer()


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` atomically (no previous copy kept)."""
    data = _torch_bytes(obj)
    _atomic_write(path, lambda f: f.write(data))


def previous_checkpoint(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept: ``checkpoint.prev.pt`` beside ``checkpoint.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` atomically, keeping the one before as :func:`previous_checkpoint`.

    ``state`` holds only what ``weights_only`` loading accepts.
    """
    data = _torch_bytes(state)
    _atomic_write(path, lambda f: f.write(data), keep_previous=previous_checkpoint(path))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunDirError(f"checkpoint {str(path)!r} does not exist") from None
    except Exception as err:  # noqa: BLE001 -- truncated zip, bad pickle, foreign object: one message
        raise RunDirError(
            f"checkpoint {str(path)!r} is corrupt or not a gradnas checkpoint ({load_problem(err)})"
        ) from None


def load_problem(err: Exception) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one short line.

    Torch's own message advises loading again with ``weights_only=False``,
    which would run whatever code a hostile file holds; it is never repeated.
    """
    text = str(err)
    if "weights_only" in text or "Weights only load failed" in text:
        return "it holds objects other than tensors and plain values, which are not loaded"
    first = " ".join(text.split("\n")[0].split())
    return first[:200] if first else type(err).__name__
