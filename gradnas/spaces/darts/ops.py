"""The DARTS op table, shared by the search network and every derived network.

Every op is built as ``OPS[name](C, stride, affine)`` and maps ``C`` channels
to ``C`` channels, halving the resolution when ``stride == 2``. The
definitions follow the DARTS paper and its released code (Liu et al., "DARTS:
Differentiable Architecture Search", ICLR 2019): separable convolutions are
two stacked ReLU-depthwise-pointwise-BN blocks, dilated convolutions one such
block with dilation 2, a strided skip is a factorized reduce, and ``none``
outputs zeros at the output resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, BatchNorm: the preprocessing of a cell's inputs."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, dilated depthwise conv, pointwise conv, BatchNorm."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked separable blocks; only the first one carries the stride."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the op's output (strided when stride 2)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convs on offset grids.

    The second conv sees the input shifted by one pixel, so together the two
    halves of the output channels cover every input pixel.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # An odd-sized input gives the shifted half one row/column fewer; pad it back.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, x.shape[3] % 2, 0, x.shape[2] % 2))
        out = torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1)
        return self.bn(out)


OpBuilder = Callable[[int, int, bool], nn.Module]

# name -> builder(C, stride, affine). The order is DARTS' PRIMITIVES order.
OPS: dict[str, OpBuilder] = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "skip_connect": lambda C, stride, affine: nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine),
}


def build_op(name: str, C: int, stride: int, affine: bool, search: bool = False) -> nn.Module:
    """``OPS[name](C, stride, affine)`` with a clear error for an unknown name.

    ``search=True`` follows a pool with an affine-free BatchNorm, as the
    DARTS search network does so pooled outputs have the scale of the
    convolutions' outputs.
    """
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; known ops: {list(OPS)}")
    op = OPS[name](C, stride, affine)
    if search and "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op
