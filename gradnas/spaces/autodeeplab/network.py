"""The fixed segmentation network of an Auto-DeepLab architecture, for retraining.

Only the path's cells are built: the stem, then at each layer the
transition from the previous layer's level into this layer's and one
derived cell (the architecture's cell, affine ops from the DARTS table),
whose second input is the output two layers back resized to this level; then
a DeepLabv3 ASPP at the last level and bilinear upsampling of the logits to
the input size.

Auto-DeepLab retrains this backbone with ASPP and the DeepLabv3+ decoder
(Liu et al., CVPR 2019, Section 5); the decoder is not built here (see the
README's weight counts).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...genotype import Genotype
from .arch import AutoDeepLabArch
from .aspp import ASPP
from .layout import STEM_LEVEL, rate, transition_name
from .parts import STEM_CHANNELS, Stem, fixed_cell, match_size, transition

# DeepLabv3's ASPP: 256 filters, atrous rates 6, 12, 18 at output stride 16 (doubled at
# output stride 8), Chen et al. 2017, Section 3.3; here scaled as 16 / s for any rate s.
HEAD_CHANNELS = 256
ASPP_RATES_AT_16 = (6, 12, 18)


class AutoDeepLabNetwork(nn.Module):
    """Stem, one derived cell per layer along ``arch.path``, ASPP; per-pixel logits.

    Args:
        arch: the cell and the path.
        F: filters per block at rate 4; the paper's Auto-DeepLab-S/M/L use 20/32/48.
        head_channels: filters of each ASPP branch and of its projection.
        aspp_rates: atrous rates of the ASPP's 3x3 branches (default DeepLabv3's
            6, 12, 18 scaled to the last layer's rate s by 16 / s).
    """

    def __init__(
        self,
        arch: AutoDeepLabArch,
        F: int = 20,
        num_classes: int = 19,
        in_channels: int = 3,
        stem_channels: Sequence[int] = STEM_CHANNELS,
        head_channels: int = HEAD_CHANNELS,
        aspp_rates: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(arch, AutoDeepLabArch):
            raise ValueError(f"arch must be an AutoDeepLabArch, got {type(arch).__name__}")
        for name, value in (
            ("F", F),
            ("num_classes", num_classes),
            ("in_channels", in_channels),
            ("head_channels", head_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if F % 2:
            raise ValueError(f"F must be even (a down transition splits its filters), got {F}")
        self.arch = arch
        steps = len(arch.cell)
        concat = range(2, 2 + steps)  # every block is an output
        genotype = Genotype(arch.cell, concat, arch.cell, concat)
        self.stem = Stem(in_channels, stem_channels)
        self.transitions = nn.ModuleList()
        self.cells = nn.ModuleList()
        # Output channels of the stem's two features, then of each cell.
        channels = [self.stem.half_channels, self.stem.out_channels]
        previous = STEM_LEVEL
        for level in arch.path:
            C = F * 2**level
            self.transitions.append(
                transition(transition_name(previous, level), channels[-1], C, affine=True)
            )
            self.cells.append(fixed_cell(genotype, channels[-2], C))
            channels.append(steps * C)
            previous = level
        last_rate = rate(arch.path[-1])
        rates = (
            [max(1, r * 16 // last_rate) for r in ASPP_RATES_AT_16]
            if aspp_rates is None
            else list(aspp_rates)
        )
        self.head = ASPP(channels[-1], head_channels, rates, num_classes)
        self.size_multiple = 4 * 2 ** max(arch.path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits (N, num_classes, H, W) for images (N, C, H, W)."""
        m = self.size_multiple
        if x.dim() != 4 or x.shape[2] % m or x.shape[3] % m:
            raise ValueError(
                f"expected images (N, C, H, W) with H and W multiples of {m} (the path reaches "
                f"rate {m}), got shape {tuple(x.shape)}"
            )
        half, quarter = self.stem(x)
        outputs = [half, quarter]
        for move, cell in zip(self.transitions, self.cells):
            s1 = move(outputs[-1])
            outputs.append(cell(match_size(outputs[-2], s1), s1))
        logits: torch.Tensor = self.head(outputs[-1])
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
