"""PC-DARTS' partial channel connection around one edge's mixed op.

Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient
Architecture Search", ICLR 2020: on each edge only the first ``C / K``
channels go through the mixed op (whose candidate ops are built with
``C // K`` channels); the other channels bypass it unchanged on a stride-1
edge, or through a 2x2 max-pool with stride 2 on a stride-2 edge, so that
both parts have the op's output resolution. The two parts are concatenated
and channel-shuffled with ``K`` groups, so the next edge sends a different
subset of the channels through its op.

The mutable op sits inside the wrapper as its only mutable child: a mutator
finds it as the edge's choice subtree (``outermost_mutables``), and
``deploy_subnet`` exports it like a plain mixed op.
"""

from __future__ import annotations

import torch
from torch import nn


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` equal channel groups: output channel
    ``i * groups + g`` is input channel ``g * (C // groups) + i``."""
    n, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"channel_shuffle: {c} channels do not split into {groups} groups")
    x = x.view(n, groups, c // groups, h, w)  # (N, groups, C/groups, H, W)
    x = x.transpose(1, 2).contiguous()  # (N, C/groups, groups, H, W)
    return x.view(n, c, h, w)


class PartialChannelOp(nn.Module):
    """Sends the first ``C // k`` channels through ``op`` and the rest around it.

    Args:
        op: the edge's mixed op (usually a mutable), built for ``C // k`` channels.
        k: the channel proportion's inverse (PC-DARTS: K = 4 on CIFAR-10).
        stride: the edge's stride; 2 max-pools the bypassed channels.
    """

    def __init__(self, op: nn.Module, k: int, stride: int) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(
                f"PartialChannelOp needs an int k >= 2 (k = 1 is no wrapper at all), got {k!r}"
            )
        if stride not in (1, 2):
            raise ValueError(f"PartialChannelOp needs stride 1 or 2, got {stride!r}")
        self.op = op
        self.k = k
        self.stride = stride
        # ceil_mode: on an odd-sized input the strided ops (padded convs and
        # pools) round up, so the bypass must too; on even sizes it changes nothing.
        self.bypass = nn.MaxPool2d(2, stride=2, ceil_mode=True) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        if channels % self.k:
            raise ValueError(
                f"PartialChannelOp(k={self.k}) got {channels} channels, not a multiple of k"
            )
        part = channels // self.k
        processed = self.op(x[:, :part])  # (N, C/k, H', W')
        bypassed = self.bypass(x[:, part:])  # (N, C - C/k, H', W')
        return channel_shuffle(torch.cat([processed, bypassed], dim=1), self.k)

    def extra_repr(self) -> str:
        return f"k={self.k}, stride={self.stride}"
