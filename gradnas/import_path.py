"""Objects named by an import path, as uvicorn and gunicorn name an app.

The CLI takes user code by reference (``--space my_space.py:build``,
``--data my_data.py:make``): ``load_object("pkg.module:attr", what)`` imports
``pkg.module`` and returns its ``attr``; ``load_object("path/to/file.py:attr",
what)`` runs that file as a module of its own first, under a private name so
it cannot shadow an installed module. Every failure is one
:class:`ImportPathError` naming the reference and what went wrong (malformed
reference, no such file or module, no such attribute, the module raising while
it is imported), so a command line can print it as one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import GradnasError


class ImportPathError(GradnasError, ValueError):
    """A reference that names no module or file, or no attribute in it."""


def is_reference(text: str) -> bool:
    """Whether ``text`` has the ``module:attr`` / ``file.py:attr`` form."""
    module, sep, attr = text.rpartition(":")
    return bool(sep and module and attr)


def _load_file(path: Path, ref: str, what: str) -> ModuleType:
    if not path.is_file():
        raise ImportPathError(f"{what} {ref!r}: no file {str(path)!r}")
    name = f"gradnas_user_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportPathError(f"{what} {ref!r}: {str(path)!r} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 -- user code may raise anything; report it
        del sys.modules[name]
        raise ImportPathError(
            f"{what} {ref!r}: importing {str(path)!r} raised {type(err).__name__}: {err}"
        ) from None
    return module


def _load_module(dotted: str, ref: str, what: str) -> ModuleType:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: modules of the current folder
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as err:
        if err.name is not None and dotted.startswith(err.name):
            raise ImportPathError(f"{what} {ref!r}: no module named {err.name!r}") from None
        raise ImportPathError(
            f"{what} {ref!r}: importing {dotted!r} raised ModuleNotFoundError: {err}"
        ) from None
    except Exception as err:  # noqa: BLE001 -- user code may raise anything; report it
        raise ImportPathError(
            f"{what} {ref!r}: importing {dotted!r} raised {type(err).__name__}: {err}"
        ) from None


def load_object(ref: str, what: str) -> Any:
    """The object ``ref`` names: ``pkg.mod:attr`` (a module on ``sys.path`` or in
    the working directory) or ``path/to/file.py:attr`` (a file, relative to the
    working directory). The attribute may be dotted (``module:Class.factory``).

    ``what`` says what the reference is for (``"--data"``, ``"space"``), so that
    each error is one line naming the role and the reference.

    >>> load_object("os.path:join", "--data") is __import__("os").path.join
    True
    """
    if not isinstance(ref, str) or not is_reference(ref):
        raise ImportPathError(
            f"{what} {ref!r}: expected MODULE:NAME or FILE.py:NAME (e.g. my_data.py:make)"
        )
    module_part, _, attr = ref.rpartition(":")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        module = _load_file(Path(module_part), ref, what)
    else:
        module = _load_module(module_part, ref, what)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImportPathError(f"{what} {ref!r}: {module_part!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj
