"""Tensor-only image augmentation (no torchvision): crop, flip, cutout.

Each transform takes one ``(C, H, W)`` float tensor and returns a new one
(the input is never modified). Randomness comes from the ``torch.Generator``
passed in, or torch's global RNG when it is None; the global RNG is what a
``DataLoader`` with ``num_workers > 0`` seeds differently per worker, while
one generator object copied into several workers would repeat its draws.

These are the augmentations DARTS retrains with on CIFAR (``cnn/utils.py``
of github.com/quark0/darts): a random 32x32 crop of the image padded by 4
pixels, a random horizontal flip, and cutout (DeVries & Taylor, 2017) of a
16x16 square after normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch

Transform = Callable[[torch.Tensor], torch.Tensor]


def _check_image(img: torch.Tensor) -> None:
    if not isinstance(img, torch.Tensor) or img.dim() != 3:
        raise ValueError(
            f"expected one (C, H, W) image tensor, got "
            f"{tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__}"
        )


def random_crop(
    img: torch.Tensor,
    padding: int = 4,
    fill: float | Sequence[float] = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pad each side by ``padding`` pixels of ``fill``, then crop back to (H, W)
    at a uniformly drawn offset in ``0..2 * padding`` on each axis.

    ``fill`` may be one value per channel: on normalised images
    ``-mean / std`` pads with black, as torchvision's zero padding of the raw
    image does in DARTS' pipeline.
    """
    _check_image(img)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    channels, height, width = img.shape
    fill_t = torch.as_tensor(fill, dtype=img.dtype, device=img.device).reshape(-1)
    if fill_t.numel() not in (1, channels):
        raise ValueError(
            f"fill must be one value or one per channel ({channels}), got {fill_t.numel()}"
        )
    padded = (
        fill_t.reshape(-1, 1, 1).expand(channels, height + 2 * padding, width + 2 * padding).clone()
    )
    padded[:, padding : padding + height, padding : padding + width] = img  # (C, H + 2p, W + 2p)
    top, left = torch.randint(0, 2 * padding + 1, (2,), generator=generator).tolist()
    return padded[:, top : top + height, left : left + width].clone()


def random_horizontal_flip(
    img: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mirror the image left-right with probability ``p``."""
    _check_image(img)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if torch.rand(1, generator=generator).item() < p:
        return img.flip(-1)
    return img.clone()


def cutout(
    img: torch.Tensor, length: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero a ``length`` x ``length`` square whose centre is drawn uniformly
    over the image; the part outside the image is clipped away.

    Rows ``y - length // 2 .. y - length // 2 + length - 1`` around the
    centre row ``y`` (likewise columns), so the square has exactly ``length``
    sides away from the borders for odd and even lengths (DARTS' version
    gives ``length - 1`` for odd lengths).
    """
    _check_image(img)
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"cutout length must be an int >= 0, got {length!r}")
    out = img.clone()
    if length == 0:
        return out
    _, height, width = img.shape
    y = int(torch.randint(0, height, (1,), generator=generator))
    x = int(torch.randint(0, width, (1,), generator=generator))
    y0, x0 = y - length // 2, x - length // 2
    out[:, max(0, y0) : max(0, y0 + length), max(0, x0) : max(0, x0 + length)] = 0.0
    return out


class Compose:
    """Apply transforms in order: ``Compose([f, g])(x) == g(f(x))``."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            img = transform(img)
        return img

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def cifar_augmentation(
    mean: Sequence[float],
    std: Sequence[float],
    augment: bool = True,
    cutout_length: int = 0,
    generator: torch.Generator | None = None,
) -> Compose:
    """DARTS' CIFAR training augmentation for images already normalised with
    ``mean`` / ``std``: crop with 4 pixels of black padding and flip (when
    ``augment``), then cutout of ``cutout_length`` (0 = none; DARTS uses 16).
    Crop and flip commute with the per-channel normalisation, so applying
    them after it matches DARTS' order. Partials, not lambdas, so the
    pipeline pickles into DataLoader worker processes."""
    black = [-m / s for m, s in zip(mean, std)]
    steps: list[Transform] = []
    if augment:
        steps.append(partial(random_crop, padding=4, fill=black, generator=generator))
        steps.append(partial(random_horizontal_flip, p=0.5, generator=generator))
    if isinstance(cutout_length, bool) or not isinstance(cutout_length, int) or cutout_length < 0:
        raise ValueError(f"cutout length must be an int >= 0, got {cutout_length!r}")
    if cutout_length:
        steps.append(partial(cutout, length=cutout_length, generator=generator))
    return Compose(steps)


def resize_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a square ``(C, H, H)`` image to ``(C, size, size)``, bilinear with
    antialiasing (so shrinking averages, as Pillow's resize does)."""
    _check_image(img)
    if img.shape[-1] == size and img.shape[-2] == size:
        return img
    out = torch.nn.functional.interpolate(
        img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )  # (1, C, size, size)
    return out[0]


def image_augmentation(
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int,
    augment: bool,
    flip: bool,
    cutout_length: int,
) -> Compose | None:
    """The training augmentation of normalised images, or None when there is none.

    ``augment``: a random shift (a crop of the image padded by
    ``image_size // 8`` pixels of black, the ratio of DARTS' 4 pixels on
    32x32) and, when ``flip``, a random horizontal flip. Flip is for natural
    images only: a mirrored digit or character is another symbol. Then cutout
    of ``cutout_length`` (0 = none). On CIFAR this is DARTS' pipeline
    (:func:`cifar_augmentation`), draw for draw.
    """
    black = [-m / s for m, s in zip(mean, std)]
    steps: list[Transform] = []
    if augment:
        steps.append(partial(random_crop, padding=max(1, image_size // 8), fill=black))
        if flip:
            steps.append(partial(random_horizontal_flip, p=0.5))
    if cutout_length:
        steps.append(partial(cutout, length=cutout_length))
    return Compose(steps) if steps else None
