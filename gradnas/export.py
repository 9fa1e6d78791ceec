"""Deployable files of a derived network: ONNX and PyTorch's ``torch.export`` (.pt2).

Both exports trace the eval-mode forward, which for the derived DARTS
networks returns plain logits (the auxiliary head only runs in training),
and keep the batch dimension dynamic, so the file runs on any batch size.
Each file is written atomically: the exporter writes a temporary file in the
target's folder, which is renamed over the target only once it is complete,
so a failed export leaves neither a partial file nor a stray temporary one.

ONNX goes through ``torch.onnx.export(..., dynamo=True)``, the exporter
built on ``torch.export`` (the TorchScript one is deprecated in torch 2.x);
it needs the ``onnx`` and ``onnxscript`` packages, and checking a file with
:func:`max_abs_difference_onnx` needs ``onnxruntime``. These are imported
only when used, so the rest of gradnas works without them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from .atomic import atomic_path
from .errors import GradnasError

# ai.onnx opset written into ONNX files: torch 2.13's default for the dynamo
# exporter, run by onnxruntime >= 1.17. Fixing it keeps files alike across
# torch versions whose defaults differ.
ONNX_OPSET = 20

# Name of the dynamic batch dimension in both exports.
BATCH_DIM = "batch"


class ExportError(GradnasError, ValueError):
    """A model that cannot be exported as asked, or an export file that cannot be read."""


def _target(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` can be written before any work is done."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise ExportError(f"cannot write {str(path)!r}: it is a folder")
    return path


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed to it if the block succeeds
    (:func:`gradnas.atomic.atomic_path`); an error that is not already an
    :class:`ExportError` becomes one naming ``path`` (the original chained)."""
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except Exception as err:
        if isinstance(err, ExportError):
            raise
        raise ExportError(f"exporting to {str(path)!r} failed: {err}") from err


T = TypeVar("T")


def _in_eval_mode(model: nn.Module, run: Callable[[], T]) -> T:
    """Run ``run`` with ``model`` in eval mode, then restore the mode it had."""
    was_training = model.training
    model.eval()
    try:
        return run()
    finally:
        model.train(was_training)


def _traceable(
    example_input: torch.Tensor,
) -> tuple[torch.Tensor, tuple[dict[int, torch.export.Dim]]]:
    """The example to trace with, and the dynamic shape spec marking its batch dimension.

    ``torch.export`` specialises a dimension of size 1 to a constant, so a
    batch of one is repeated into a batch of two for tracing (the values do
    not matter in eval mode, where samples do not interact).
    """
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 1:
        raise ExportError(
            "example_input must be a tensor with a batch dimension, e.g. shape (1, 3, 32, 32)"
        )
    if example_input.shape[0] == 1:
        example_input = example_input.expand(2, *example_input.shape[1:]).contiguous()  # (2, ...)
    return example_input, ({0: torch.export.Dim(BATCH_DIM)},)


def _require(*packages: str) -> None:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ExportError(
            f"this needs the package(s) {', '.join(missing)}: pip install {' '.join(missing)}"
        )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what torch's exporters print about themselves, not about the model.

    The ONNX exporter logs one "torchvision is not installed. Skipping torchvision::nms" line
    per torchvision operator it would register, and torch.export's pytree raises a
    FutureWarning about its own ``LeafSpec`` use; neither concerns a gradnas network.
    """
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike[str]) -> int:
    """Write the eval-mode forward of ``model`` to ``path`` as ONNX; return its opset.

    The weights are stored inside the one file (no external data), which
    limits the model to ONNX's 2 GB. The input is named after the forward's
    argument (``x`` for gradnas networks); its first dimension is the
    dynamic ``batch``.
    """
    _require("onnx", "onnxscript")
    import onnx

    path = _target(path)
    example, dynamic_shapes = _traceable(example_input)
    with _atomic_path(path) as tmp, _quiet_exporter():
        program = _in_eval_mode(
            model,
            lambda: torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=ONNX_OPSET,
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                verbose=False,
            ),
        )
        if program is None:  # torch returns None only for the legacy exporter (dynamo=False)
            raise ExportError("torch.onnx.export returned no ONNX program")
        program.save(tmp, external_data=False)
    saved = onnx.load(str(path), load_external_data=False)
    opset: int = next(o.version for o in saved.opset_import if o.domain in ("", "ai.onnx"))
    return opset


def export_pt2(model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """Write the eval-mode forward of ``model`` to ``path`` with ``torch.export`` (load with
    :func:`load_pt2`).
    """
    path = _target(path)
    example, dynamic_shapes = _traceable(example_input)
    with _atomic_path(path) as tmp, _quiet_exporter():
        program = _in_eval_mode(
            model, lambda: torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)
        )
        with open(tmp, "wb") as f:
            torch.export.save(program, f)


def load_pt2(path: str | os.PathLike[str]) -> torch.export.ExportedProgram:
    """Read a file of :func:`export_pt2`; call ``load_pt2(path).module()(x)`` to run it."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"exported program {str(path)!r} does not exist")
    try:
        return torch.export.load(path)
    except Exception as err:  # noqa: BLE001 -- truncated zip, foreign file, other torch version
        raise ExportError(f"{str(path)!r} is not a readable torch.export program ({err})") from None


def max_abs_difference_onnx(
    path: str | os.PathLike[str], model: nn.Module, x: torch.Tensor
) -> float:
    """Largest absolute difference between the ONNX file's output and ``model``'s eval output on ``x``.

    Runs the file with onnxruntime on the CPU, the check after an export.
    """
    _require("onnxruntime")
    import onnxruntime

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"ONNX file {str(path)!r} does not exist")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 -- onnxruntime raises its own exception types
        raise ExportError(f"{str(path)!r} is not a readable ONNX model ({err})") from None
    (onnx_input,) = session.get_inputs()
    (got,) = session.run(None, {onnx_input.name: x.detach().cpu().numpy()})
    with torch.no_grad():
        expected: torch.Tensor = _in_eval_mode(model, lambda: model(x))
    largest: float = (torch.from_numpy(got) - expected.detach().cpu()).abs().max().item()
    return largest
