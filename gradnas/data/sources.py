"""One entry point for every data source: search halves, retraining set, test set.

``load_splits`` reads a source by name (``digits``, ``imagefolder``,
``mnist`` / ``fashion_mnist`` / ``kmnist``, ``cifar10`` / ``cifar100``), a
``MODULE:FACTORY`` reference, or ``datasets=(train, test)`` objects, and
returns :class:`Splits`: the data sets plus what a network must know about
them (channels, image size, classes, normalisation), all read off the data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from .cifar import CIFAR_FORMATS, CifarDataset, read_cifar
from .custom import call_factory, check_item, check_pair, class_count, dataset_labels
from .digits import load_digits_splits
from .errors import DataError
from .idx import IDX_SETS, read_idx_set
from .imagefolder import ImageFolderDataset, class_folders, list_images
from .loaders import split_dataset
from .stats import channel_stats, stratified_subset, uint8_channel_stats
from .transforms import Compose, Transform, image_augmentation, random_crop, resize_square
from .transforms import cutout as cutout_transform

SOURCES = ("digits", "imagefolder", "mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100")
FILE_SOURCES = SOURCES[1:]  # the sources that read data_dir
# Statistics of an image folder come from at most this many training images (a
# seeded sample): ImageNet's 1.28M would cost a whole extra epoch of decoding,
# and 10,000 images give each channel's mean to about 1e-3.
STATS_SAMPLE = 10_000


class TransformedDataset(Dataset[tuple[torch.Tensor, Any]]):
    """Applies ``transform`` to the image of each ``(image, label)`` sample."""

    def __init__(self, base: Dataset[Any], transform: Transform) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, label = self.base[index]
        return self.transform(image), label


@dataclass
class Splits:
    """The data of a run.

    ``train`` and ``val`` are the two halves a bilevel search alternates
    between (DARTS splits the training data 50/50); ``train_all`` is both
    together, what a derived network is retrained on; ``test`` is never
    seen by a search. The sets serve normalised, un-augmented images;
    ``augmentation`` (random, per image, or None) is what a loader applies
    to training batches (:func:`gradnas.data.make_loader`). ``in_channels``,
    ``image_size``, ``num_classes``, ``mean`` and ``std`` (per channel, on
    the [0, 1] scale; empty when the images are used as they come) describe
    the images a network gets.
    """

    name: str
    train: Dataset[Any]
    val: Dataset[Any]
    train_all: Dataset[Any]
    test: Dataset[Any]
    in_channels: int
    num_classes: int
    image_size: int = 8
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    augmentation: Transform | None = None
    classes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """What a run folder keeps about its data (``data.json``)."""
        return {
            "name": self.name,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "num_classes": self.num_classes,
            "classes": self.classes,
            "mean": list(self.mean),
            "std": list(self.std),
            "sizes": {
                part: len(getattr(self, part)) for part in ("train", "val", "train_all", "test")
            },
        }


@dataclass
class _Source:
    """One source read from disk or code, before subset and search split."""

    train: Dataset[Any]  # all training images
    train_labels: np.ndarray
    test: Dataset[Any]
    val: Dataset[Any] | None  # a given validation set (imagefolder val/), else split from train
    channels: int
    image_size: int
    num_classes: int
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool  # random horizontal flip suits these images
    chosen: np.ndarray | None = None  # the data.subset indices into train, None: all


def _digits_augmentation(augment: bool, cutout: int) -> Transform | None:
    # 8x8 digits: a 1-pixel shift is the analogue of CIFAR's 4 pixels on 32x32;
    # no flip, since mirrored digits are other symbols. Pad with the image
    # minimum (the normalised background) rather than 0.
    steps: list[Transform] = []
    if augment:
        steps.append(_pad_with_minimum)
    if cutout:
        steps.append(partial(cutout_transform, length=cutout))
    return Compose(steps) if steps else None


def _pad_with_minimum(img: torch.Tensor) -> torch.Tensor:
    return random_crop(img, padding=1, fill=float(img.min()))


def _channel_adapter(img: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey to RGB by repeating the channel; RGB to grey by ITU-R 601 luma, as Pillow's "L"."""
    if img.shape[0] == channels:
        return img
    if channels == 3 and img.shape[0] == 1:
        return img.expand(3, -1, -1).clone()
    if channels == 1 and img.shape[0] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=img.dtype).reshape(3, 1, 1)
        return (img * weights).sum(0, keepdim=True)
    raise DataError(f"cannot turn {img.shape[0]}-channel images into {channels} channels")


