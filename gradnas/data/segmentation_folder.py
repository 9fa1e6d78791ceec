"""A user's own segmentation data: a folder of images and a folder of label PNGs.

``root/images/NAME.(png|jpg|jpeg)`` pairs with ``root/labels/NAME.png``, whose
pixel values are the class indices (a grey "L" PNG, or a palette "P" PNG whose
palette indices are the classes, as PASCAL VOC ships them). Pillow reads the
files; it installs with matplotlib, a gradnas dependency. The pairs and their
sizes are checked when the data set is built, so a bad folder fails at once,
with one error that names the files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Pixels of this label are not scored (PASCAL VOC's object boundaries, Cityscapes' void).
IGNORE_INDEX = 255


def _listed(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


class SegmentationFolder(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Items ``(image (C, H, W) float32 in [0, 1], labels (H, W) int64)`` read from ``root``.

    Args:
        root: holds the ``images`` and ``labels`` folders.
        channels: 3 reads images as RGB, 1 as grey.
        num_classes: when given, a label value >= it (other than ``IGNORE_INDEX``)
            is an error when its item is read.
    """

    def __init__(
        self,
        root: str | Path,
        channels: int = 3,
        num_classes: int | None = None,
        images: str = "images",
        labels: str = "labels",
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        root = Path(root)
        image_dir, label_dir = root / images, root / labels
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise DataError(f"segmentation folder {folder} does not exist")
        found = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
        pairs = [(p, label_dir / f"{p.stem}.png") for p in found]
        missing = [label.name for _, label in pairs if not label.is_file()]
        if missing:
            raise DataError(f"no label PNG in {label_dir} for: {_listed(missing)}")
        mismatched = []
        for image, label in pairs:
            try:
                with Image.open(image) as a, Image.open(label) as b:
                    if a.size != b.size:
                        mismatched.append(f"{image.name} {a.size} vs {label.name} {b.size}")
            except OSError as err:
                raise DataError(f"cannot read {image.name} or {label.name}: {err}") from None
        if mismatched:
            raise DataError(f"image and label sizes differ: {_listed(mismatched)}")
        self.pairs = pairs
        self.channels, self.num_classes = channels, num_classes

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, label_path = self.pairs[index]
        with Image.open(image_path) as image:
            pixels = np.asarray(image.convert("RGB" if self.channels == 3 else "L"))
        with Image.open(label_path) as label:
            if label.mode not in ("L", "P"):
                raise DataError(
                    f"{label_path.name}: a label PNG must be grey (L) or palette (P), "
                    f"got mode {label.mode}"
                )
            classes = np.asarray(label).astype(np.int64)  # (H, W): palette indices for P
        if self.num_classes is not None:
            bad = (classes >= self.num_classes) & (classes != IGNORE_INDEX)
            if bad.any():
                raise DataError(
                    f"{label_path.name}: label {int(classes[bad].max())} is not a class "
                    f"0..{self.num_classes - 1} (or {IGNORE_INDEX}, ignored)"
                )
        x = torch.from_numpy(pixels.astype(np.float32) / 255.0)
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)  # (C, H, W)
        return x.contiguous(), torch.from_numpy(classes)
