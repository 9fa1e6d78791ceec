"""Writing run files so that a crash never leaves one half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from ..errors import GradnasError


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` atomically (no previous copy kept)."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def previous_checkpoint(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept: ``checkpoint.prev.pt`` beside ``checkpoint.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` atomically, keeping the one before as :func:`previous_checkpoint`.

    ``state`` holds only what ``weights_only`` loading accepts.
    """
    _atomic_write(path, lambda f: torch.save(state, f), keep_previous=previous_checkpoint(path))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunDirError(f"checkpoint {str(path)!r} does not exist") from None
    except Exception as err:  # noqa: BLE001 -- truncated zip, bad pickle, foreign object: one message
        raise RunDirError(
            f"checkpoint {str(path)!r} is corrupt or not a gradnas checkpoint ({err})"
        ) from None


def prepare_run_dir(path: Path, force: bool) -> Path:
    """Create the run folder; an existing non-empty one is only reused with ``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run folder {str(path)!r} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise RunDirError(
            f"run folder {str(path)!r} already exists and is not empty; "
            f"choose another --out or pass --force to overwrite it"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path
