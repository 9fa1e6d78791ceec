"""The one atomic file writer: checkpoints, run files, plots and exports.

Everything gradnas writes goes to a temporary file in the target's folder,
is fsynced, and is then renamed over the target. The rename is atomic on
POSIX, so a reader (or a crash) sees the old file or the new one, never a
partial one; the old file stays until the new one is whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .file_mode import follow_umask


@contextlib.contextmanager
def atomic_path(path: Path, keep_previous: Path | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (with the same suffix, for writers
    that look at it); when the block succeeds it is fsynced and renamed to
    ``path``, else removed. With ``keep_previous`` the old file is moved there
    just before the new one takes its place, so a last good copy survives even
    a new file that later turns out to be bad."""
    path = Path(path)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    try:
        follow_umask(fd)  # mkstemp makes 0600 whatever the umask
    finally:
        os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        if keep_previous is not None and path.exists():
            _keep_copy(path, keep_previous)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
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


def atomic_write(
    path: Path, write: Callable[[IO[bytes]], None], keep_previous: Path | None = None
) -> None:
    """``write(f)`` into a binary file that replaces ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, keep_previous) as tmp, open(tmp, "wb") as f:
        write(f)
