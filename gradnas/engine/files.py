"""Writing run files so that a crash never leaves one half-written."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from ..atomic import atomic_write
from ..errors import GradnasError


class RunDirError(GradnasError, ValueError):
    """A run folder that cannot be used as asked."""


def _atomic_write(
    path: Path, write: Callable[[IO[bytes]], None], keep_previous: Path | None = None
) -> None:
    """Write via a temporary file, fsync, rename (the one writer: :mod:`gradnas.atomic`).

    An OS error (read-only, full, no permission) becomes one line naming the file.
    """
    try:
        atomic_write(Path(path), write, keep_previous)
    except OSError as err:
        raise RunDirError(
            f"cannot write {str(path)!r}: {err.strerror or err}; the files written before "
            f"are unchanged"
        ) from None


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
