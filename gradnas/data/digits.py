"""The default data set: scikit-learn's 8x8 handwritten digits.

It ships inside scikit-learn (no download), has 1797 grey images in 10
classes with pixel values 0..16, and is small enough that a whole search runs
on a CPU in seconds, which makes it the data set of the tests and examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

# load_digits stores intensities as integers 0..16 (4x4 blocks of a 32x32
# bitmap counted), so dividing by 16 maps them onto [0, 1].
_PIXEL_MAX = 16.0
_IMAGE_SIZE = 8


@dataclass(frozen=True)
class DataSplits:
    """Train / val / test sets plus what a model needs to know about them.

    Each set is a ``TensorDataset`` of float32 images shaped (N, 1, 8, 8)
    and int64 labels. ``mean`` and ``std`` are the statistics the images were
    standardised with (computed on ``train`` only), kept so that new images
    can be normalised the same way. ``indices`` holds, for each split, the
    row numbers into ``sklearn.datasets.load_digits()`` it was built from,
    so the split can be checked or reproduced outside this module.
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    mean: float
    std: float
    indices: dict[str, np.ndarray] = field(default_factory=dict)
    in_channels: int = 1
    num_classes: int = 10
    image_size: int = _IMAGE_SIZE
    name: str = "digits"


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")


def _split_indices(
    n: int, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, np.ndarray]:
    """Cut one seeded permutation of ``range(n)`` into test, then train/val."""
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * (n - n_test))
    n_train = n - n_test - n_val
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(
            f"fractions val={val_fraction}, test={test_fraction} leave an empty "
            f"split of {n} samples (train={n_train}, val={n_val}, test={n_test})"
        )
    return {
        "test": order[:n_test],
        "train": order[n_test : n_test + n_train],
        "val": order[n_test + n_train :],
    }


def load_digits_splits(
    seed: int = 0, val_fraction: float = 0.5, test_fraction: float = 0.2
) -> DataSplits:
    """Load the 8x8 digits as a fixed, seeded train / val / test split.

    ``test_fraction`` of all samples is held out as ``test`` and never seen
    during search. The rest is the search part; ``val_fraction`` is the share
    of *that part* that goes to ``val``, the data the architecture
    parameters are fitted on. The default 0.5 follows DARTS, whose search
    splits its training data in halves (``train_portion=0.5``): weights on
    one half, alphas on the other. With the defaults the sizes are
    train 719, val 719, test 359.

    The split is a single ``numpy.random.default_rng(seed)`` permutation, so
    it is the same for a given seed on every machine, and the three parts
    are disjoint and cover all 1797 samples. Images are scaled to [0, 1] and
    then standardised with one scalar mean and std (one channel) computed on
    ``train`` only, so that no statistic leaks from val or test.

    >>> splits = load_digits_splits(seed=0)
    >>> tuple(splits.train.tensors[0].shape), splits.train.tensors[1].dtype
    ((719, 1, 8, 8), torch.int64)
    >>> len(splits.val), len(splits.test)
    (719, 359)
    """
    bunch = load_digits()
    images = bunch.images.astype(np.float64) / _PIXEL_MAX  # (N, 8, 8)
    labels = bunch.target.astype(np.int64)  # (N,)
    indices = _split_indices(len(labels), seed, val_fraction, test_fraction)

    train_pixels = images[indices["train"]]
    mean = float(train_pixels.mean())
    std = float(train_pixels.std())  # population std, so train has std 1

    def build(part: str) -> TensorDataset:
        idx = indices[part]
        x = (images[idx] - mean) / std
        x = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)  # (n, 1, 8, 8)
        y = torch.from_numpy(labels[idx])  # (n,)
        return TensorDataset(x, y)

    return DataSplits(
        train=build("train"),
        val=build("val"),
        test=build("test"),
        mean=mean,
        std=std,
        indices=indices,
    )
