"""The whole engine on objects a user already has: ``gradnas.search`` and ``gradnas.train``.

>>> import gradnas  # doctest: +SKIP
>>> result = gradnas.search(build, train_data, algorithm="gdas", epochs=10, out="runs/mine")
>>> result.arch, result.out_dir  # doctest: +SKIP
>>> gradnas.train(result.out_dir, train_data, test_data, factory=build, epochs=20)

``build(in_channels, num_classes)`` returns a supernet built from gradnas
mutables (or name a space: ``"darts"``, ``"nb201"``, ``"pkg.module:build"``);
the datasets are any ``torch.utils.data.Dataset`` of ``(image, label)``
pairs, images as ``(channels, height, width)`` tensors and labels as ints.
Both calls write the same run folders as the CLI (checkpoints, exact resume,
signals, the NaN guard, plots), so ``gradnas train RUN_DIR``, ``gradnas
export`` and ``gradnas plot`` work on them.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset, Subset

from .config import SearchConfig, TrainConfig, config_from_dict, config_to_dict
from .data.sources import Splits
from .engine.search import SearchResult, run_search
from .engine.train import TrainResult, run_train

Factory = Callable[[int, int], nn.Module]


def _num_classes(*datasets: Dataset[Any]) -> int:
    """One more than the largest label (labels are 0..K-1)."""
    return 1 + max(int(d[i][1]) for d in datasets for i in range(len(d)))  # type: ignore[arg-type]


def _splits(
    train: Dataset[Any], val: Dataset[Any], test: Dataset[Any], num_classes: int | None
) -> Splits:
    image = train[0][0]
    return Splits(
        name="custom",
        train=train,
        val=val,
        train_all=ConcatDataset([train, val]),
        test=test,
        in_channels=int(image.shape[0]),
        image_size=int(image.shape[-1]),  # what data.json records
        num_classes=num_classes or _num_classes(train, val),
    )


def _reference(space: str | Factory) -> tuple[str, Factory | None]:
    """The config's ``space`` string and the factory object (None for a named space)."""
    if isinstance(space, str):
        return space, None
    if not callable(space):
        raise TypeError(f"space must be a factory or a space name, got {type(space).__name__}")
    qualname = getattr(space, "__qualname__", repr(space))
    module = getattr(space, "__module__", "?")
    # A script's factory, or one loaded from a file: named by its file, so the CLI finds it again.
    if module == "__main__" or module.startswith("gradnas_user_"):
        try:
            return f"{Path(inspect.getfile(space)).resolve()}:{qualname}", space
        except TypeError:
            pass
    return f"{module}:{qualname}", space


def _config(cls: type, config: Any, overrides: dict[str, Any]) -> Any:
    """``config`` (a config, its dict, or None for the defaults) with the given keys
    (``"data.batch_size"`` for a section's key) replaced where not None, validated."""
    if isinstance(config, dict):
        config = config_from_dict(config, cls)
    data = config_to_dict(config if config is not None else cls())
    for key, value in overrides.items():
        if value is not None:
            section = data
            *path, last = key.split(".")
            for part in path:
                section = section[part]
            section[last] = value
    return config_from_dict(data, cls)


def search(
    space: str | Factory,
    train_data: Dataset[Any],
    val_data: Dataset[Any] | None = None,
    *,
    algorithm: str = "darts",
    epochs: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    config: SearchConfig | dict[str, Any] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    num_classes: int | None = None,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> SearchResult:
    """Search ``space`` on ``train_data`` (split in two halves by ``seed`` when
    ``val_data`` is None) and write the run folder ``out``.

    ``config`` (a :class:`~gradnas.config.SearchConfig` or its dict) gives every
    other setting; the keyword arguments override it. With ``resume=True``,
    ``out`` is an interrupted run folder and the search continues from its
    checkpoint (pass the same factory and data). Returns the architecture
    (``result.arch``), the metrics and the run folder.
    """
    reference, factory = _reference(space)
    cfg = _config(
        SearchConfig,
        config,
        {
            "algorithm": algorithm,
            "epochs": epochs,
            "seed": seed,
            "threads": threads,
            "space": reference,
            "data.batch_size": batch_size,
        },
    )
    if val_data is None:
        generator = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(train_data), generator=generator)  # type: ignore[arg-type]
        half = len(order) // 2
        train_data, val_data = (
            Subset(train_data, order[:half].tolist()),
            Subset(train_data, order[half:].tolist()),
        )
    splits = _splits(train_data, val_data, val_data, num_classes)
    out = Path(out) if out is not None else Path(time.strftime("runs/search-%Y%m%d-%H%M%S"))
    return run_search(
        cfg,
        out,
        force=force,
        progress=progress,
        log=log,
        resume=resume,
        splits=splits,
        factory=factory,
    )


def train(
    architecture: str | Path,
    train_data: Dataset[Any],
    test_data: Dataset[Any],
    *,
    factory: Factory | None = None,
    epochs: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    config: TrainConfig | dict[str, Any] | None = None,
    seed: int | None = None,
    threads: int | None = None,
    num_classes: int | None = None,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train the fixed network of ``architecture`` (a search run folder, an
    architecture file or a published genotype name) on ``train_data`` and test it
    on ``test_data`` after every epoch; ``factory`` is the custom space's
    factory when the run folder's reference cannot be imported (a factory
    defined in a notebook)."""
    cfg = _config(
        TrainConfig,
        config,
        {"genotype": str(architecture), "epochs": epochs, "seed": seed, "threads": threads},
    )
    image = train_data[0][0]
    splits = Splits(
        name="custom",
        train=train_data,
        val=test_data,
        train_all=train_data,
        test=test_data,
        in_channels=int(image.shape[0]),
        image_size=int(image.shape[-1]),  # what data.json records
        num_classes=num_classes or _num_classes(train_data, test_data),
    )
    out = Path(out) if out is not None else Path(time.strftime("runs/train-%Y%m%d-%H%M%S"))
    return run_train(
        cfg,
        out,
        force=force,
        progress=progress,
        log=log,
        resume=resume,
        splits=splits,
        factory=factory,
    )
