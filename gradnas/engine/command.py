"""How the user started gradnas, so that printed hints can be pasted back as they are."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def invoked_as(argv0: str | None = None) -> str:
    """The command that started this process, as the user would type it again.

    ``.venv/bin/gradnas`` stays ``.venv/bin/gradnas``; a ``gradnas`` found on ``PATH`` is
    ``gradnas``; ``python -m gradnas`` (``argv[0]`` is then ``.../gradnas/__main__.py``) and
    torchrun's ``-m gradnas`` are ``python -m gradnas``.

    >>> invoked_as("/site-packages/gradnas/__main__.py")
    'python -m gradnas'
    >>> invoked_as(".venv/bin/gradnas")
    '.venv/bin/gradnas'
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    path = Path(argv0)
    if path.name == "__main__.py" or not argv0 or argv0 == "-c":
        return "python -m gradnas"
    if os.sep not in argv0:  # found on PATH: the plain name works again
        return path.name
    return shlex.quote(argv0)


def resume_command(kind: str, out: Path | str) -> str:
    """``<how gradnas was started> <kind> --resume <out>``, quoted for a POSIX shell."""
    return f"{invoked_as()} {kind} --resume {shlex.quote(str(out))}"