def _adapt(img: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    return resize_square(_channel_adapter(img, channels), size)


def _grey_uint8(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` images with ``channels`` channels (0: as they are)."""
    if channels in (0, images.shape[1]):
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=1)
    luma = np.tensordot(np.array([0.299, 0.587, 0.114]), images.astype(np.float64), axes=([0], [1]))
    return np.rint(luma)[:, None].astype(np.uint8)  # (N, 1, H, W)


def _stats_or_given(
    given_mean: Sequence[float],
    given_std: Sequence[float],
    channels: int,
    compute: Callable[[], tuple[tuple[float, ...], tuple[float, ...]]],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if given_mean:
        if len(given_mean) not in (1, channels) or len(given_std) != len(given_mean):
            raise DataError(
                f"data.mean and data.std need 1 or {channels} values (one per channel), "
                f"got {len(given_mean)} and {len(given_std)}"
            )
        return tuple(given_mean) * (channels // len(given_mean)), tuple(given_std) * (
            channels // len(given_std)
        )
    return compute()


def _memory_source(
    images: np.ndarray,
    labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    title: str,
    subset_idx: Any,
    image_size: int,
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
    fixed_stats: tuple[tuple[float, ...], tuple[float, ...]] | None,
    flip: bool,
) -> _Source:
    """A set held in memory as uint8 arrays (the IDX and CIFAR files)."""
    num_classes = int(labels.max()) + 1
    bad = test_labels[(test_labels < 0) | (test_labels >= num_classes)]
    if bad.size:
        raise DataError(f"{title}: test label {int(bad[0])} out of range 0..{num_classes - 1}")
    images, test_images = _grey_uint8(images, channels), _grey_uint8(test_images, channels)
    c, native = images.shape[1], images.shape[2]
    size = image_size or native
    resize = None if size == native else partial(resize_square, size=size)
    chosen = subset_idx(labels)
    train_pixels = images if chosen is None else images[chosen]

    def compute() -> tuple[tuple[float, ...], tuple[float, ...]]:
        if fixed_stats is not None and fixed_stats[0] and len(fixed_stats[0]) == c:
            return fixed_stats
        if resize is None:
            return uint8_channel_stats(train_pixels)
        plain = CifarDataset(train_pixels, np.zeros(len(train_pixels)), [0.0] * c, [1.0] * c)
        return channel_stats(
            TransformedDataset(TransformedDataset(plain, partial(_times, k=1 / 255)), resize)
        )

    m, s = _stats_or_given(mean, std, c, compute)
    return _Source(
        train=CifarDataset(images, labels, m, s, resize),
        train_labels=labels,
        test=CifarDataset(test_images, test_labels, m, s, resize),
        val=None,
        channels=c,
        image_size=size,
        num_classes=num_classes,
        classes=[str(i) for i in range(num_classes)],
        mean=m,
        std=s,
        flip=flip,
        chosen=chosen,
    )


def _times(img: torch.Tensor, k: float) -> torch.Tensor:
    return img * k


def _imagefolder_source(
    data_dir: str,
    seed: int,
    test_fraction: float,
    subset_idx: Any,
    image_size: int,
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
    num_workers: int,
) -> _Source:
    root = Path(data_dir)
    split_root = (root / "train").is_dir()
    train_root = root / "train" if split_root else root
    classes = class_folders(train_root)
    if split_root and not (root / "test").is_dir():
        raise DataError(
            f"{root}: has train/ but no test/; give both (and optionally val/), or put the class "
            f"folders in {root} itself to split off data.test_fraction as the test set"
        )
    if len(classes) < 2:
        raise DataError(
            f"{train_root}: found {len(classes)} class folder(s) {classes}; an image folder needs "
            f"at least 2 (ROOT/CLASS/image.png)"
        )
    train = list_images(train_root, classes)
    parts = [train]
    test = val = None
    if split_root:
        test = list_images(root / "test", classes)
        parts.append(test)
        if (root / "val").is_dir():
            val = list_images(root / "val", classes)
            parts.append(val)
    c = channels or (1 if all(p.grey for p in parts) else 3)
    sizes = set().union(*(p.sizes for p in parts))
    size = image_size
    if not size:
        (w, h), *others = sorted(sizes)
        if others or w != h:
            shown = ", ".join(f"{a}x{b}" for a, b in sorted(sizes)[:3])
            raise DataError(
                f"{root}: the images are not all of one square size ({shown}"
                f"{', ...' if len(sizes) > 3 else ''}); set data.image_size to resize and "
                f"centre-crop them"
            )
        size = w
    files, labels = train.files, np.asarray(train.labels, dtype=np.int64)
    if test is None:  # one folder: a seeded, class-stratified share becomes the test set
        n_test = round(test_fraction * len(files))
        if not 1 <= n_test < len(files):
            raise DataError(
                f"{root}: data.test_fraction {test_fraction} of {len(files)} images leaves "
                f"{n_test} test images"
            )
        test_idx = set(stratified_subset(labels, n_test, seed).tolist())
        keep = [i for i in range(len(files)) if i not in test_idx]
        test_files = [files[i] for i in sorted(test_idx)]
        test_labels = [int(labels[i]) for i in sorted(test_idx)]
        files, labels = [files[i] for i in keep], labels[keep]
    else:
        test_files, test_labels = test.files, test.labels
    chosen = subset_idx(labels)
    if chosen is not None:
        files, labels = [files[i] for i in chosen], labels[chosen]

    def compute() -> tuple[tuple[float, ...], tuple[float, ...]]:
        plain = ImageFolderDataset(files, labels.tolist(), c, size)
        sample = None
        if len(files) > STATS_SAMPLE:
            sample = np.sort(np.random.default_rng(seed).permutation(len(files))[:STATS_SAMPLE])
        return channel_stats(plain, None if sample is None else sample.tolist(), num_workers)

    m, s = _stats_or_given(mean, std, c, compute)
    return _Source(
        train=ImageFolderDataset(files, labels.tolist(), c, size, m, s),
        train_labels=labels,  # already the subset
        test=ImageFolderDataset(test_files, test_labels, c, size, m, s),
        val=None if val is None else ImageFolderDataset(val.files, val.labels, c, size, m, s),
        channels=c,
        image_size=size,
        num_classes=len(classes),
        classes=classes,
        mean=m,
        std=s,
        flip=True,
    )


def _dataset_source(
    train: Dataset[Any],
    test: Dataset[Any],
    what: str,
    image_size: int,
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> _Source:
    (c, h, w), _ = check_item(train[0], f"{what}: training item 0")
    (tc, th, tw), _ = check_item(test[0], f"{what}: test item 0")
    if (tc, th, tw) != (c, h, w) and not image_size:
        raise DataError(
            f"{what}: test images are {tc}x{th}x{tw}, training images {c}x{h}x{w}; "
            f"set data.image_size (and data.channels) to bring them to one shape"
        )
    if h != w and not image_size:
        raise DataError(f"{what}: images are {h}x{w}, not square; set data.image_size")
    labels = dataset_labels(train, f"{what}: training set")
    test_labels = dataset_labels(test, f"{what}: test set")
    num_classes = class_count(train, labels, test_labels, what)
    names = getattr(train, "classes", None)
    out_c, size = channels or c, image_size or h
    if (out_c, size) != (c, h) or (tc, th) != (c, h):
        adapt = partial(_adapt, channels=out_c, size=size)
        train, test = TransformedDataset(train, adapt), TransformedDataset(test, adapt)
    m: tuple[float, ...] = ()
    s: tuple[float, ...] = ()
    if mean:
        m, s = _stats_or_given(mean, std, out_c, lambda: ((), ()))
        norm = partial(_normalise, mean=m, std=s)
        train, test = TransformedDataset(train, norm), TransformedDataset(test, norm)
    return _Source(
        train=train,
        train_labels=labels,
        test=test,
        val=None,
        channels=out_c,
        image_size=size,
        num_classes=num_classes,
        classes=[str(n) for n in names]
        if names is not None
        else [str(i) for i in range(num_classes)],
        mean=m,
        std=s,
        flip=False,
    )


def _normalise(img: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=img.dtype).reshape(-1, 1, 1)
    s = torch.tensor(std, dtype=img.dtype).reshape(-1, 1, 1)
    return (img - m) / s


def load_splits(
    name: str,
    data_dir: str = "",
    seed: int = 0,
    val_fraction: float = 0.5,
    test_fraction: float = 0.2,
    augment: bool = False,
    cutout: int = 0,
    *,
    subset: int = 0,
    image_size: int = 0,
    channels: int = 0,
    mean: Sequence[float] = (),
    std: Sequence[float] = (),
    num_workers: int = 0,
    datasets: tuple[Dataset[Any], Dataset[Any]] | None = None,
) -> Splits:
    """The data source ``name`` split for search and retraining.

    ``name`` is one of :data:`SOURCES`, a ``MODULE:FACTORY`` /
    ``FILE.py:FACTORY`` reference called as ``FACTORY(seed)``, or anything
    (a label) when ``datasets=(train, test)`` gives the sets as objects.
    ``subset`` > 0 keeps that many training images, class-stratified and
    seeded; the test set stays whole. ``image_size`` and ``channels`` (0:
    the data's own) resize / convert the images; ``mean`` / ``std`` (empty:
    computed on the training images, the published values for CIFAR, none
    for a user's ``Dataset``) normalise them. ``num_workers`` decode the
    images of an image folder for its statistics pass.

    ``augment`` (a random shift, plus a horizontal flip for natural images:
    image folders and CIFAR) and ``cutout`` make ``Splits.augmentation``,
    which loaders apply to training data only, never to ``test``.
    """
    if name == "digits" and datasets is None:
        return _digits(
            seed, val_fraction, test_fraction, augment, cutout, subset, image_size, channels, mean
        )

    def subset_idx(labels: np.ndarray) -> np.ndarray | None:
        if not subset:
            return None
        if subset > len(labels):
            raise DataError(
                f"data.subset {subset} is more than the {len(labels)} training images of {name}"
            )
        return stratified_subset(labels, subset, seed)

    if datasets is not None:
        train, test = check_pair(datasets, "datasets")
        src = _dataset_source(train, test, "datasets", image_size, channels, mean, std)
        src.chosen = subset_idx(src.train_labels)
    elif ":" in name:
        train, test = call_factory(name, seed)
        src = _dataset_source(train, test, f"--data {name!r}", image_size, channels, mean, std)
        src.chosen = subset_idx(src.train_labels)
    elif name == "imagefolder":
        src = _imagefolder_source(
            data_dir, seed, test_fraction, subset_idx, image_size, channels, mean, std, num_workers
        )
    elif name in IDX_SETS:
        spec = IDX_SETS[name]
        x, y, tx, ty = read_idx_set(name, data_dir or spec.default_dir)
        src = _memory_source(
            x, y, tx, ty, spec.title, subset_idx, image_size, channels, mean, std, None, False
        )
    elif name in CIFAR_FORMATS:
        fmt = CIFAR_FORMATS[name]
        x, y = read_cifar(name, data_dir, train=True)
        tx, ty = read_cifar(name, data_dir, train=False)
        src = _memory_source(
            x, y, tx, ty, fmt.title, subset_idx, image_size, channels, mean, std,
            (fmt.mean, fmt.std), True,
        )  # fmt: skip
    else:
        raise DataError(
            f"unknown data source {name!r}; known: {', '.join(SOURCES)}, or MODULE:FACTORY"
        )
    if src.num_classes < 2:
        raise DataError(f"{name}: the training set has {src.num_classes} class; need at least 2")
    train_all = src.train if src.chosen is None else Subset(src.train, src.chosen.tolist())
    if src.val is not None:
        train, val = train_all, src.val
        train_all = ConcatDataset([train, val])
    else:
        train, val = split_dataset(train_all, val_fraction, seed)
    aug = image_augmentation(src.mean or (0.0,) * src.channels, src.std or (1.0,) * src.channels,
                             src.image_size, augment, src.flip, cutout)  # fmt: skip
    return Splits(
        name if datasets is None else name or "datasets",
        train, val, train_all, src.test, src.channels, src.num_classes, src.image_size,
        src.mean, src.std, aug, src.classes,
    )  # fmt: skip


def _digits(
    seed: int,
    val_fraction: float,
    test_fraction: float,
    augment: bool,
    cutout: int,
    subset: int,
    image_size: int,
    channels: int,
    mean: Sequence[float],
) -> Splits:
    if mean:
        raise DataError(
            "digits standardises itself on its training half; data.mean/std do not apply"
        )
    d = load_digits_splits(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    train: Dataset[Any] = d.train
    val: Dataset[Any] = d.val
    test: Dataset[Any] = d.test
    c, size = channels or d.in_channels, image_size or d.image_size
    if (c, size) != (d.in_channels, d.image_size):
        adapt = partial(_adapt, channels=c, size=size)
        train, val, test = (TransformedDataset(x, adapt) for x in (train, val, test))
    train_all: Dataset[Any] = ConcatDataset([train, val])
    if subset:
        labels = np.concatenate([d.train.tensors[1].numpy(), d.val.tensors[1].numpy()])
        if subset > len(labels):
            raise DataError(
                f"data.subset {subset} is more than the {len(labels)} search images of digits"
            )
        train_all = Subset(train_all, stratified_subset(labels, subset, seed).tolist())
        train, val = split_dataset(train_all, val_fraction, seed)
    return Splits(
        "digits", train, val, train_all, test, c, d.num_classes, size,
        (d.mean,) * c, (d.std,) * c, _digits_augmentation(augment, cutout),
        [str(i) for i in range(d.num_classes)],
    )  # fmt: skip
