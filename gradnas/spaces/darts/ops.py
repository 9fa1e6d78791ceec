"""The DARTS op table, shared by the search network and every derived network.

Every op is built as ``OPS[name](C, stride, affine)`` and maps ``C`` channels
to ``C`` channels, halving the resolution when ``stride == 2``. The
definitions follow the DARTS paper and its released code (Liu et al., "DARTS:
Differentiable Architecture Search", ICLR 2019): separable convolutions are
two stacked ReLU-depthwise-pointwise-BN blocks, dilated convolutions one such
block with dilation 2, a strided skip is a factorized reduce, and ``none``
outputs zeros at the output resolution.

The ops compute exactly what those definitions say, with three savings that
leave every value unchanged (up to floating-point rounding) and that the
mixed ops of a search cell exploit (see ``benchmarks/README.md`` for what
each one measured):

- **Shared parameter-free work.** Inside :func:`sharing_input_work` (a
  :class:`~.cell.Cell` forward), the leading ReLU of the conv ops and the
  pooling of the pool ops are computed once per input tensor and reused by
  every op that reads the same tensor: every edge leaving a node of a DARTS
  search cell applies the same ReLU and the same pools to it.
- **Scaled outputs.** Ops ending in a BatchNorm take an optional ``scale``
  (``op(x, scale)`` is ``scale * op(x)``, marked by ``takes_scale = True``)
  and fold it into that BatchNorm, so autograd keeps the BatchNorm's input
  only, not also its output for the product.
- **Dilated convolutions as plain ones.** A dilation-2 convolution with
  "same" padding is a plain convolution on each of the four pixel sub-grids
  (even/odd rows x even/odd columns), and with stride 2 on the even sub-grid
  alone; PyTorch's CPU kernels run the plain form several times faster.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

# What one input is recognised by in the memo (see shared()).
InputKey = tuple[
    Hashable, int, tuple[int, ...], tuple[int, ...], torch.dtype, torch.device, bool, int
]
# The memo of the innermost active sharing_input_work() block, or None outside one:
# input key -> (the input, kept alive so its address is not reused; the output).
_SHARED_WORK: ContextVar[dict[InputKey, tuple[torch.Tensor, torch.Tensor]] | None] = ContextVar(
    "gradnas_darts_shared_work", default=None
)

# An op's BatchNorm: built as BatchNorm2d, replaced by SyncBatchNorm under torchrun with
# sync_bn (parallel.convert_sync_batchnorm).
BatchNorm = nn.BatchNorm2d | nn.SyncBatchNorm


@contextmanager
def sharing_input_work() -> Iterator[None]:
    """Reuse parameter-free work on the same input tensor until the block ends (see the module docstring)."""
    token = _SHARED_WORK.set({})
    try:
        yield
    finally:
        _SHARED_WORK.reset(token)


def shared(
    key: Hashable, x: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``compute(x)``, computed once per ``key`` and input inside :func:`sharing_input_work`.

    ``key`` must name the computation exactly (same key, same function of
    ``x``). Inputs count as the same when they are the same memory: same
    address, shape, strides, dtype, device and version counter (so an
    in-place change makes a new input), and the same ``requires_grad``. That
    also matches the equal slices PC-DARTS' partial channel connection takes
    of one state on every edge. The memo holds each input, so its memory
    cannot be reused by another tensor while the memo lives.
    """
    memo = _SHARED_WORK.get()
    if memo is None:
        return compute(x)
    try:
        address = x.data_ptr()
    # a fake tensor under torch.export / torch.compile tracing has no memory to compare
    except RuntimeError:
        return compute(x)
    same_input: InputKey = (
        key,
        address,
        tuple(x.shape),
        x.stride(),
        x.dtype,
        x.device,
        x.requires_grad,
        x._version,
    )
    hit = memo.get(same_input)
    if hit is not None:
        return hit[1]
    out = compute(x)
    memo[same_input] = (x, out)
    return out


