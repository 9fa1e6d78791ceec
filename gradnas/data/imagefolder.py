"""A class-per-folder image tree (``ROOT/CLASS/*.png``), read lazily with Pillow.

The layout is torchvision's ``ImageFolder``: every subfolder of the root is
one class, classes are numbered in sorted name order, and every image file
below a class folder (at any depth) is one sample. Indexing opens each file
once for its header only (mode and size: cheap, and an unreadable file is
named before a run starts); the pixels are decoded in ``__getitem__``, so in
the DataLoader's worker processes, and nothing but the file list is held in
memory, whatever the size of the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# Pillow modes that carry no colour: read as one channel unless data.channels says 3.
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


@dataclass(frozen=True)
class ImageList:
    """The files of one split, their labels, and what their headers say."""

    files: list[Path]
    labels: list[int]
    grey: bool  # every image is greyscale
    sizes: set[tuple[int, int]]  # the distinct (width, height) seen


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        raise DataError("reading image folders needs Pillow: pip install pillow") from None
    return Image


def class_folders(root: Path) -> list[str]:
    """The class names under ``root``: its subfolders, sorted, hidden ones skipped."""
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} does not exist or is not a folder")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_images(root: Path, classes: Sequence[str]) -> ImageList:
    """Every image file under ``root/CLASS/`` for the given classes, labelled by position."""
    image = _pillow()
    files: list[Path] = []
    labels: list[int] = []
    grey, sizes = True, set()
    present = set(class_folders(root))
    extra = sorted(present - set(classes))
    if extra:
        raise DataError(
            f"{root}: class folder {extra[0]!r} is not among the training classes "
            f"{list(classes)}; every split needs the training split's classes"
        )
    for label, name in enumerate(classes):
        folder = root / name
        found = (
            sorted(
                p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
            )
            if folder.is_dir()
            else []
        )
        if not found and name in present:
            raise DataError(
                f"{folder}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})"
            )
        for path in found:
            try:
                with image.open(path) as img:
                    mode, size = img.mode, img.size
            except (OSError, ValueError) as err:
                raise DataError(f"{path}: not a readable image ({err})") from None
            grey = grey and mode in _GREY_MODES
            sizes.add(size)
            files.append(path)
            labels.append(label)
    return ImageList(files, labels, grey, sizes)


def decode(path: Path, channels: int, size: int) -> torch.Tensor:
    """The image at ``path`` as ``(channels, size, size)`` uint8: the shorter side
    resized to ``size`` (bilinear, antialiased by Pillow), then the centre
    ``size`` x ``size`` square cut out, as torchvision's ``Resize(size)`` then
    ``CenterCrop(size)``."""
    image = _pillow()
    try:
        with image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            w, h = img.size
            if (w, h) != (size, size):
                scale = size / min(w, h)
                nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
                img = img.resize((nw, nh), image.Resampling.BILINEAR)
                left, top = (nw - size) // 2, (nh - size) // 2
                img = img.crop((left, top, left + size, top + size))
            pixels = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable image ({err})") from None
    if channels == 1:
        pixels = pixels[:, :, None]
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)  # (H, W, C) -> (C, H, W)


class ImageFolderDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Files decoded on access, normalised with per-channel ``mean`` / ``std``.

    Item ``i`` is ``((decode(files[i]) / 255 - mean) / std, labels[i])``: a
    float32 ``(channels, size, size)`` tensor and an int64 label. ``mean``
    and ``std`` of None leave the [0, 1] pixels as they are (what the
    statistics pass reads).
    """

    def __init__(
        self,
        files: Sequence[Path],
        labels: Sequence[int],
        channels: int,
        size: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        self.files = list(files)
        self.labels = torch.as_tensor(list(labels), dtype=torch.int64)
        self.channels, self.size = channels, size
        self.mean, self.std = mean, std
        self._mean = None if mean is None else torch.tensor(mean).reshape(-1, 1, 1)
        self._std = None if std is None else torch.tensor(std).reshape(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = decode(self.files[index], self.channels, self.size).float() / 255.0  # (C, S, S)
        if self._mean is not None and self._std is not None:
            x = (x - self._mean) / self._std
        return x, self.labels[index]
