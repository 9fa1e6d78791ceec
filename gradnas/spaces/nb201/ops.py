"""The NAS-Bench-201 op table, shared by the search network and every fixed network.

Every op is built as ``OPS[name](C, affine, track_running_stats)`` and maps
``C`` channels to ``C`` channels at the same resolution: a NAS-Bench-201
cell never reduces (the residual blocks between stages do, see
:mod:`.networks`), so unlike the DARTS table there is no stride argument.

Definitions follow Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020, and their release
(D-X-Y/AutoDL-Projects ``lib/models/cell_operations.py``, list
``NAS_BENCH_201`` and the ``OPS`` table at ``C_in == C_out``, stride 1):

- ``none``: zeros shaped like the input (``x * 0``);
- ``skip_connect``: identity;
- ``nor_conv_1x1`` / ``nor_conv_3x3``: ReLU, conv (no bias, padding 0 / 1), BatchNorm;
- ``avg_pool_3x3``: 3x3 average pooling, stride 1, padding 1,
  ``count_include_pad=False``, with *no* BatchNorm after it (the benchmark's
  ``POOLING`` adds a 1x1 ReLU-Conv-BN only when channels change, which never
  happens inside a cell; the DARTS search network's pool BatchNorm is not used).

The search network builds them with ``affine=False`` and the fixed network
with ``affine=True``; both keep running statistics by default (see
:class:`.networks.NB201SearchNetwork` for the sources).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..darts.ops import Zero

# The five candidate ops, in the benchmark's order (AutoDL-Projects
# cell_operations.NAS_BENCH_201); arch strings and alphas use this order.
NB201_PRIMITIVES: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)


class ReLUConvBN(nn.Sequential):
    """ReLU, a bias-free convolution, BatchNorm: NAS-Bench-201's conv op and
    the two branches of its residual reduction block."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


OpBuilder = Callable[[int, bool, bool], nn.Module]

# name -> builder(C, affine, track_running_stats), in NB201_PRIMITIVES order.
OPS: dict[str, OpBuilder] = {
    "none": lambda C, affine, track: Zero(stride=1),
    "skip_connect": lambda C, affine, track: nn.Identity(),
    "nor_conv_1x1": lambda C, affine, track: ReLUConvBN(C, C, 1, 1, 0, affine, track),
    "nor_conv_3x3": lambda C, affine, track: ReLUConvBN(C, C, 3, 1, 1, affine, track),
    "avg_pool_3x3": lambda C, affine, track: nn.AvgPool2d(
        3, stride=1, padding=1, count_include_pad=False
    ),
}


def build_op(name: str, C: int, affine: bool, track_running_stats: bool = True) -> nn.Module:
    """``OPS[name](C, affine, track_running_stats)`` with a clear error for an unknown name."""
    if name not in OPS:
        raise ValueError(f"unknown NAS-Bench-201 op {name!r}; known ops: {list(OPS)}")
    return OPS[name](C, affine, track_running_stats)
