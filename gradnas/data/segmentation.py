"""A segmentation task that ships: digits placed on a canvas, labelled per pixel; and mean IoU.

Built at run time from scikit-learn's bundled 8x8 digits (no download): each
image is a ``canvas`` x ``canvas`` grey canvas holding ``1..max_items``
digits, each upscaled by ``scale`` and pasted at a seeded random position
(later digits over earlier ones). A pixel's label is ``1 + digit`` where a
digit's ink is at least ``ink`` of its maximum, else 0 (background), so there
are 11 classes. The same ``seed`` gives the same images on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import Dataset

# load_digits stores ink as 0..16 (4x4 blocks of a 32x32 bitmap counted).
_PIXEL_MAX = 16.0
BACKGROUND = 0
NUM_CLASSES = 11  # background + the ten digits


class DigitCanvasSegmentation(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``num_images`` seeded canvases: items ``(image (1, H, W) float32, labels (H, W) int64)``.

    Args:
        num_images: how many canvases.
        canvas: side of each canvas in pixels.
        max_items: each canvas holds 1..max_items digits (uniform).
        scale: each 8x8 digit is enlarged to ``8 * scale`` pixels (nearest).
        seed: seeds the digits chosen, their positions and counts.
        digit_indices: rows of ``load_digits()`` to draw from (default all), so
            train and test canvases can use disjoint digits.
        ink: a pixel belongs to its digit when its ink is >= this fraction of 16.
    """

    def __init__(
        self,
        num_images: int,
        canvas: int = 32,
        max_items: int = 3,
        scale: int = 2,
        seed: int = 0,
        digit_indices: Sequence[int] | None = None,
        ink: float = 0.25,
    ) -> None:
        for name, value in (
            ("num_images", num_images),
            ("canvas", canvas),
            ("max_items", max_items),
            ("scale", scale),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if 8 * scale > canvas:
            raise ValueError(f"a digit of {8 * scale} pixels does not fit a canvas of {canvas}")
        if not 0.0 < ink <= 1.0:
            raise ValueError(f"ink must be in (0, 1], got {ink!r}")
        bunch = load_digits()
        pool = np.arange(len(bunch.target)) if digit_indices is None else np.asarray(digit_indices)
        if pool.size == 0:
            raise ValueError("digit_indices is empty")
        rng = np.random.default_rng(seed)
        side = 8 * scale
        images = np.zeros((num_images, canvas, canvas), dtype=np.float32)
        labels = np.full((num_images, canvas, canvas), BACKGROUND, dtype=np.int64)
        for n in range(num_images):
            for _ in range(int(rng.integers(1, max_items + 1))):
                row = int(pool[rng.integers(len(pool))])
                digit = np.kron(bunch.images[row], np.ones((scale, scale))) / _PIXEL_MAX
                top, left = (int(v) for v in rng.integers(0, canvas - side + 1, size=2))
                window = (n, slice(top, top + side), slice(left, left + side))
                mask = digit >= ink
                images[window] = np.where(mask, digit, images[window])
                labels[window] = np.where(mask, 1 + int(bunch.target[row]), labels[window])
        self.images = torch.from_numpy(images).unsqueeze(1)  # (N, 1, H, W)
        self.labels = torch.from_numpy(labels)  # (N, H, W)
        self.num_classes = NUM_CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for name, t in (("pred", pred), ("target", target)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            raise ValueError(f"{name} has a class outside 0..{num_classes - 1}")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def mean_iou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> float:
    """Mean over classes of |pred ∩ target| / |pred ∪ target| (the segmentation metric).

    Classes absent from both ``pred`` and ``target`` (empty union) are left
    out of the mean, as Cityscapes' and PASCAL's evaluations do; pixels whose
    target is ``ignore_index`` are not counted.
    """
    cm = confusion_matrix(pred, target, num_classes, ignore_index).double()
    intersection = cm.diag()
    union = cm.sum(0) + cm.sum(1) - intersection
    present = union > 0
    if not bool(present.any()):
        raise ValueError("no pixel to score: pred and target are empty")
    return float((intersection[present] / union[present]).mean())