def scaled_batch_norm(bn: BatchNorm, x: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """``scale * bn(x)`` as one BatchNorm call, ``scale`` (a 0-d tensor) folded into its affine weight.

    Running statistics, momentum and ``num_batches_tracked`` are handled
    exactly as ``nn.BatchNorm2d.forward`` handles them.
    """
    if scale is None or isinstance(bn, nn.SyncBatchNorm):
        # SyncBatchNorm's statistics come from all ranks: keep its own forward.
        out: torch.Tensor = bn(x)
        return out if scale is None else out * scale
    # Materialised, not a stride-0 expand: with a channels-last input, torch 2.13's CPU
    # BatchNorm backward computes a wrong input gradient for an expanded weight.
    weight = scale.expand(x.shape[1]).contiguous() if bn.weight is None else bn.weight * scale
    bias = None if bn.bias is None else bn.bias * scale
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    pass_stats = not bn.training or bn.track_running_stats
    return F.batch_norm(
        x,
        bn.running_mean if pass_stats else None,
        bn.running_var if pass_stats else None,
        weight,
        bias,
        use_batch_stats,
        factor,
        bn.eps,
    )


def shared_relu(relu: nn.ReLU, x: torch.Tensor) -> torch.Tensor:
    """``relu(x)``, shared by every op that starts with a ReLU of the same input."""
    return shared("relu", x, relu)


# -- dilated convolutions as plain convolutions on pixel sub-grids -----------------


def subgrid_form(conv: nn.Conv2d) -> int | None:
    """The dilation ``d`` when ``conv`` equals a plain convolution on pixel sub-grids, else None.

    That holds for a dilation ``d > 1`` with "same" padding ``d * (k - 1) / 2``
    (odd square kernel, zero padding) and stride 1 or ``d``.
    """
    # A string padding ("same", "valid") is checked first: it does not unpack into a pair.
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        return None
    (k, k_w), (d, d_w), (p, p_w), (s, s_w) = (
        conv.kernel_size,
        conv.dilation,
        conv.padding,
        conv.stride,
    )
    if not (k == k_w and d == d_w and p == p_w and s == s_w) or d < 2 or k % 2 == 0:
        return None
    if p != d * (k - 1) // 2 or s not in (1, d):
        return None
    return d


def to_subgrids(x: torch.Tensor, d: int) -> torch.Tensor:
    """(N, C, H, W) -> (d*d*N, C, H/d, W/d), channels-last: sub-grid (r, s) of
    sample n (pixels ``[r::d, s::d]``) is batch entry ``(r * d + s) * N + n``."""
    n, c, h, w = x.shape
    t = x.permute(0, 2, 3, 1).reshape(n, h // d, d, w // d, d, c)  # (N, H/d, r, W/d, s, C)
    t = t.permute(2, 4, 0, 1, 3, 5).reshape(d * d * n, h // d, w // d, c)  # (r s N, H/d, W/d, C)
    # (d*d*N, C, H/d, W/d)
    return t.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def from_subgrids(y: torch.Tensor, d: int) -> torch.Tensor:
    """The inverse of :func:`to_subgrids`: (d*d*N, C, P, Q) -> (N, C, P*d, Q*d), channels-last."""
    b, c, p, q = y.shape
    t = y.permute(0, 2, 3, 1).reshape(d, d, b // (d * d), p, q, c)  # (r, s, N, P, Q, C)
    t = t.permute(2, 3, 0, 4, 1, 5).reshape(b // (d * d), p * d, q * d, c)  # (N, P, r, Q, s, C)
    return t.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)  # (N, C, H, W)


def plain_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` with its dilation removed: same weights, stride 1, padding (k - 1) / 2."""
    return F.conv2d(x, conv.weight, conv.bias, 1, (conv.kernel_size[0] - 1) // 2, 1, conv.groups)


# -- the ops ---------------------------------------------------------------------


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, BatchNorm: the preprocessing of a cell's inputs."""

    def __init__(
        self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, dilated depthwise conv, pointwise conv, BatchNorm."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                C_in,
                C_in,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=C_in,
                bias=False,
            ),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    takes_scale = True

    def layers(self) -> tuple[nn.ReLU, nn.Conv2d, nn.Conv2d, BatchNorm]:
        """The four layers, typed: ReLU, depthwise conv, pointwise conv, BatchNorm."""
        # The cast holds: __init__ builds these types in this order; widening changes them
        # in place and SyncBatchNorm conversion replaces only the BatchNorm.
        return cast(tuple[nn.ReLU, nn.Conv2d, nn.Conv2d, BatchNorm], tuple(self))

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The op's output, times ``scale`` when given; the leading ReLU is shared
        (see the module docstring)."""
        relu, depthwise, pointwise, bn = self.layers()
        d = subgrid_form(depthwise)
        if d is not None and depthwise.stride[0] == d:
            # Stride d keeps only outputs on the (0, 0) sub-grid, which read only that sub-grid.
            h = shared(
                ("subgrid0", d),
                shared_relu(relu, x),
                lambda t: t[:, :, ::d, ::d].contiguous(memory_format=torch.channels_last),
            )
            return scaled_batch_norm(bn, pointwise(plain_conv(depthwise, h)), scale)
        if d is not None and x.shape[2] % d == 0 and x.shape[3] % d == 0:
            # Pointwise conv and BatchNorm treat every pixel alike, so they run on the sub-grids
            # too.
            h = shared(("subgrids", d), shared_relu(relu, x), lambda t: to_subgrids(t, d))
            return from_subgrids(
                scaled_batch_norm(bn, pointwise(plain_conv(depthwise, h)), scale), d
            )
        return self.after_relu(shared_relu(relu, x), scale)

    def after_relu(self, h: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        """``scale * self(x)`` from ``h = relu(x)``."""
        _, depthwise, pointwise, bn = self.layers()
        return scaled_batch_norm(bn, pointwise(depthwise(h)), scale)


class SepConv(nn.Sequential):
    """Two stacked separable blocks; only the first one carries the stride."""

    def __init__(
        self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool
    ) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )

    takes_scale = True

    def blocks(self) -> tuple[DilConv, DilConv]:
        """The two blocks, typed."""
        # The cast holds: __init__ builds two DilConvs; widening changes them in place.
        return cast(tuple[DilConv, DilConv], tuple(self))

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The op's output, times ``scale`` when given; only the first block's
        ReLU reads ``x``, so only it is shared."""
        first, second = self.blocks()
        h = first(x)
        relu = second.layers()[0]
        return second.after_relu(relu(h), scale)


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the op's output (strided when stride 2).

    ``outputs_zero`` tells a mixed op that this choice adds nothing to a
    weighted sum, so it need not run (see :class:`~gradnas.mutables.DifferentiableOP`).
    """

    outputs_zero = True

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
            raise ValueError(
                f"FactorizedReduce needs an even number of output channels, got {C_out}"
            )
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    takes_scale = True

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The op's output, times ``scale`` when given; the ReLU is shared (see the module docstring)."""
        x = shared_relu(self.relu, x)
        # An odd-sized input gives the shifted half one row/column fewer; pad it back.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, x.shape[3] % 2, 0, x.shape[2] % 2))
        out = torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1)
        return scaled_batch_norm(self.bn, out, scale)


def pool_key(pool: nn.Module) -> tuple[str, tuple[tuple[str, object], ...]]:
    """Everything that defines a pooling module's output: its type and settings."""
    settings = sorted(
        (k, v) for k, v in vars(pool).items() if not k.startswith("_") and k != "training"
    )
    return (type(pool).__name__, tuple(settings))


class PoolBN(nn.Sequential):
    """A pool followed by an affine-free BatchNorm: DARTS' pool op in the search
    network, where it brings pooled outputs to the scale of the convolutions'.
    The pooling is shared (see the module docstring); each op keeps its own
    BatchNorm and its running statistics."""

    def __init__(self, pool: nn.Module, C: int) -> None:
        super().__init__(pool, nn.BatchNorm2d(C, affine=False))

    takes_scale = True

    def layers(self) -> tuple[nn.Module, BatchNorm]:
        """The pool and the BatchNorm, typed."""
        # The cast holds: __init__ builds a pool and a BatchNorm2d, which only SyncBatchNorm
        # conversion replaces.
        return cast(tuple[nn.Module, BatchNorm], tuple(self))

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The op's output, times ``scale`` when given."""
        pool, bn = self.layers()
        return scaled_batch_norm(bn, shared(pool_key(pool), x, pool), scale)


OpBuilder = Callable[[int, int, bool], nn.Module]

# name -> builder(C, stride, affine). The order is DARTS' PRIMITIVES order.
OPS: dict[str, OpBuilder] = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "skip_connect": lambda C, stride, affine: (
        nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine)
    ),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine),
}


def build_op(name: str, C: int, stride: int, affine: bool, search: bool = False) -> nn.Module:
    """``OPS[name](C, stride, affine)`` with a clear error for an unknown name.

    ``search=True`` follows a pool with an affine-free BatchNorm
    (:class:`PoolBN`), as the DARTS search network does so pooled outputs
    have the scale of the convolutions' outputs.
    """
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; known ops: {list(OPS)}")
    op = OPS[name](C, stride, affine)
    if search and "pool" in name:
        op = PoolBN(op, C)
    return op
