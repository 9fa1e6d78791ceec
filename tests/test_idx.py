"""MNIST-format (IDX) files written byte by byte, and the real Fashion-MNIST when installed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from gradnas.data.errors import DataError
from gradnas.data.idx import read_idx
from gradnas.data.sources import load_splits

FASHION = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(values: list[int], dims: list[int], type_byte: int = 0x08) -> bytes:
    """The IDX layout as the MNIST page states it: 0, 0, type, ndim, big-endian dims, data."""
    out = bytearray([0, 0, type_byte, len(dims)])
    for d in dims:
        out += bytes([(d >> 24) & 255, (d >> 16) & 255, (d >> 8) & 255, d & 255])
    out += bytes(values)
    return bytes(out)


def pixel(i: int, r: int, c: int) -> int:
    return (i * 31 + r * 7 + c * 3) % 256


def write_mnist(
    folder: Path, n_train: int = 12, n_test: int = 6, side: int = 6, zipped: bool = True
) -> Path:
    """Images with distinct pixels; labels cycle 0, 1, 2 (train) so every class is present."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, offset in (("train", n_train, 0), ("t10k", n_test, 100)):
        values = [
            pixel(offset + i, r, c) for i in range(n) for r in range(side) for c in range(side)
        ]
        files = {
            f"{prefix}-images-idx3-ubyte": idx_bytes(values, [n, side, side]),
            f"{prefix}-labels-idx1-ubyte": idx_bytes([i % 3 for i in range(n)], [n]),
        }
        for name, raw in files.items():
            if zipped:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


@pytest.mark.parametrize("zipped", [True, False])
def test_read_idx_gives_the_written_values(tmp_path, zipped):
    folder = write_mnist(tmp_path, zipped=zipped)
    name = "train-images-idx3-ubyte" + (".gz" if zipped else "")
    images = read_idx(folder / name)
    assert images.shape == (12, 6, 6) and images.dtype == np.uint8
    assert images[5, 2, 4] == pixel(5, 2, 4) and images[11, 5, 0] == pixel(11, 5, 0)


def test_header_that_does_not_match_the_size_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes([0] * 70, [2, 6, 6]))  # header: 72 bytes, 70 follow
    with pytest.raises(DataError, match=r"header says 2x6x6 values \(72 bytes\) but 70 bytes"):
        read_idx(path)


def test_a_file_of_another_format_is_named(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError, match=f"{path}: not an IDX file"):
        read_idx(path)


def test_mnist_splits_sizes_labels_and_normalisation(tmp_path):
    folder = write_mnist(tmp_path / "m")
    s = load_splits("mnist", str(folder), seed=0, val_fraction=0.5)
    assert (len(s.train), len(s.val), len(s.train_all), len(s.test)) == (6, 6, 12, 6)
    assert (s.in_channels, s.image_size, s.num_classes) == (1, 6, 3)
    raw = (
        np.array([[pixel(i, r, c) for r in range(6) for c in range(6)] for i in range(12)], float)
        / 255.0
    )
    assert s.mean == pytest.approx((raw.mean(),)) and s.std == pytest.approx((raw.std(),))
    x, y = s.test[4]
    expected = np.array([pixel(104, r, c) for r in range(6) for c in range(6)]) / 255.0 - raw.mean()
    assert np.allclose(x.numpy().ravel(), expected / raw.std(), atol=1e-6)
    assert int(y) == 4 % 3


def test_missing_files_are_listed(tmp_path):
    folder = write_mnist(tmp_path / "m")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"MNIST file\(s\) missing in .*t10k-labels-idx1-ubyte"):
        load_splits("mnist", str(folder))


def test_test_label_out_of_range_is_named(tmp_path):
    folder = write_mnist(tmp_path / "m", zipped=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes([0, 1, 2, 7, 0, 1], [6]))
    with pytest.raises(DataError, match=r"test label 7 out of range 0\.\.2"):
        load_splits("kmnist", str(folder))


def test_subset_is_stratified_and_seeded(tmp_path):
    folder = write_mnist(tmp_path / "m", n_train=30)
    a = load_splits("mnist", str(folder), seed=1, subset=9)
    labels = [int(a.train_all[i][1]) for i in range(len(a.train_all))]
    assert len(labels) == 9 and np.bincount(labels).tolist() == [3, 3, 3]
    again = load_splits("mnist", str(folder), seed=1, subset=9)
    other = load_splits("mnist", str(folder), seed=2, subset=9)
    first = [a.train_all[i][0] for i in range(9)]
    assert all((f == again.train_all[i][0]).all() for i, f in enumerate(first))
    assert not all((f == other.train_all[i][0]).all() for i, f in enumerate(first))
    assert len(a.test) == 6  # the test set stays whole
    ten = load_splits("mnist", str(folder), seed=1, subset=10).train_all
    # 10/3 per class: 3 each and the one left over to the first of the tied remainders
    assert np.bincount([int(ten[i][1]) for i in range(10)]).tolist() == [4, 3, 3]


def test_image_size_and_channels_resize_and_repeat(tmp_path):
    s = load_splits("mnist", str(write_mnist(tmp_path / "m")), image_size=12, channels=3)
    x, _ = s.train[0]
    assert tuple(x.shape) == (3, 12, 12) and (s.in_channels, s.image_size) == (3, 12)
    assert len(s.mean) == 3 and s.mean[0] == s.mean[1] == s.mean[2]


@pytest.mark.skipif(not FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_has_the_published_counts():
    # Xiao, Rasul & Vollgraf 2017 (arXiv:1708.07747): 60,000 training and 10,000 test
    # images of 28x28 grey pixels in 10 classes, 6,000 / 1,000 of each class.
    s = load_splits("fashion_mnist", mean=[0.5], std=[0.5])
    assert (len(s.train_all), len(s.test)) == (60_000, 10_000)
    assert (s.in_channels, s.image_size, s.num_classes) == (1, 28, 10)
    train = s.train_all.labels.numpy()  # the in-memory set keeps its labels
    test = s.test.labels.numpy()
    assert np.bincount(train).tolist() == [6_000] * 10
    assert np.bincount(test).tolist() == [1_000] * 10
