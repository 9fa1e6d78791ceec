"""CIFAR-10 and CIFAR-100 read from the official binary files, without torchvision.

The dataset authors (Krizhevsky, "Learning Multiple Layers of Features from
Tiny Images", 2009; https://www.cs.toronto.edu/~kriz/cifar.html) publish a
"binary version" of each set. CIFAR-10 (``cifar-10-binary.tar.gz``, folder
``cifar-10-batches-bin/``) has ``data_batch_1.bin`` .. ``data_batch_5.bin``
(10,000 images each) and ``test_batch.bin``; each record is 3,073 bytes: the
label, then 1,024 red, 1,024 green and 1,024 blue bytes, each channel a
row-major 32x32 image. CIFAR-100 (``cifar-100-binary.tar.gz``, folder
``cifar-100-binary/``) has ``train.bin`` and ``test.bin`` with 3,074-byte
records: the coarse (20-class) label, the fine (100-class) label, then the
pixels; gradnas uses the fine label.

The "Python version" most users have downloaded (``cifar-10-python.tar.gz``,
folder ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5`` and
``test_batch``; ``cifar-100-python.tar.gz``, folder ``cifar-100-python/`` with
``train`` and ``test``) holds the same pixels: each file is a pickled dict
whose ``data`` is a ``(N, 3072)`` uint8 array in the same channel-plane order,
with ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100). It is read with
an unpickler that admits nothing but numpy arrays, so a hostile file cannot
run code.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DataError
from .transforms import Transform, cifar_augmentation

_PIXELS = 3 * 32 * 32  # bytes of one image: 3 channel planes of 32x32

# Per-channel mean and std of the CIFAR-10 training images on [0, 1]: the
# values DARTS normalises with (CIFAR_MEAN / CIFAR_STD in cnn/utils.py of
# github.com/quark0/darts). They are the true pixel std (0.247...), not the
# 0.2023 / 0.1994 / 0.2010 that circulate in other CIFAR code.
CIFAR10_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR10_STD = (0.24703233, 0.24348505, 0.26158768)
# The same statistics of the CIFAR-100 training images (as in, e.g.,
# settings.py of github.com/weiaicunzai/pytorch-cifar100), to 4 digits.
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True)
class CifarFormat:
    """Where one CIFAR variant's binary files are and how a record is laid out."""

    name: str
    title: str
    folder: str  # the folder inside the official tarball
    tarball: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_offset: int  # byte of the label used, within a record
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    py_folder: str = ""  # the Python (pickle) version's folder
    py_train_files: tuple[str, ...] = ()
    py_test_files: tuple[str, ...] = ()
    py_label_key: str = "labels"

    @property
    def record_size(self) -> int:
        """Label byte(s) and then the pixels."""
        return self.label_offset + 1 + _PIXELS


CIFAR_FORMATS: dict[str, CifarFormat] = {
    "cifar10": CifarFormat(
        "cifar10",
        "CIFAR-10",
        "cifar-10-batches-bin",
        "cifar-10-binary.tar.gz",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        ("test_batch.bin",),
        label_offset=0,
        num_classes=10,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        py_folder="cifar-10-batches-py",
        py_train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        py_test_files=("test_batch",),
        py_label_key="labels",
    ),
    "cifar100": CifarFormat(
        "cifar100",
        "CIFAR-100",
        "cifar-100-binary",
        "cifar-100-binary.tar.gz",
        ("train.bin",),
        ("test.bin",),
        label_offset=1,
        num_classes=100,
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        py_folder="cifar-100-python",
        py_train_files=("train",),
        py_test_files=("test",),
        py_label_key="fine_labels",
    ),
}


def _get_format(name: str) -> CifarFormat:
    if name not in CIFAR_FORMATS:
        raise ValueError(f"unknown CIFAR data set {name!r}; expected one of {list(CIFAR_FORMATS)}")
    return CIFAR_FORMATS[name]


def _complete_folder(base: Path, folder: str, names: tuple[str, ...]) -> Path | None:
    for candidate in (base, base / folder):
        if all((candidate / n).is_file() for n in names):
            return candidate
    return None


