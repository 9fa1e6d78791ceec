"""Reproducible data loaders, the endless stream DARTS reads val from, and splits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of indices whose order is a pure function of ``(seed, epoch)``.

    Each ``iter()`` yields one epoch and advances ``epoch``. Because an
    epoch's order depends on nothing but the seed and the epoch number, a
    run resumed from a checkpoint can set ``epoch`` and ``start_batch`` and
    continue at exactly the sample where it stopped; no generator state has
    to be saved.

    Data-parallel (``world_size`` > 1): every rank computes the same order
    and cuts it into global batches of ``batch_size * world_size``; rank
    ``r`` takes the ``r``-th equal part of each. So N ranks with batch b
    see exactly the samples one process with batch N*b sees. A last global
    batch that does not split evenly is cut to a multiple of ``world_size``
    (at most ``world_size - 1`` samples an epoch left out): equal shares
    keep the ranks' random draws (augmentation, architecture samples) in
    step.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..world_size - 1, got rank {rank} of {world_size}")
        self.size, self.batch_size, self.shuffle = size, batch_size, shuffle
        self.seed, self.drop_last = seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0  # the epoch the next iter() yields
        self.start_batch = 0  # batches of that epoch to skip (resume mid-epoch)

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        # A well-mixed 64-bit seed from (seed, epoch): neighbouring epochs get unrelated orders.
        mixed = int(
            np.random.SeedSequence([self.seed, epoch])
            .generate_state(2, np.uint32)
            .view(np.uint64)[0]
        )
        generator = torch.Generator().manual_seed(mixed & 0x7FFF_FFFF_FFFF_FFFF)
        return torch.randperm(self.size, generator=generator).tolist()

    def __len__(self) -> int:
        global_batch = self.batch_size * self.world_size
        full, rest = divmod(self.size, global_batch)
        return full + (0 if self.drop_last else int(rest >= self.world_size))

    def __iter__(self) -> Iterator[list[int]]:
        epoch, start = self.epoch, self.start_batch
        self.epoch, self.start_batch = epoch + 1, 0
        order = self.order(epoch)
        global_batch = self.batch_size * self.world_size
        for b in range(start, len(self)):
            chunk = order[b * global_batch : (b + 1) * global_batch]
            share = len(chunk) // self.world_size
            yield chunk[self.rank * share : (self.rank + 1) * share]


class Loader(DataLoader[Any]):
    """A ``DataLoader`` whose batches do not depend on its number of workers.

    Workers only read and decode (``dataset[i]``); the random training
    augmentation ``augment`` runs here, in the main process, on each sample
    of a fetched batch, drawing from the global torch RNG. That RNG is what a
    checkpoint saves, so a resumed run, with workers or without, augments
    exactly as the uninterrupted one. Worker seeds come from a private
    generator, and each ``iter()`` still draws the one number from the
    global RNG that a worker-less ``DataLoader`` draws, so runs with 0 and
    with N workers see the same random numbers everywhere.
    """

    def __init__(
        self,
        dataset: Dataset[Any],
        batch_sampler: EpochBatchSampler,
        num_workers: int = 0,
        pin_memory: bool = False,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            pin_memory=pin_memory and augment is None,
            generator=torch.Generator().manual_seed(0),
        )
        self.augment = augment
        self.pin_after_augment = pin_memory and augment is not None

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # The draw a worker-less DataLoader makes for its base seed (see the class docstring).
        torch.empty((), dtype=torch.int64).random_()
        batches = super().__iter__()
        if self.augment is None:
            return batches
        return self._augmented(batches)

    def _augmented(self, batches: Iterator[Any]) -> Iterator[Any]:
        augment = self.augment
        assert augment is not None
        for images, labels in batches:
            out = torch.stack([augment(img) for img in images])  # (B, C, H, W)
            yield (out.pin_memory() if self.pin_after_augment else out), labels


def make_loader(
    dataset: Dataset[Any],
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Loader:
    """Build a ``DataLoader`` whose order depends only on ``seed``.

    The order comes from an :class:`EpochBatchSampler`: it does not consume
    (or depend on) the global RNG that model initialisation uses, two loaders
    made with the same seed give the same batches epoch after epoch, and each
    new epoch of one loader is a fresh shuffle. ``num_workers=0`` (the
    default) avoids worker start-up cost, which dominates on small data sets
    such as the digits; with ``num_workers > 0`` the workers persist across
    epochs and the batches are the same (:class:`Loader`). ``augment`` is
    applied to each image of a batch in the main process. ``rank`` and
    ``world_size`` give this process' share of each batch in a data-parallel
    run.
    """
    sampler = EpochBatchSampler(
        len(dataset),  # type: ignore[arg-type]
        batch_size,
        shuffle,
        seed,
        drop_last,
        rank,
        world_size,
    )
    return Loader(dataset, sampler, num_workers, pin_memory, augment)


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

    def __init__(self, loader: DataLoader[Any]) -> None:
        self.loader = loader
        self.epochs_started = 0
        self.batches_in_epoch = 0
        self._iterator: Iterator[Any] | None = None

    def _start_epoch(self) -> Iterator[Any]:
        """A new pass over the loader, counted; the caller keeps it as ``_iterator``."""
        self.epochs_started += 1
        self.batches_in_epoch = 0
        return iter(self.loader)

    def __iter__(self) -> InfiniteStream:
        return self

    def state(self) -> dict[str, int]:
        """Where the stream stands, for a checkpoint."""
        return {"epochs_started": self.epochs_started, "batches_in_epoch": self.batches_in_epoch}

    def restore(self, state: dict[str, int]) -> None:
        """Continue at the batch after the one ``state`` was taken at.

        Needs a loader with an :class:`EpochBatchSampler` (``make_loader``).
        """
        sampler = self.loader.batch_sampler
        if not isinstance(sampler, EpochBatchSampler):
            raise ValueError("InfiniteStream.restore needs a loader built by make_loader")
        self.epochs_started = int(state["epochs_started"])
        self.batches_in_epoch = int(state["batches_in_epoch"])
        self._iterator = None
        if self.epochs_started > 0:
            sampler.epoch, sampler.start_batch = self.epochs_started - 1, self.batches_in_epoch
            self._iterator = iter(self.loader)

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._start_epoch()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._iterator = self._start_epoch()
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
    dataset: Dataset[Any], fraction: float, seed: int
) -> tuple[Subset[Any], Subset[Any]]:
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
    n_second = round(fraction * n)
    n_first = n - n_second
    if n_first < 1 or n_second < 1:
        raise ValueError(
            f"fraction {fraction} of {n} samples leaves an empty part "
            f"({n_first} and {n_second}); both parts need at least one sample"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order[:n_first]), Subset(dataset, order[n_first:])
