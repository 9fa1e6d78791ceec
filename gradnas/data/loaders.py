"""Reproducible data loaders, the endless stream DARTS reads val from, and splits."""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_last: bool = False,
) -> DataLoader:
    """Build a single-process ``DataLoader`` whose order depends only on ``seed``.

    The loader owns its own ``torch.Generator``, so its shuffles do not
    consume (or depend on) the global RNG that model initialisation uses. Two
    loaders made with the same seed give the same batches epoch after epoch;
    each new epoch of one loader draws a fresh shuffle from its generator.
    ``num_workers=0`` keeps the order exact and avoids worker start-up cost,
    which dominates on small data sets such as the digits.
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=0,
        generator=generator,
    )


class InfiniteStream:
    """Yield batches from a loader forever, one full epoch after another.

    The DARTS search takes one validation batch per weight step. Reading it
    as a stream means every validation sample is used exactly once per pass
    (unlike sampling with replacement), and the loader is reshuffled at each
    pass (unlike making a new iterator per step, which with ``shuffle=False``
    would return the first batch every time and always restarts the epoch).

    ``epochs_started`` counts passes begun over the loader and
    ``batches_in_epoch`` counts batches taken in the current pass, so a
    checkpoint can record where the stream stood and resume mid-epoch.

    >>> from torch.utils.data import TensorDataset
    >>> stream = InfiniteStream(make_loader(TensorDataset(torch.arange(5)), 2, False, 0))
    >>> [next(stream)[0].tolist() for _ in range(4)]
    [[0, 1], [2, 3], [4], [0, 1]]
    >>> stream.epochs_started, stream.batches_in_epoch
    (2, 1)
    """

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.epochs_started = 0
        self.batches_in_epoch = 0
        self._iterator: Iterator[Any] | None = None

    def _start_epoch(self) -> None:
        self._iterator = iter(self.loader)
        self.epochs_started += 1
        self.batches_in_epoch = 0

    def __iter__(self) -> InfiniteStream:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._start_epoch()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._start_epoch()
            try:
                batch = next(self._iterator)
            except StopIteration:
                # A fresh epoch with no batch would otherwise loop forever.
                raise RuntimeError(
                    "InfiniteStream: the loader yields no batches "
                    "(empty data set, or drop_last with fewer samples than batch_size)"
                ) from None
        self.batches_in_epoch += 1
        return batch


def split_dataset(
    dataset: Dataset, fraction: float, seed: int
) -> tuple[Subset, Subset]:
    """Split any map-style data set into two disjoint, seeded ``Subset``s.

    ``fraction`` is the share of samples that go to the *second* subset
    (rounded to the nearest count), matching ``val_fraction`` of
    ``load_digits_splits``: ``train, val = split_dataset(data, 0.5, seed)``
    is the DARTS 50/50 search split of a user's own data. A seeded
    ``torch.Generator`` permutation keeps the split the same for a seed.

    >>> train, val = split_dataset(list(range(10)), 0.3, seed=0)
    >>> len(train), len(val), sorted(list(train) + list(val)) == list(range(10))
    (7, 3, True)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    n = len(dataset)  # type: ignore[arg-type]
    n_second = int(round(fraction * n))
    n_first = n - n_second
    if n_first < 1 or n_second < 1:
        raise ValueError(
            f"fraction {fraction} of {n} samples leaves an empty part "
            f"({n_first} and {n_second}); both parts need at least one sample"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order[:n_first]), Subset(dataset, order[n_first:])
