"""Objects named by an import path, as uvicorn and gunicorn name an app.

``load_object("pkg.module:attr", "space")`` imports ``pkg.module`` and returns
its ``attr``; ``load_object("path/to/file.py:attr", "space")`` runs that file
as a module of its own first. Every failure is one :class:`ImportPathError`
naming the reference and what went wrong (no such file or module, no such
attribute, the module raising while it is imported), so a command line can
print it as one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


class ImportPathError(ValueError):
    """A reference that names no object."""


def is_reference(text: str) -> bool:
    """Whether ``text`` has the ``module:attr`` / ``file.py:attr`` form."""
    module, sep, attr = text.rpartition(":")
    return bool(sep and module and attr)


def _load_file(path: Path, ref: str, what: str) -> Any:
    if not path.is_file():
        raise ImportPathError(f"{what} {ref!r}: no such file {str(path)!r}")
    name = f"gradnas_user_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportPathError(f"{what} {ref!r}: {str(path)!r} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any error in user code becomes one message
        del sys.modules[name]
        raise ImportPathError(
            f"{what} {ref!r}: importing {str(path)!r} failed: {type(err).__name__}: {err}"
        ) from None
    return module


def _load_module(name: str, ref: str, what: str) -> Any:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: modules of the current folder
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name.startswith(err.name):
            raise ImportPathError(f"{what} {ref!r}: no module named {err.name!r}") from None
        raise ImportPathError(f"{what} {ref!r}: importing {name!r} failed: {err}") from None
    except Exception as err:  # noqa: BLE001 - any error in user code becomes one message
        raise ImportPathError(
            f"{what} {ref!r}: importing {name!r} failed: {type(err).__name__}: {err}"
        ) from None


def load_object(ref: str, what: str) -> Any:
    """The object ``ref`` names (``pkg.module:attr`` or ``path/file.py:attr``).

    ``what`` names the role in messages (``"space"``, ``"data"``). The
    attribute may be dotted (``module:Class.factory``).
    """
    if not isinstance(ref, str) or not is_reference(ref):
        raise ImportPathError(f"{what} {ref!r}: expected PKG.MODULE:NAME or path/to/file.py:NAME")
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _load_file(Path(target), ref, what)
    else:
        module = _load_module(target, ref, what)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportPathError(f"{what} {ref!r}: {target!r} has no attribute {attr!r}") from None
    return obj
