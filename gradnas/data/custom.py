"""Any ``torch.utils.data.Dataset`` of ``(image, label)`` pairs, checked before a run.

A user's data comes as objects (the Python API) or from a factory named on
the command line (``--data my_data.py:make``) that is called as
``make(seed)`` and returns ``(train, test)``. Everything gradnas needs is
read off the data: channels and image size from the first image, the class
count from ``dataset.classes`` when the set has it, else from the labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..import_path import ImportPathError, load_object
from .errors import DataError

_ITEM = "(image tensor (C, H, W), int label)"


def _label(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise DataError(f"{where}: the label is a bool, not an int class index")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        return int(value.item())
    raise DataError(f"{where}: the label is {type(value).__name__} {value!r:.40}, not an int")


def check_item(item: Any, where: str) -> tuple[tuple[int, int, int], int]:
    """The image shape and the label of one ``(image, label)`` item, or a :class:`DataError`."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(f"{where} is {type(item).__name__}, not a pair {_ITEM}")
    image, label = item
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or not image.is_floating_point():
        got = (
            f"a {image.dtype} tensor of shape {tuple(image.shape)}"
            if isinstance(image, torch.Tensor)
            else type(image).__name__
        )
        raise DataError(f"{where}: the image is {got}, not a float tensor (C, H, W)")
    c, h, w = image.shape
    return (int(c), int(h), int(w)), _label(label, where)


def dataset_labels(dataset: Dataset[Any], what: str) -> np.ndarray:
    """All labels of ``dataset``: its ``targets`` attribute (torchvision's name)
    when it has one, else read item by item (which decodes every image once;
    give large sets a ``targets`` list to avoid that)."""
    n = len(dataset)  # type: ignore[arg-type]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        labels = [_label(t, f"{what}.targets[{i}]") for i, t in enumerate(list(targets))]
        if len(labels) != n:
            raise DataError(f"{what}: {len(labels)} targets for {n} items")
    else:
        labels = []
        first = None
        for i in range(n):
            shape, label = check_item(dataset[i], f"{what} item {i}")
            if first is None:
                first = shape
            elif shape != first:
                raise DataError(f"{what} item {i}: image of shape {shape}, item 0 has {first}")
            labels.append(label)
    return np.asarray(labels, dtype=np.int64)


def call_factory(ref: str, seed: int) -> tuple[Dataset[Any], Dataset[Any]]:
    """``FACTORY(seed)`` of ``--data PKG.MODULE:FACTORY`` or ``--data FILE.py:FACTORY``."""
    try:
        factory = load_object(ref, "--data")
    except ImportPathError as err:
        raise DataError(str(err)) from None
    if not callable(factory):
        raise DataError(f"--data {ref!r}: {type(factory).__name__} is not callable")
    try:
        result = factory(seed)
    except Exception as err:  # noqa: BLE001 -- user code: report whatever it raised
        raise DataError(
            f"--data {ref!r}: {ref}(seed={seed}) raised {type(err).__name__}: {err}"
        ) from None
    return check_pair(result, f"--data {ref!r}")


def check_pair(result: Any, what: str) -> tuple[Dataset[Any], Dataset[Any]]:
    """``(train, test)``: two sized, indexable data sets, or a :class:`DataError`."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise DataError(f"{what}: expected (train, test) data sets, got {type(result).__name__}")
    for part, data in zip(("train", "test"), result):
        if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
            raise DataError(f"{what}: the {part} set ({type(data).__name__}) has no len() and []")
        if len(data) == 0:
            raise DataError(f"{what}: the {part} set is empty")
    return result[0], result[1]


def class_count(train: Dataset[Any], labels: np.ndarray, test_labels: np.ndarray, what: str) -> int:
    """Classes of a user's set: ``len(train.classes)`` when given, else the largest label + 1."""
    names: Sequence[Any] | None = getattr(train, "classes", None)
    num = len(names) if names is not None else int(labels.max()) + 1
    for part, values in (("train", labels), ("test", test_labels)):
        bad = values[(values < 0) | (values >= num)]
        if bad.size:
            raise DataError(
                f"{what}: {part} label {int(bad[0])} out of range 0..{num - 1}"
                + (" (len(train.classes))" if names is not None else "")
            )
    return num
