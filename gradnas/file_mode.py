"""The permission bits new files get, so files written via a temporary file follow the umask."""

from __future__ import annotations

import os


def default_file_mode() -> int:
    """``0o666`` less the process's umask: what ``open(path, "w")`` would create.

    ``tempfile.mkstemp`` creates its files ``0600`` whatever the umask, which
    would leave a run folder unreadable to the group that a run on a shared
    file system (several machines, several users) needs.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def follow_umask(fd: int) -> None:
    """Give the open file ``fd`` (a fresh temporary file) the umask's permissions."""
    os.fchmod(fd, default_file_mode())
