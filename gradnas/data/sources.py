"""One entry point for every data set the CLI knows: search halves, retraining set, test set."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch.utils.data import ConcatDataset, Dataset

from .cifar import load_cifar
from .digits import load_digits_splits
from .loaders import split_dataset
from .transforms import Compose, Transform, random_crop
from .transforms import cutout as cutout_transform


class TransformedDataset(Dataset):
    """Applies ``transform`` to the image of each ``(image, label)`` sample."""

    def __init__(self, base: Dataset, transform: Transform) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return self.transform(image), label


@dataclass
class Splits:
    """The data of a run.

    ``train`` and ``val`` are the two halves a bilevel search alternates
    between (DARTS splits the training data 50/50); ``train_all`` is both
    together, what a derived network is retrained on; ``test`` is never
    seen by a search.
    """

    name: str
    train: Dataset
    val: Dataset
    train_all: Dataset
    test: Dataset
    in_channels: int
    num_classes: int


def _digits_augmentation(augment: bool, cutout: int) -> Transform | None:
    # 8x8 digits: a 1-pixel shift is the analogue of CIFAR's 4 pixels on 32x32;
    # no flip, since mirrored digits are other symbols. Pad with the image
    # minimum (the normalised background) rather than 0.
    steps: list[Transform] = []
    if augment:
        steps.append(lambda img: random_crop(img, padding=1, fill=float(img.min())))
    if cutout:
        steps.append(partial(cutout_transform, length=cutout))
    return Compose(steps) if steps else None


def load_splits(
    name: str,
    data_dir: str = "",
    seed: int = 0,
    val_fraction: float = 0.5,
    test_fraction: float = 0.2,
    augment: bool = False,
    cutout: int = 0,
) -> Splits:
    """The data set ``name`` (``digits``, ``cifar10``, ``cifar100``) split for search and retraining.

    Augmentation (``augment``: random crop and, on CIFAR, flip; ``cutout``)
    applies to the training data only, never to ``test``.
    """
    if name == "digits":
        d = load_digits_splits(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
        train, val = d.train, d.val
        transform = _digits_augmentation(augment, cutout)
        if transform is not None:
            train, val = TransformedDataset(train, transform), TransformedDataset(val, transform)
        return Splits(
            name, train, val, ConcatDataset([train, val]), d.test, d.in_channels, d.num_classes
        )
    if name in ("cifar10", "cifar100"):
        full = load_cifar(name, data_dir, train=True, augment=augment, cutout=cutout)
        test = load_cifar(name, data_dir, train=False, augment=False)
        train, val = split_dataset(full, val_fraction, seed)
        num_classes = 10 if name == "cifar10" else 100
        return Splits(name, train, val, full, test, full.in_channels, num_classes)
    raise ValueError(f"unknown data set {name!r}; known: digits, cifar10, cifar100")


def dataset_labels(dataset: Dataset) -> torch.Tensor:
    """All labels of a (small) data set, for baselines and checks."""
    return torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))])  # type: ignore[arg-type]
