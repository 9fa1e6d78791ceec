"""The fixed parts of an Auto-DeepLab network: stem, transitions between resolutions, cells.

The same parts build the supernet and the derived network, so an exported
architecture names exactly the modules the supernet trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...genotype import Genotype
from ...mutables import DifferentiableOP
from ..darts.cell import Cell
from ..darts.network import derived_cell
from ..darts.ops import FactorizedReduce, ReLUConvBN
from ..darts.search_network import search_cell
from .layout import DOWN, SAME, UP

# The stem of the release (tensorflow/models research/deeplab/core/nas_network.py, _nas_stem):
# 3x3 convs of 64 (stride 2), 64 and 128 (stride 2) filters, each followed by BatchNorm.
STEM_CHANNELS = (64, 64, 128)
# Space id prefix of the cell decisions shared by every cell.
CELL_TYPE = "cell"


class Stem(nn.Module):
    """Three 3x3 convs bringing the image to 1/4 resolution; returns (1/2, 1/4) features.

    The 1/2 feature (after the second conv) is h^{l-2} of the first cell and
    the 1/4 one its h^{l-1}, as in the release (``cell_outputs`` of
    ``_nas_stem``).
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = STEM_CHANNELS) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.conv0 = nn.Sequential(
            nn.Conv2d(in_channels, c0, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c0)
        )
        self.conv1 = nn.Sequential(nn.ReLU(), nn.Conv2d(c0, c1, 3, padding=1, bias=False))
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c2),
        )
        self.half_channels, self.out_channels = c1, c2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.bn1(self.conv1(self.conv0(x)))  # (N, c1, H/2, W/2)
        return half, self.conv2(half)  # (N, c2, H/4, W/4)


class Upsample(nn.Module):
    """Bilinear upsampling by 2 (the release's resize_bilinear on an up transition)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def transition(name: str, C_in: int, C: int, affine: bool) -> nn.Module:
    """The previous layer's output brought to this cell's resolution and ``C`` channels.

    ``same``: DARTS' 1x1 ReLU-conv-BN preprocessing; ``down``: DARTS' factorized
    reduce (the preprocessing after a reduction cell); ``up``: bilinear
    upsampling, then the 1x1 preprocessing (the release resizes first too).
    The release instead gives the cell's ops stride 2 on a down transition;
    here every cell runs at its own resolution, so one cell serves all three.
    """
    if name == SAME:
        return ReLUConvBN(C_in, C, 1, 1, 0, affine)
    if name == DOWN:
        return FactorizedReduce(C_in, C, affine)
    if name == UP:
        return nn.Sequential(Upsample(), ReLUConvBN(C_in, C, 1, 1, 0, affine))
    raise ValueError(f"unknown transition {name!r}; known: {[DOWN, SAME, UP]}")


def match_size(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` resized (bilinear) to the spatial size of ``like`` when they differ.

    The second input h^{l-2} of a cell may sit at another resolution than the
    cell; the release resizes it the same way (nas_cell.py, _cell_base).
    """
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def searchable_cell(C_prev_prev: int, C: int, steps: int, primitives: Sequence[str]) -> Cell:
    """A DARTS search cell at one resolution whose op decisions are shared by every cell.

    Its second input comes already preprocessed by the transition, so its
    ``preprocess1`` is the identity; every block is concatenated into the
    output (``steps * C`` channels), as in Auto-DeepLab.
    """
    cell = search_cell(
        CELL_TYPE,
        C_prev_prev,
        C,
        C,
        reduction=False,
        reduction_prev=False,
        steps=steps,
        multiplier=steps,
        primitives=primitives,
        op_mutable=DifferentiableOP,
        edge_alpha=False,
    )
    cell.preprocess1 = nn.Identity()
    return cell


def fixed_cell(genotype: Genotype, C_prev_prev: int, C: int) -> Cell:
    """A derived cell (``genotype.normal``, affine ops) after a transition, like :func:`searchable_cell`."""
    cell = derived_cell(genotype, C_prev_prev, C, C, reduction=False, reduction_prev=False)
    cell.preprocess1 = nn.Identity()
    return cell