def find_cifar_files(name: str, data_dir: str | Path, train: bool) -> list[Path]:
    """The paths of the files of one split, in ``data_dir`` itself or in the
    tarball's folder inside it: the binary version (``cifar-10-batches-bin/``,
    ``cifar-100-binary/``) when it is complete there, else the Python version
    (``cifar-10-batches-py/``, ``cifar-100-python/``). Missing files raise one
    ``DataError`` that lists them and says where to get them."""
    fmt = _get_format(name)
    base = Path(data_dir)
    names = fmt.train_files if train else fmt.test_files
    py_names = fmt.py_train_files if train else fmt.py_test_files
    folder = _complete_folder(base, fmt.folder, names)
    if folder is not None:
        return [folder / n for n in names]
    py = _complete_folder(base, fmt.py_folder, py_names)
    if py is not None:
        return [py / n for n in py_names]
    # Report against the version and folder that hold the most files (binary in data_dir on a tie).
    options = [
        (folder, wanted)
        for wanted, sub in ((names, fmt.folder), (py_names, fmt.py_folder))
        for folder in (base, base / sub)
    ]
    folder, wanted = max(options, key=lambda o: sum((o[0] / n).is_file() for n in o[1]))
    missing = [n for n in wanted if not (folder / n).is_file()]
    raise DataError(
        f"{fmt.title} {'training' if train else 'test'} file(s) missing in {folder}: "
        f'{", ".join(missing)}. Download the "{fmt.title} binary version" ({fmt.tarball}) or the '
        f"Python version from the dataset authors' page at the University of Toronto, {_SOURCE}, "
        f"extract it, and pass the extracted {fmt.folder}/ or {fmt.py_folder}/ folder or the "
        f"folder that contains it."
    )


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; any other global is refused."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol 2 pickles bytes
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_pickle(path: str | Path, fmt: CifarFormat) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 of one Python-version file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 -- any unpickling failure means a bad file
        raise DataError(
            f"{path}: not a {fmt.title} Python-version file ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or fmt.py_label_key not in batch:
        raise DataError(f"{path}: no 'data' and {fmt.py_label_key!r} entries; keys: {list(batch)}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[fmt.py_label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise DataError(
            f"{path}: 'data' must be uint8 of shape (N, {_PIXELS}), got {data.dtype} {data.shape}"
        )
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= fmt.num_classes):
        raise DataError(
            f"{path}: label {labels.max() if labels.max() >= fmt.num_classes else labels.min()} "
            f"out of range 0..{fmt.num_classes - 1}"
        )
    return data.reshape(-1, 3, 32, 32), labels  # (N, 3, 32, 32), RGB planes


def read_cifar_file(path: str | Path, fmt: CifarFormat) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 of one binary file."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % fmt.record_size:
        raise DataError(
            f"{path}: {raw.size} bytes is not a whole number of {fmt.title} records of "
            f"{fmt.record_size} bytes; the file is truncated or not a {fmt.title} binary file"
        )
    records = raw.reshape(-1, fmt.record_size)  # (N, record_size)
    labels = records[:, fmt.label_offset].astype(np.int64)  # (N,)
    # (N, 3, 32, 32), RGB planes
    images = records[:, fmt.record_size - _PIXELS :].reshape(-1, 3, 32, 32)
    if labels.max() >= fmt.num_classes:
        raise DataError(
            f"{path}: label {labels.max()} out of range 0..{fmt.num_classes - 1}; "
            f"is this a {fmt.title} binary file?"
        )
    return images, labels


def read_cifar(name: str, data_dir: str | Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """All images and labels of one split, files concatenated in their order."""
    fmt = _get_format(name)
    parts = [
        read_cifar_file(path, fmt) if path.suffix == ".bin" else read_cifar_pickle(path, fmt)
        for path in find_cifar_files(name, data_dir, train)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class CifarDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """uint8 images in memory, served as normalised float tensors.

    Item ``i`` is ``(transform((images[i] / 255 - mean) / std), labels[i])``:
    a float32 ``(C, H, W)`` tensor and an int64 label. Normalising before the
    transform is what lets cutout zero a square to the mean colour, as DARTS'
    cutout (applied after ``Normalize``) does.

    Args:
        images: ``(N, C, H, W)`` uint8 array or tensor.
        labels: ``(N,)`` integer labels.
        mean: per-channel means on the [0, 1] scale.
        std: per-channel standard deviations on the [0, 1] scale.
        transform: applied to each normalised image, e.g. ``cifar_augmentation(...)``.
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        mean: Sequence[float] = CIFAR10_MEAN,
        std: Sequence[float] = CIFAR10_STD,
        transform: Transform | None = None,
    ) -> None:
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels)
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 (N, C, H, W) array, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}"
            )
        if len(mean) != images.shape[1] or len(std) != images.shape[1]:
            raise ValueError(
                f"mean and std need one value per channel ({images.shape[1]}), "
                f"got {len(mean)} and {len(std)}"
            )
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.transform = transform
        self._mean = torch.tensor(self.mean).reshape(-1, 1, 1)  # (C, 1, 1)
        self._std = torch.tensor(self.std).reshape(-1, 1, 1)  # (C, 1, 1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = (self.images[index].float() / 255.0 - self._mean) / self._std  # (C, H, W)
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[index]

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]


def load_cifar(
    name: str,
    data_dir: str | Path,
    train: bool,
    augment: bool,
    cutout: int = 0,
    generator: torch.Generator | None = None,
) -> CifarDataset:
    """CIFAR-10 (``"cifar10"``) or CIFAR-100 (``"cifar100"``) from the binary files.

    ``data_dir`` is the extracted tarball folder or the folder containing
    it. ``augment`` adds DARTS' random crop (4 pixels of padding) and
    horizontal flip; ``cutout`` > 0 adds cutout of that length (DARTS
    retrains with 16). Both are usually set for the training split only.
    Images are normalised with the set's published mean and std
    (``CIFAR10_MEAN`` / ``CIFAR10_STD`` are DARTS' values).
    """
    fmt = _get_format(name)
    images, labels = read_cifar(name, data_dir, train)
    transform = None
    if augment or cutout:
        transform = cifar_augmentation(
            fmt.mean, fmt.std, augment=augment, cutout_length=cutout, generator=generator
        )
    return CifarDataset(images, labels, fmt.mean, fmt.std, transform)
