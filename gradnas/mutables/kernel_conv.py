"""A differentiable choice of a convolution's kernel size from one shared weight.

One weight is kept at the largest kernel (7x7 by default); kernel ``k`` uses
its centre ``k x k`` crop with padding ``k // 2``, so every candidate gives
the same output size. A centre crop zero-padded back to the large kernel is
the large weight times a 0/1 centre mask, so the softmax mixture of the
candidates' outputs is ONE convolution with the kernel
``W * sum_k p_k * mask_k``: the searched layer costs one convolution at the
largest kernel whatever the number of candidates. This is FBNetV2's masking
(Wan et al., CVPR 2020) applied to the kernel instead of the channels, the
"superkernel" of Single-Path NAS (Stamoulis et al., 2019).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MutableModule


class KernelChoice(nn.Module):
    """The marker of one candidate kernel size: names the choice, holds no weights."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


def kernel_choice_name(kernel_size: int) -> str:
    """The choice name of kernel size ``kernel_size``, as it appears in a subnet."""
    return f"{kernel_size}x{kernel_size}"


class KernelConv2d(MutableModule):
    """A convolution whose (odd, square) kernel size is a decision.

    Before export the forward is one convolution with the mask-weighted
    largest kernel; after ``export([name])`` the module holds a plain
    ``nn.Conv2d`` of the chosen kernel size (the centre crop of the shared
    weight, padding ``k // 2``) and its forward applies no mask.

    Args:
        in_channels: as for ``nn.Conv2d``.
        out_channels: as for ``nn.Conv2d``.
        stride: as for ``nn.Conv2d``.
        groups: as for ``nn.Conv2d`` (``groups=in_channels`` gives a depthwise convolution).
        bias: as for ``nn.Conv2d``.
        space_id: the decision's name.
        kernel_sizes: odd candidate sizes, 3/5/7 by default.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        space_id: str,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        sizes = list(kernel_sizes)
        if (
            not sizes
            or any(
                isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0 for k in sizes
            )
            or len(set(sizes)) != len(sizes)
        ):
            raise ValueError(
                f"In {space_id}: kernel_sizes must be distinct odd positive ints, got {sizes!r}"
            )
        sizes = sorted(sizes)
        super().__init__(
            {kernel_choice_name(k): KernelChoice(k) for k in sizes},
            space_id,
            num_chosen=1,
            with_arch_param=True,
        )
        self.kernel_sizes = tuple(sizes)
        largest = sizes[-1]
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            largest,
            stride=stride,
            padding=largest // 2,
            groups=groups,
            bias=bias,
        )
        # (num_choices, K, K): the centre k x k of the K x K kernel for each candidate k.
        masks = torch.zeros(len(sizes), largest, largest)
        for i, k in enumerate(sizes):
            start = (largest - k) // 2
            masks[i, start : start + k, start : start + k] = 1.0
        self.register_buffer("kernel_masks", masks, persistent=False)

    kernel_masks: torch.Tensor

    def build_arch_param(self) -> nn.Parameter | None:
        # DARTS' initialisation, as DifferentiableOP.
        return nn.Parameter(torch.randn(len(self.full_choice_names)) * 1e-3)

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        return F.softmax(arch_param, dim=-1)

    def forward(self, x: torch.Tensor, arch_param: torch.Tensor | None = None) -> torch.Tensor:
        alpha = self._resolve_arch_param(arch_param, x)
        if alpha is None:
            out: torch.Tensor = self.conv(x)  # exported: a plain conv of the chosen size
            return out
        probs = self.compute_arch_probs(alpha).to(self.kernel_masks.dtype)
        mask = torch.einsum("c,ckl->kl", probs, self.kernel_masks)  # (K, K)
        conv = self.conv
        return F.conv2d(
            x,
            conv.weight * mask.to(conv.weight.dtype),  # (out, in / groups, K, K)
            conv.bias,
            stride=conv.stride,
            padding=conv.padding,
            groups=conv.groups,
        )

    def standalone_choice(self, name: str) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` computing choice ``name`` alone, as export leaves
        it: the centre crop of the shared weight (copied), padding ``k // 2``."""
        if name not in self.choices:
            raise ValueError(
                f"In {self.space_id}: no choice {name!r}; available: {self.choice_names}"
            )
        k = self.choices[name].kernel_size
        assert isinstance(k, int)
        conv = self.conv
        largest = conv.weight.shape[-1]
        start = (largest - k) // 2
        small = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            k,
            stride=conv.stride,  # type: ignore[arg-type]  # a tuple is what Conv2d stores
            padding=k // 2,
            groups=conv.groups,
            bias=conv.bias is not None,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            small.weight.copy_(conv.weight[:, :, start : start + k, start : start + k])
            if conv.bias is not None and small.bias is not None:
                small.bias.copy_(conv.bias)
        return small

    def export(self, chosen: Sequence[str]) -> None:
        """Keep one kernel size: the module then holds a plain ``nn.Conv2d`` of
        that size (see :meth:`standalone_choice`) and applies no mask."""
        names = [chosen] if isinstance(chosen, str) else list(chosen)
        if len(names) != 1:
            raise ValueError(
                f"In {self.space_id}: a kernel choice exports exactly one size, got {names}"
            )
        small = self.standalone_choice(names[0]) if names[0] in self.choices else None
        super().export(names)  # checks the name, drops the other choices
        assert small is not None
        self.conv = small

    def to_conv(self) -> nn.Conv2d:
        """The exported module's plain ``nn.Conv2d``; call :meth:`export` first."""
        if not self.is_exported:
            raise ValueError(f"In {self.space_id}: export a kernel size first (export([name]))")
        return self.conv
