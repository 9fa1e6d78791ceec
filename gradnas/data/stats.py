"""Per-channel mean and std of a training split, and class-stratified subsets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset


def channel_stats(
    dataset: Dataset[Any], indices: Sequence[int] | None = None, num_workers: int = 0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and (population) std of every channel over all pixels of the
    samples ``indices`` of ``dataset`` (all when None), whose images are
    ``(C, H, W)`` tensors on the scale they are to be normalised on.

    Sums are taken in float64, so the result does not depend on the batch
    size or the number of workers that decode the images.
    """
    data = dataset if indices is None else Subset(dataset, list(indices))
    loader = DataLoader(data, batch_size=256, shuffle=False, num_workers=num_workers)
    total = squares = None
    count = 0
    for images, _ in loader:
        x = images.to(torch.float64)  # (B, C, H, W)
        s, q = x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3))  # (C,)
        total = s if total is None else total + s
        squares = q if squares is None else squares + q
        count += x.shape[0] * x.shape[2] * x.shape[3]
    if total is None or squares is None:
        raise ValueError("channel_stats: no samples")
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def uint8_channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """:func:`channel_stats` of uint8 ``(N, C, H, W)`` images on the [0, 1] scale,
    exact and without a pass through a DataLoader (the in-memory sets)."""
    c = images.shape[1]
    counts = np.stack([np.bincount(images[:, i].ravel(), minlength=256) for i in range(c)])
    values = np.arange(256, dtype=np.float64) / 255.0
    n = counts.sum(axis=1)
    mean = counts @ values / n
    std = np.sqrt(np.maximum(counts @ (values * values) / n - mean * mean, 0.0))
    return tuple(mean.tolist()), tuple(std.tolist())


def stratified_subset(labels: Sequence[int] | np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` indices into ``labels``, the same share of every class as in all of them.

    Each class gets ``size * n_class / n`` samples, rounded by the largest
    remainder (ties to the smaller label) so the counts add up to ``size``;
    which samples of a class are taken comes from one seeded permutation.
    The result is sorted, so a subset keeps the order of the data set.

    >>> labels = np.asarray([0] * 6 + [1] * 3 + [2])
    >>> np.bincount(labels[stratified_subset(labels, 5, seed=0)], minlength=3).tolist()
    [3, 2, 0]
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if not 1 <= size <= n:
        raise ValueError(f"subset size must be in 1..{n}, got {size}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / n
    take = np.floor(exact).astype(np.int64)
    short = size - int(take.sum())
    order = np.lexsort((classes, -(exact - take)))  # largest remainder first
    take[order[:short]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))
