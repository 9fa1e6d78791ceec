"""Writing run files so that a crash never leaves one half-written."""

from __future__ import annotations

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
    """Write via a temporary file, fsync, rename (the one writer: :mod:`gradnas.atomic`)."""
    atomic_write(Path(path), write, keep_previous)


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
