"""Widening the partial-channel ops of a search network: DrNAS' step from K = 6 to K = 4.

With partial channels (:mod:`.partial_channel`) each edge's candidate ops
are built for ``C // K`` channels. DrNAS' progressive search (Chen et al.,
ICLR 2021) lowers K between stages, so every op must grow from
``c_old = C // K_old`` to ``c_new = C // K_new`` channels while keeping what
it learned. The release (xiangning-chen/DrNAS, ``operations.py`` and
``net2wider.py``) keeps every trained weight and fills the new channels with
copies of randomly chosen old ones: new output channels copy a conv's rows
and the BatchNorm's running statistics, new input channels copy the conv's
columns, and the SGD momentum buffers are grown the same way.

gradnas grows each op by the same plan with two choices of its own, which
make the result exact and reproducible:

- new output channel ``j`` copies old channel ``j mod c_old`` (no random draw);
- a weight that reads a new input channel starts at 0 (the release copies
  one), so the trained channels still compute only from the trained channels.

Hence, for every op and every input ``x`` with ``c_new`` channels, in
training and in evaluation mode: the widened op's output at each old
channel's position equals the old op's output on ``x[:, :c_old]``, and for
an op whose weights mix channels (the convolutions) each new output channel
equals the old output channel it copies. The new input channels enter as
training moves their zero weights. A whole search network does not compute
the same function before and after (PC-DARTS sends a different share of
each edge through the ops, and the channel shuffle changes with K), in the
release neither.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ...mutables import MutableModule
from .ops import BatchNorm, DilConv, FactorizedReduce, PoolBN, SepConv, Zero
from .partial_channel import PartialChannelOp

# (old parameter, new parameter, how any tensor shaped like the old one grows):
# the last applies to optimizer state such as SGD's momentum buffers too.
Growth = tuple[nn.Parameter, nn.Parameter, Callable[[torch.Tensor], torch.Tensor]]

# Ops with nothing to widen: they treat every channel alike and hold no weights.
PARAMETER_FREE = (nn.Identity, nn.MaxPool2d, nn.AvgPool2d, Zero)


def copy_rows(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` with rows (dim 0) ``n_old .. n - 1`` appended, row ``j`` a copy of row ``j mod n_old``."""
    n_old = t.shape[0]
    return torch.cat([t, t[torch.arange(n_old, n, device=t.device) % n_old]], dim=0)


