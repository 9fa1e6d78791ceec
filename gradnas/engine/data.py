"""The engine's one door to the data: splits from a config, loader options, data.json.

Search, retraining and random search all read their data here, so a new data
source or key changes this file and ``gradnas.data``, not the loops.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..config import DataConfig
from ..data.errors import DataError
from ..data.sources import Splits, load_splits
from .files import write_text

DATA_FILE = "data.json"


def load_data(
    d: DataConfig, seed: int, datasets: tuple[Dataset[Any], Dataset[Any]] | None = None
) -> Splits:
    """The splits ``d`` describes; ``datasets=(train, test)`` are a Python caller's own sets,
    which ``data.name: datasets`` stands for in the config."""
    if (datasets is not None) != (d.name == "datasets"):
        raise DataError(
            "data.name 'datasets' stands for the datasets=(train, test) objects passed to "
            "run_search / run_train, and needs them"
            if datasets is None
            else f"datasets=(train, test) given, but data.name is {d.name!r}; set it to 'datasets'"
        )
    return load_splits(
        d.name,
        d.data_dir,
        seed=seed,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        augment=d.augment,
        cutout=d.cutout,
        subset=d.subset,
        image_size=d.image_size,
        channels=d.channels,
        mean=d.mean,
        std=d.std,
        num_workers=d.num_workers,
        datasets=datasets,
    )


def check_batch_fits(splits: Splits, batch_size: int, parts: tuple[str, ...]) -> None:
    """Each of ``parts`` holds at least one full batch (BatchNorm needs more than one
    sample, and a search whose halves are smaller than a batch trains on scraps)."""
    for part in parts:
        n = len(getattr(splits, part))
        if n < batch_size:
            raise DataError(
                f"the {part} split of {splits.name} has {n} images, fewer than one batch of "
                f"{batch_size}; lower data.batch_size or use more data (data.subset)"
            )


def loader_options(d: DataConfig, device: torch.device) -> dict[str, Any]:
    """Worker processes and pinned memory for ``make_loader``: pinning pays only
    when batches are copied to a GPU."""
    return {"num_workers": d.num_workers, "pin_memory": device.type == "cuda"}


def write_data_info(out: Path, splits: Splits) -> None:
    """``data.json``: channels, image size, classes, normalisation and split sizes the
    run used, so the network can be rebuilt and fed without reading the data again."""
    write_text(out / DATA_FILE, json.dumps(splits.describe(), indent=2) + "\n")


def read_data_info(run_dir: Path) -> dict[str, Any] | None:
    """``data.json`` of a run folder, or None for a folder written before it existed."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        return None
    info: dict[str, Any] = json.loads(path.read_text())
    return info
