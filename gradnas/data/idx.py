"""MNIST, Fashion-MNIST and Kuzushiji-MNIST from their IDX files, gzipped or not.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/, "FILE
FORMATS FOR THE MNIST DATABASE"): two zero bytes, a type byte (0x08 unsigned
byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64),
the number of dimensions, then each dimension as a big-endian uint32, then the
values, big-endian, row-major. All three sets publish the same four files:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` and the ``t10k-``
pair, usually gzipped. Debian's ``dataset-fashion-mnist`` installs the
Fashion-MNIST ones in ``/usr/share/datasets/fashion-mnist/``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class IdxSet:
    """Where a set in the IDX format is found and where to get it."""

    name: str
    title: str
    default_dir: str  # "" when the set has no standard place on disk
    source: str


IDX_SETS: dict[str, IdxSet] = {
    "mnist": IdxSet("mnist", "MNIST", "", "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": IdxSet(
        "fashion_mnist",
        "Fashion-MNIST",
        "/usr/share/datasets/fashion-mnist",
        "apt-get install dataset-fashion-mnist, or github.com/zalandoresearch/fashion-mnist",
    ),
    "kmnist": IdxSet("kmnist", "Kuzushiji-MNIST", "", "github.com/rois-codh/kmnist"),
}

# torchvision keeps the raw files in ROOT/<Class>/raw/; accept that layout too.
_SUBFOLDERS = ("", "raw", "MNIST/raw", "FashionMNIST/raw", "KMNIST/raw")


def read_idx(path: str | Path) -> np.ndarray:
    """The array one IDX file holds (gzip is recognised by its magic bytes).

    The header's dimensions must account for exactly the bytes that follow;
    a truncated download or a file of another format is a :class:`DataError`
    that names the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: not a readable gzip file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"{path}: not an IDX file (its first bytes are {raw[:4].hex(' ')})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: IDX header is cut short ({len(raw)} bytes)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        shape = "x".join(map(str, dims))
        raise DataError(
            f"{path}: the IDX header says {shape} values ({expected} bytes) but {len(raw) - header} "
            f"bytes follow; the file is truncated or not what its name says"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in (".gz", ""):
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def find_idx_files(name: str, data_dir: str | Path) -> dict[str, Path]:
    """The four files of set ``name`` in ``data_dir`` (or its ``raw/`` folders)."""
    spec = IDX_SETS[name]
    stems = {
        "train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte",
        "test_labels": "t10k-labels-idx1-ubyte",
    }
    base = Path(data_dir)
    if not base.is_dir():
        raise DataError(
            f"{spec.title}: data_dir {str(base)!r} is not a folder (get it: {spec.source})"
        )
    best: tuple[int, Path, dict[str, Path]] = (-1, base, {})
    for sub in _SUBFOLDERS:
        folder = base / sub if sub else base
        found = {key: p for key, stem in stems.items() if (p := _find(folder, stem)) is not None}
        if len(found) == len(stems):
            return found
        if len(found) > best[0]:
            best = (len(found), folder, found)
    _, folder, found = best
    missing = [f"{stems[k]}[.gz]" for k in stems if k not in found]
    raise DataError(
        f"{spec.title} file(s) missing in {folder}: {', '.join(missing)} (get them: {spec.source})"
    )


def read_idx_set(
    name: str, data_dir: str | Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training images ``(N, 1, H, W)`` uint8 and labels ``(N,)`` int64, then the test pair."""
    files = find_idx_files(name, data_dir)
    out = []
    for part in ("train", "test"):
        images, labels = read_idx(files[f"{part}_images"]), read_idx(files[f"{part}_labels"])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(
                f"{files[f'{part}_images']}: expected unsigned bytes of shape (N, H, W), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{files[f'{part}_labels']}: {labels.shape} labels for {images.shape[0]} images "
                f"in {files[f'{part}_images'].name}"
            )
        out += [images[:, None], labels.astype(np.int64)]  # (N, 1, H, W), (N,)
    return out[0], out[1], out[2], out[3]
