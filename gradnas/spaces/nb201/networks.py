"""NAS-Bench-201's macro skeleton, as a supernet and as a fixed network.

The skeleton (Dong & Yang, ICLR 2020, Fig. 1; AutoDL-Projects
``cell_infers/tiny_network.py`` ``TinyNetwork`` and
``cell_searchs/search_model_darts.py`` ``TinyNetworkDarts``):

- stem: 3x3 conv (padding 1, no bias) to ``C`` channels, BatchNorm;
- three stages of ``N`` cells with ``C``, ``2C``, ``4C`` channels;
- between stages a residual reduction block (:class:`ResidualReduction`);
- BatchNorm, ReLU, global average pooling, a linear classifier.

Only the two reduction blocks change the resolution: a 32x32 CIFAR image
is seen at 32x32 by stage 1, 16x16 by stage 2 and 8x8 by stage 3; an 8x8
digit at 8x8, 4x4 and 2x2. Each side of the input must therefore be a
multiple of 4.

With ``C=16, N=5`` (the benchmark's setting) the fixed networks have
between 73,306 and 1,531,546 weights on CIFAR-10 (all cells weight-free,
all cells ``nor_conv_3x3``), the range of the benchmark's ``params`` field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ...mutables import DifferentiableOP
from ..darts.search_network import OpMutableFactory
from .arch import NB201Arch
from .cell import EDGES, NB201Cell, edge_space_id
from .ops import NB201_PRIMITIVES, ReLUConvBN, build_op


class ResidualReduction(nn.Module):
    """Halves the resolution and maps ``C_in`` to ``C_out`` channels between stages.

    The benchmark's ``ResNetBasicblock`` at stride 2: a residual branch of
    ReLU-Conv3x3(stride 2)-BN then ReLU-Conv3x3-BN, plus a shortcut of 2x2
    average pooling (stride 2) and a bias-free 1x1 conv. Its BatchNorms are
    affine in the search network too, as in the benchmark's search models.
    """

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1, affine=True)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine=True)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2), nn.Conv2d(C_in, C_out, kernel_size=1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % 2 or width % 2:
            # Odd sides give a 3x3 stride-2 conv ceil(n/2) outputs but the 2x2
            # pool floor(n/2): the branches would not add up.
            raise ValueError(
                f"a NAS-Bench-201 reduction block needs even spatial sides, got {height}x{width}; "
                f"the network input's sides must be multiples of 4"
            )
        shortcut: torch.Tensor = self.shortcut(x)
        residual: torch.Tensor = self.conv_b(self.conv_a(x))
        return shortcut + residual


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


class NB201Skeleton(nn.Module):
    """Stem, three stages of ``N`` cells split by :class:`ResidualReduction`, head.

    Args:
        make_cell: builds one cell for a given channel count; the supernet
            and the fixed network differ only in it.
    """

    def __init__(
        self,
        C: int,
        N: int,
        num_classes: int,
        in_channels: int,
        make_cell: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        for value, name in (
            (C, "C"),
            (N, "N"),
            (num_classes, "num_classes"),
            (in_channels, "in_channels"),
        ):
            _check_positive_int(value, name)
        self.C, self.N = C, N
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        layers: list[nn.Module] = []
        C_prev = C
        for stage, C_stage in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResidualReduction(C_prev, C_stage))
            layers.extend(make_cell(C_stage) for _ in range(N))
            C_prev = C_stage
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (the benchmark's networks also return the pooled features; here only logits)."""
        out = self.stem(x)
        for cell in self.cells:
            out = cell(out)
        out = self.global_pooling(self.lastact(out))  # (batch, 4C, 1, 1)
        logits: torch.Tensor = self.classifier(
            out.flatten(1)
        )  # (batch, 4C) -> (batch, num_classes)
        return logits


def subnet_to_arch(subnet: Mapping[str, Mapping[str, Sequence[str]]]) -> NB201Arch:
    """The arch of a subnet from ``DartsMutator(ignore_choices=()).search_subnet()``:
    each edge's single chosen op, ``none`` included."""
    ops = []
    for i, j in EDGES:
        space_id = edge_space_id(i, j)
        entry = subnet.get(space_id)
        if entry is None or "chosen" not in entry:
            raise ValueError(f"the subnet has no decision {space_id!r} (the op on edge {j}->{i})")
        chosen = list(entry["chosen"])
        if len(chosen) != 1:
            raise ValueError(
                f"In {space_id}: a NAS-Bench-201 edge keeps exactly one op, got {chosen}"
            )
        ops.append(chosen[0])
    return NB201Arch(tuple(ops))


class NB201SearchNetwork(NB201Skeleton):
    """The NAS-Bench-201 supernet: every edge of every cell is one op mutable over the five ops.

    Edge ``j -> i`` has space id ``edge_{i}_{j}`` in every cell, so a mutator
    creates 6 alphas of 5 entries shared by all ``3N`` cells, the benchmark's
    single ``(6, 5)`` ``arch_parameters``. Derive with
    ``DartsMutator(ignore_choices=())`` (every edge's argmax, ``none``
    allowed, as the benchmark's ``genotype()``) and :meth:`to_arch`.

    Cell ops are built with ``affine=False`` and running statistics kept,
    the benchmark's search setting (``NAS201SearchCell`` defaults; its
    documented search commands pass ``track_running_stats`` 1). The stem,
    reduction blocks and head are the fixed network's.

    Args:
        op_mutable: builds each edge's mutable from ``{op name: module}`` and a
            space id, e.g. ``DifferentiableOP`` or
            ``functools.partial(GumbelOP, tau=10.0, hard=True)`` (GDAS).
    """

    def __init__(
        self,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        op_mutable: OpMutableFactory = DifferentiableOP,
        affine: bool = False,
        track_running_stats: bool = True,
    ) -> None:
        def make_cell(C_cell: int) -> NB201Cell:
            def make_edge(i: int, j: int) -> nn.Module:
                ops = {
                    name: build_op(name, C_cell, affine, track_running_stats)
                    for name in NB201_PRIMITIVES
                }
                return op_mutable(ops, edge_space_id(i, j))

            return NB201Cell(make_edge)

        super().__init__(C, N, num_classes, in_channels, make_cell)

    def to_arch(self, subnet: Mapping[str, Mapping[str, Sequence[str]]]) -> NB201Arch:
        """The architecture a mutator's ``search_subnet()`` chose."""
        return subnet_to_arch(subnet)


class NB201Network(NB201Skeleton):
    """The fixed network of one architecture, built from the supernet's op table.

    Every cell computes exactly the arch's op on each edge; a ``none`` edge is
    the zero op and adds zeros, as in the benchmark's ``InferCell``. Cell ops
    are affine with running statistics (the benchmark's fixed networks).

    Args:
        arch: an :class:`NB201Arch` or its benchmark string.
    """

    def __init__(
        self,
        arch: NB201Arch | str,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        if isinstance(arch, str):
            arch = NB201Arch.parse(arch)
        if not isinstance(arch, NB201Arch):
            raise ValueError(f"arch must be an NB201Arch or its string, got {type(arch).__name__}")

        def make_cell(C_cell: int) -> NB201Cell:
            return NB201Cell(
                lambda i, j: build_op(arch.op(i, j), C_cell, affine=True, track_running_stats=True)
            )

        super().__init__(C, N, num_classes, in_channels, make_cell)
        self.arch = arch
