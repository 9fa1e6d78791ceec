"""A differentiable choice of a convolution's output width (FBNetV2's channel masking).

FBNetV2 (Wan et al., "FBNetV2: Differentiable Neural Architecture Search for
Spatial and Channel Dimensions", CVPR 2020, Sec. 3.1) searches a layer's
width without one convolution per candidate: a single convolution is built at
the widest candidate and its output is multiplied by a channel mask, the
softmax-weighted sum of one 0/1 mask per candidate width. Channel ``c`` of the
output is therefore scaled by ``sum of p_i over the widths w_i > c``: the
first channels are always kept, the last only by the widest choice. The cost
is one convolution at the widest width, whatever the number of candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MutableModule


class WidthChoice(nn.Module):
    """The marker of one candidate width: names the choice, holds no weights.

    The shared weight lives in the :class:`WidthConv2d` that owns the
    choices; a plain module for one width is :meth:`WidthConv2d.standalone_choice`.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def extra_repr(self) -> str:
        return f"width={self.width}"


def width_choice_name(width: int) -> str:
    """The choice name of output width ``width``, as it appears in a subnet."""
    return f"width{width}"


class WidthConv2d(MutableModule):
    """``nn.Conv2d(in_channels, max(widths), ...)`` whose output width is a decision.

    Before export the output always has ``max(widths)`` channels, channel
    ``c`` scaled by the mask weight above; after ``export([name])`` the module
    holds a plain ``nn.Conv2d`` of the chosen width (the first ``width``
    filters of the shared weight, no mask), so its output has ``width``
    channels and whatever reads it must take that many.

    Args:
        in_channels: input channels.
        widths: candidate output widths, distinct positive ints.
        kernel_size: as for ``nn.Conv2d``.
        stride: as for ``nn.Conv2d``.
        padding: as for ``nn.Conv2d``.
        bias: as for ``nn.Conv2d``.
        space_id: the decision's name; layers sharing it share one alpha.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        kernel_size: int,
        space_id: str,
        stride: int = 1,
        padding: int = 0,
        bias: bool = False,
    ) -> None:
        widths = list(widths)
        if (
            not widths
            or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths)
            or len(set(widths)) != len(widths)
        ):
            raise ValueError(
                f"In {space_id}: widths must be distinct positive ints, got {widths!r}"
            )
        widths = sorted(widths)
        super().__init__(
            {width_choice_name(w): WidthChoice(w) for w in widths},
            space_id,
            num_chosen=1,
            with_arch_param=True,
        )
        self.widths = tuple(widths)
        self.conv = nn.Conv2d(
            in_channels, widths[-1], kernel_size, stride=stride, padding=padding, bias=bias
        )
        # (num_choices, max_width): row i keeps the first widths[i] channels.
        masks = torch.arange(widths[-1]).unsqueeze(0) < torch.tensor(widths).unsqueeze(1)
        self.register_buffer("width_masks", masks.float(), persistent=False)

    width_masks: torch.Tensor

    def build_arch_param(self) -> nn.Parameter | None:
        # DARTS' initialisation, as DifferentiableOP.
        return nn.Parameter(torch.randn(len(self.full_choice_names)) * 1e-3)

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        return F.softmax(arch_param, dim=-1)

    def channel_weights(self, arch_param: torch.Tensor) -> torch.Tensor:
        """The mask over the widest output, ``(max_width,)``: sum_i p_i * mask_i."""
        probs = self.compute_arch_probs(arch_param).to(self.width_masks.dtype)
        return probs @ self.width_masks  # (num_choices,) @ (num_choices, max_width)

    def forward(self, x: torch.Tensor, arch_param: torch.Tensor | None = None) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)  # (N, max_width or chosen width, H', W')
        alpha = self._resolve_arch_param(arch_param, x)
        if alpha is None:
            return out  # exported: a plain narrow conv
        mask = self.channel_weights(alpha).to(out.dtype)
        return out * mask.view(1, -1, 1, 1)

    def standalone_choice(self, name: str) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` computing choice ``name`` alone, as export leaves it:
        the first ``width`` filters (and biases) of the shared weight, copied."""
        if name not in self.choices:
            raise ValueError(
                f"In {self.space_id}: no choice {name!r}; available: {self.choice_names}"
            )
        width = self.choices[name].width
        assert isinstance(width, int)
        conv = self.conv
        narrow = nn.Conv2d(
            conv.in_channels,
            width,
            conv.kernel_size,  # type: ignore[arg-type]  # a tuple is what Conv2d stores
            stride=conv.stride,  # type: ignore[arg-type]
            padding=conv.padding,  # type: ignore[arg-type]
            bias=conv.bias is not None,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            narrow.weight.copy_(conv.weight[:width])
            if conv.bias is not None and narrow.bias is not None:
                narrow.bias.copy_(conv.bias[:width])
        return narrow

    def export(self, chosen: Sequence[str]) -> None:
        """Keep one width: the module then holds a plain narrow ``nn.Conv2d``
        (see :meth:`standalone_choice`) and its forward applies no mask."""
        names = [chosen] if isinstance(chosen, str) else list(chosen)
        if len(names) != 1:
            raise ValueError(
                f"In {self.space_id}: a width choice exports exactly one width, got {names}"
            )
        narrow = self.standalone_choice(names[0]) if names[0] in self.choices else None
        super().export(names)  # checks the name, drops the other choices
        assert narrow is not None
        self.conv = narrow

    def to_conv(self) -> nn.Conv2d:
        """The exported module's plain ``nn.Conv2d``; call :meth:`export` first."""
        if not self.is_exported:
            raise ValueError(f"In {self.space_id}: export a width first (export([name]))")
        return self.conv
