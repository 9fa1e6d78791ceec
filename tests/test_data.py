"""Tests for gradnas.data: the digits split, loaders, InfiniteStream, split_dataset."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from gradnas.data import (
    DataSplits,
    InfiniteStream,
    load_digits_splits,
    make_loader,
    split_dataset,
)

N_DIGITS = 1797
PARTS = ("train", "val", "test")


@pytest.fixture(scope="module")
def splits() -> DataSplits:
    return load_digits_splits(seed=0)


@pytest.fixture(scope="module")
def raw() -> tuple[np.ndarray, np.ndarray]:
    bunch = load_digits()
    return bunch.images.astype(np.float64), bunch.target


# --- digits split -----------------------------------------------------------


def test_split_sizes_add_up_to_all_samples(splits: DataSplits) -> None:
    sizes = {p: len(getattr(splits, p)) for p in PARTS}
    assert sum(sizes.values()) == N_DIGITS
    assert {p: len(splits.indices[p]) for p in PARTS} == sizes


def test_default_sizes_hold_out_20_percent_and_halve_the_rest(splits: DataSplits) -> None:
    assert (len(splits.train), len(splits.val), len(splits.test)) == (719, 719, 359)


def test_val_fraction_is_share_of_non_test_part() -> None:
    s = load_digits_splits(seed=0, val_fraction=0.25, test_fraction=0.2)
    non_test = len(s.train) + len(s.val)
    assert len(s.test) == 359
    assert len(s.val) == round(0.25 * non_test)


def test_split_indices_are_disjoint_and_cover_all(splits: DataSplits) -> None:
    sets = [set(splits.indices[p].tolist()) for p in PARTS]
    assert all(len(s) == len(splits.indices[p]) for s, p in zip(sets, PARTS))
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set().union(*sets) == set(range(N_DIGITS))


def test_datasets_hold_the_rows_named_by_indices(splits: DataSplits, raw) -> None:
    images, labels = raw
    for p in PARTS:
        x, y = getattr(splits, p).tensors
        idx = splits.indices[p]
        assert torch.equal(y, torch.from_numpy(labels[idx].astype(np.int64)))
        expected = (images[idx] / 16.0 - splits.mean) / splits.std
        np.testing.assert_allclose(x[:, 0].numpy(), expected, atol=1e-5)


def test_same_seed_gives_identical_split(splits: DataSplits) -> None:
    again = load_digits_splits(seed=0)
    for p in PARTS:
        np.testing.assert_array_equal(again.indices[p], splits.indices[p])
        assert torch.equal(getattr(again, p).tensors[0], getattr(splits, p).tensors[0])


def test_different_seed_gives_different_split(splits: DataSplits) -> None:
    other = load_digits_splits(seed=1)
    for p in PARTS:
        assert set(other.indices[p].tolist()) != set(splits.indices[p].tolist())


def test_shapes_and_dtypes(splits: DataSplits) -> None:
    for p in PARTS:
        x, y = getattr(splits, p).tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and y.shape == (x.shape[0],)


def test_metadata(splits: DataSplits) -> None:
    assert (splits.in_channels, splits.num_classes, splits.image_size, splits.name) == (
        1,
        10,
        8,
        "digits",
    )


def test_train_split_is_standardised(splits: DataSplits) -> None:
    x = splits.train.tensors[0].double()
    assert abs(x.mean().item()) < 1e-5
    assert abs(x.std(unbiased=False).item() - 1.0) < 1e-5


def test_statistics_come_from_train_only(splits: DataSplits, raw) -> None:
    images, _ = raw
    train_pixels = images[splits.indices["train"]] / 16.0
    assert splits.mean == pytest.approx(train_pixels.mean(), abs=1e-12)
    assert splits.std == pytest.approx(train_pixels.std(), abs=1e-12)
    # Statistics of all data differ, so this would catch leakage from val/test.
    assert splits.mean != pytest.approx((images / 16.0).mean(), abs=1e-9)


def test_val_and_test_use_train_statistics(splits: DataSplits, raw) -> None:
    images, _ = raw
    train_pixels = images[splits.indices["train"]] / 16.0
    mean, std = train_pixels.mean(), train_pixels.std()
    for p in ("val", "test"):
        expected = (images[splits.indices[p]] / 16.0 - mean) / std
        np.testing.assert_allclose(getattr(splits, p).tensors[0][:, 0].numpy(), expected, atol=1e-5)


def test_labels_in_range_and_all_classes_in_train(splits: DataSplits) -> None:
    for p in PARTS:
        y = getattr(splits, p).tensors[1]
        assert int(y.min()) >= 0 and int(y.max()) <= 9
    assert set(splits.train.tensors[1].tolist()) == set(range(10))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"test_fraction": 0.9999}, "empty split"),
    ],
)
def test_bad_fractions_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_digits_splits(**kwargs)


# --- make_loader ------------------------------------------------------------


def _order(loader) -> list[int]:
    return [i for (batch,) in loader for i in batch.tolist()]


def test_loader_order_is_reproducible_with_same_seed() -> None:
    data = TensorDataset(torch.arange(50))
    assert _order(make_loader(data, 7, True, seed=3)) == _order(make_loader(data, 7, True, seed=3))


def test_loader_order_differs_with_other_seed() -> None:
    data = TensorDataset(torch.arange(50))
    assert _order(make_loader(data, 7, True, seed=3)) != _order(make_loader(data, 7, True, seed=4))


def test_loader_does_not_depend_on_global_rng() -> None:
    data = TensorDataset(torch.arange(50))
    torch.manual_seed(0)
    first = _order(make_loader(data, 7, True, seed=3))
    torch.manual_seed(123)
    assert _order(make_loader(data, 7, True, seed=3)) == first


def test_loader_drop_last() -> None:
    data = TensorDataset(torch.arange(10))
    assert [len(b) for (b,) in make_loader(data, 3, False, 0, drop_last=True)] == [3, 3, 3]


# --- InfiniteStream ---------------------------------------------------------


def _stream_of_ten(seed: int = 0) -> InfiniteStream:
    return InfiniteStream(make_loader(TensorDataset(torch.arange(10)), 3, True, seed))


def _take_epoch(stream: InfiniteStream) -> list[int]:
    # 10 items in batches of 3 without drop_last: 3 + 3 + 3 + 1.
    return [i for _ in range(4) for i in next(stream)[0].tolist()]


def test_stream_yields_every_sample_once_per_epoch() -> None:
    stream = _stream_of_ten()
    for _ in range(3):
        assert Counter(_take_epoch(stream)) == Counter(range(10))


def test_stream_crosses_epoch_boundary() -> None:
    stream = _stream_of_ten()
    _take_epoch(stream)
    assert (stream.epochs_started, stream.batches_in_epoch) == (1, 4)
    batch = next(stream)
    assert len(batch[0]) == 3
    assert (stream.epochs_started, stream.batches_in_epoch) == (2, 1)


def test_stream_reshuffles_between_epochs() -> None:
    stream = _stream_of_ten()
    epochs = [_take_epoch(stream) for _ in range(3)]
    assert len({tuple(e) for e in epochs}) > 1


def test_stream_counts_start_at_zero() -> None:
    stream = _stream_of_ten()
    assert (stream.epochs_started, stream.batches_in_epoch) == (0, 0)


def test_stream_on_empty_loader_raises() -> None:
    loader = make_loader(TensorDataset(torch.arange(2)), 3, True, 0, drop_last=True)
    with pytest.raises(RuntimeError, match="yields no batches"):
        next(InfiniteStream(loader))


# --- split_dataset ----------------------------------------------------------


def test_split_dataset_is_disjoint_covering_and_sized() -> None:
    first, second = split_dataset(TensorDataset(torch.arange(10)), 0.3, seed=0)
    a, b = set(first.indices), set(second.indices)
    assert (len(a), len(b)) == (7, 3)
    assert not a & b and a | b == set(range(10))


def test_split_dataset_is_seeded() -> None:
    data = TensorDataset(torch.arange(100))
    assert split_dataset(data, 0.5, 1)[1].indices == split_dataset(data, 0.5, 1)[1].indices
    assert split_dataset(data, 0.5, 1)[1].indices != split_dataset(data, 0.5, 2)[1].indices


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.2])
def test_split_dataset_rejects_fraction_outside_unit_interval(fraction: float) -> None:
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        split_dataset(TensorDataset(torch.arange(10)), fraction, seed=0)


@pytest.mark.parametrize("fraction", [0.01, 0.99])
def test_split_dataset_rejects_empty_part(fraction: float) -> None:
    with pytest.raises(ValueError, match="leaves an empty part"):
        split_dataset(TensorDataset(torch.arange(10)), fraction, seed=0)


def test_epoch_order_is_a_function_of_seed_and_epoch_only():
    from gradnas.data import EpochBatchSampler

    a = EpochBatchSampler(20, 3, shuffle=True, seed=5)
    b = EpochBatchSampler(20, 3, shuffle=True, seed=5)
    assert a.order(4) == b.order(4) and a.order(4) != a.order(5)
    assert sorted(a.order(4)) == list(range(20))
    first = list(a)  # epoch 0, advances to epoch 1
    assert a.epoch == 1 and [i for batch in first for i in batch] == a.order(0)


def test_sampler_resumes_mid_epoch_at_the_right_batch():
    from gradnas.data import EpochBatchSampler

    full = EpochBatchSampler(20, 3, shuffle=True, seed=1)
    list(full)
    expected = list(full)  # epoch 1
    resumed = EpochBatchSampler(20, 3, shuffle=True, seed=1)
    resumed.epoch, resumed.start_batch = 1, 4
    assert list(resumed) == expected[4:]


def test_stream_restores_across_an_epoch_boundary():
    data = TensorDataset(torch.arange(10))
    stream = InfiniteStream(make_loader(data, 3, shuffle=True, seed=2))
    for _ in range(5):  # one full epoch (4 batches) and one batch into the next
        next(stream)
    state = stream.state()
    expected = [next(stream)[0].tolist() for _ in range(6)]
    restored = InfiniteStream(make_loader(data, 3, shuffle=True, seed=2))
    restored.restore(state)
    assert [next(restored)[0].tolist() for _ in range(6)] == expected