def zero_columns(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` with zero columns (dim 1) appended up to ``n``."""
    return torch.cat([t, t.new_zeros(t.shape[0], n - t.shape[1], *t.shape[2:])], dim=1)


def copy_halves(t: torch.Tensor, n: int) -> torch.Tensor:
    """Both halves of ``t`` (dim 0) grown by :func:`copy_rows` to ``n // 2``: a
    factorized reduce concatenates the outputs of its two convolutions."""
    half = t.shape[0] // 2
    return torch.cat([copy_rows(t[:half], n // 2), copy_rows(t[half:], n // 2)], dim=0)


def _grow(
    module: nn.Module,
    name: str,
    grow: Callable[[torch.Tensor], torch.Tensor],
    growths: list[Growth],
) -> None:
    """Replace ``module.name`` (a parameter or buffer; None stays None) by its grown value."""
    old = getattr(module, name)
    if old is None:
        return
    if isinstance(old, nn.Parameter):
        new = nn.Parameter(grow(old.detach()), requires_grad=old.requires_grad)
        setattr(module, name, new)
        growths.append((old, new, grow))
    else:
        setattr(module, name, grow(old))


def widen_batchnorm(
    bn: BatchNorm,
    c_new: int,
    growths: list[Growth],
    grow: Callable[[torch.Tensor, int], torch.Tensor] = copy_rows,
) -> None:
    """New channels copy an old channel's running statistics (and affine weights)."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        _grow(bn, name, lambda t: grow(t, c_new), growths)
    bn.num_features = c_new


def widen_depthwise(conv: nn.Conv2d, c_new: int, growths: list[Growth]) -> None:
    """A depthwise conv's new channel ``j`` filters input ``j`` with old channel ``j mod c_old``'s kernel."""
    _grow(conv, "weight", lambda t: copy_rows(t, c_new), growths)
    conv.in_channels = conv.out_channels = conv.groups = c_new


def widen_dense(conv: nn.Conv2d, c_in: int, c_out: int, growths: list[Growth]) -> None:
    """New output rows copy old rows over the old inputs; every weight reading a new input starts at 0."""
    _grow(conv, "weight", lambda t: zero_columns(copy_rows(t, c_out), c_in), growths)
    conv.in_channels, conv.out_channels = c_in, c_out


def widen_dil_conv(op: DilConv, c_new: int, growths: list[Growth]) -> None:
    _, depthwise, pointwise, bn = op.layers()
    widen_depthwise(depthwise, c_new, growths)
    widen_dense(pointwise, c_new, c_new, growths)
    widen_batchnorm(bn, c_new, growths)


def widen_factorized_reduce(op: FactorizedReduce, c_new: int, growths: list[Growth]) -> None:
    """Both 1x1 convs grow to ``c_new // 2`` outputs; the BatchNorm's halves follow them."""
    widen_dense(op.conv_1, c_new, c_new // 2, growths)
    widen_dense(op.conv_2, c_new, c_new // 2, growths)
    widen_batchnorm(op.bn, c_new, growths, grow=copy_halves)


def widen_op(op: nn.Module, c_new: int, growths: list[Growth]) -> None:
    """Grow one candidate op of the DARTS op table to ``c_new`` channels in place."""
    if isinstance(op, SepConv):
        for block in op.blocks():
            widen_dil_conv(block, c_new, growths)
    elif isinstance(op, DilConv):
        widen_dil_conv(op, c_new, growths)
    elif isinstance(op, FactorizedReduce):
        if c_new % 2:
            raise ValueError(f"a factorized reduce needs an even number of channels, got {c_new}")
        widen_factorized_reduce(op, c_new, growths)
    elif isinstance(op, PoolBN):
        widen_batchnorm(op.layers()[1], c_new, growths)
    elif not isinstance(op, PARAMETER_FREE):
        raise TypeError(f"cannot widen a {type(op).__name__}: not an op of the DARTS op table")


def widen_partial_channel_op(
    pc: PartialChannelOp, channels: int, k: int, growths: list[Growth]
) -> None:
    """Send ``channels // k`` of an edge's ``channels`` through its ops instead of ``channels // pc.k``."""
    if k > pc.k or channels % k:
        raise ValueError(
            f"cannot widen partial channels from K={pc.k} to K={k} on {channels} channels: "
            f"K may only shrink, to a divisor of the channels"
        )
    if k < 2:
        raise ValueError(f"partial channels need K >= 2, got {k}")
    mixed = pc.op
    if not isinstance(mixed, MutableModule):
        raise TypeError(
            f"cannot widen a partial-channel edge around a {type(mixed).__name__}: not a mixed op"
        )
    for op in mixed.choices.values():
        widen_op(op, channels // k, growths)
    pc.k = k


def cell_channels(cell: nn.Module) -> int:
    """C, the channels every edge of a search cell carries: the width of the BatchNorm
    that ends its second preprocessing (a ReLUConvBN)."""
    bn = list(cell.get_submodule("preprocess1").children())[-1]
    if not isinstance(bn, BatchNorm):
        raise TypeError(f"a cell's preprocessing ends in a {type(bn).__name__}, not a BatchNorm")
    return bn.num_features


def widen_partial_channels(cells: nn.ModuleList, k: int) -> list[Growth]:
    """Widen every partial-channel edge of the search ``cells`` to K = ``k``; the replaced parameters."""
    growths: list[Growth] = []
    for cell in cells:
        channels = cell_channels(cell)
        for module in cell.modules():
            if isinstance(module, PartialChannelOp):
                widen_partial_channel_op(module, channels, k, growths)
    return growths
