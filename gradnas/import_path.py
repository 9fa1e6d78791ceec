"""Resolve ``pkg.module:attr`` and ``path/file.py:attr`` references to Python objects.

The CLI takes user code by reference (``--data my_data.py:make``): a module
on ``sys.path`` in dotted form, or a Python file by its path. A file is loaded
under a private module name, so it cannot shadow an installed module.
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


def _load_file(path: Path, ref: str, what: str) -> ModuleType:
    if not path.is_file():
        raise ImportPathError(f"{what} {ref!r}: no file {str(path)!r}")
    name = f"_gradnas_user_{abs(hash(str(path.resolve())))}"
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
    """The object ``ref`` names: ``pkg.mod:attr`` (a module on ``sys.path``) or
    ``path/to/file.py:attr`` (a file, relative to the working directory).

    ``what`` says what the reference is for (``"--data"``), so that each
    error (malformed reference, no such file or module, no such attribute)
    is one line naming the flag and the reference.

    >>> load_object("os.path:join", "--data") is __import__("os").path.join
    True
    """
    module_part, sep, attr = ref.rpartition(":")
    if not sep or not module_part or not attr:
        raise ImportPathError(
            f"{what} {ref!r}: expected MODULE:NAME or FILE.py:NAME (e.g. my_data.py:make)"
        )
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
