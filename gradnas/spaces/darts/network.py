"""Derived DARTS networks: any genotype retrained from scratch on CIFAR or ImageNet.

The cells are the same :class:`~gradnas.spaces.darts.cell.Cell` class as in
the search network, with ops from the same table (``build_op(name, C,
stride, affine=True)``): each intermediate node is a
:class:`~gradnas.mutables.DifferentiableEdge` without an architecture
parameter over the genotype's inputs for that node, one fixed op per edge,
so its forward is the plain sum of the node's op outputs. The layout follows
DARTS' ``NetworkCIFAR`` / ``NetworkImageNet`` (Liu et al., "DARTS", ICLR
2019, ``cnn/model.py`` of github.com/quark0/darts), and with the same
hyper-parameters the networks have exactly DARTS' parameter counts
(DARTS_V2: 3,349,342 on CIFAR-10 with C=36 and 20 layers).

Two choices beyond DARTS:

- A node with no inputs (possible in genotypes derived by an argmax, e.g.
  SNAS) outputs zeros shaped like any other node of its cell. It is built as
  a single ``Zero`` op read off the cell's first state, so it has no
  parameters and contributes exact zeros to the concat.
- The auxiliary head averages whatever spatial positions remain after its
  2x2 conv. At DARTS' input sizes that is a single position, so the head is
  DARTS' head; on larger inputs it still works instead of failing in the
  classifier. Inputs too small for its 5x5 pooling raise a ``ValueError``.
"""

from __future__ import annotations

import torch
from torch import nn

from ...genotype import Genotype
from ...mutables import DifferentiableEdge
from .cell import Cell, preprocess
from .drop_path import DropPath, check_drop_path_prob
from .ops import OPS, Zero, build_op
from .search_network import reduction_layers

# DARTS' stem of the CIFAR network is this many times wider than C (cnn/model.py).
CIFAR_STEM_MULTIPLIER = 3


def edge_choice_name(edge: int, op: str, input_index: int) -> str:
    """The choice name of edge ``edge`` of a node: unique even when a node
    lists the same (op, input) twice, and readable in a state dict."""
    return f"edge{edge}_{op}_input{input_index}"


# The choice name of a node that has no inputs (see the module docstring).
NO_INPUT = "no_input"


def fixed_op(name: str, C: int, stride: int) -> nn.Module:
    """The op ``name`` of a derived cell: affine BatchNorms, and drop-path on
    its output unless it is the identity (DARTS skips drop-path there)."""
    op = build_op(name, C, stride, affine=True)
    if isinstance(op, nn.Identity):
        return op
    return nn.Sequential(op, DropPath())


def derived_cell(
    genotype: Genotype, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool
) -> Cell:
    """One cell of a derived network: the genotype's reduce or normal cell.

    In a reduction cell the ops reading the two cell inputs (indices 0, 1)
    have stride 2, as in DARTS.
    """
    cell_type = "reduce" if reduction else "normal"
    spec = genotype.reduce if reduction else genotype.normal
    concat = genotype.reduce_concat if reduction else genotype.normal_concat
    pre0, pre1 = preprocess(C_prev_prev, C_prev, C, reduction_prev, affine=True)
    nodes, node_inputs = [], []
    for i, node in enumerate(spec):
        if node:
            choices = {
                edge_choice_name(e, op, j): fixed_op(op, C, 2 if reduction and j < 2 else 1)
                for e, (op, j) in enumerate(node)
            }
            inputs = [j for _, j in node]
        else:
            # State 0 only gives the batch size and resolution of the zeros.
            choices = {NO_INPUT: Zero(2 if reduction else 1)}
            inputs = [0]
        nodes.append(
            DifferentiableEdge(
                choices, f"{cell_type}_node{i}", with_arch_param=False, num_chosen=len(choices)
            )
        )
        node_inputs.append(inputs)
    return Cell(pre0, pre1, nodes, node_inputs, concat, reduction)


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier, attached after the second reduction cell.

    ReLU, 5x5 average pooling (stride 3 on CIFAR, where it sees 8x8 maps;
    stride 2 on ImageNet, 7x7 maps), 1x1 conv to 128 channels, BN, ReLU, 2x2
    conv to 768 channels, BN (CIFAR only: DARTS' ImageNet head leaves it out,
    "omitted ... due to a typo", kept out for consistency with the paper),
    ReLU, a mean over the remaining positions (one at DARTS' sizes), linear.
    """

    def __init__(self, C: int, num_classes: int, pool_stride: int, bn_after_conv: bool) -> None:
        super().__init__()
        self.pool_stride = pool_stride
        layers: list[nn.Module] = [
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        if bn_after_conv:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=False))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    @property
    def min_size(self) -> int:
        """The smallest input side for which the pooling leaves 2x2 for the 2x2 conv."""
        return 5 + self.pool_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if min(height, width) < self.min_size:
            raise ValueError(
                f"the auxiliary head needs feature maps of at least {self.min_size}x{self.min_size} "
                f"after the second reduction cell, got {height}x{width}; the input images are too "
                f"small for it: build the network with auxiliary=False"
            )
        out = self.features(x)  # (N, 768, h, w), h = w = 1 at DARTS' sizes
        logits: torch.Tensor = self.classifier(out.mean(dim=(2, 3)))
        return logits


class _DerivedNetwork(nn.Module):
    """Stem, ``layers`` derived cells, global average pooling, linear classifier.

    Subclasses build the stem; this class builds the cells (reductions at
    1/3 and 2/3 of the depth, doubling the channels), the optional auxiliary
    head after cell ``2 * layers // 3`` and the drop-path switch.
    """

    # Set by the subclasses' __init__ (the head only with auxiliary=True).
    auxiliary_head: AuxiliaryHead
    global_pooling: nn.AdaptiveAvgPool2d
    classifier: nn.Linear

    def __init__(
        self,
        genotype: Genotype,
        C: int,
        num_classes: int,
        layers: int,
        auxiliary: bool,
        in_channels: int,
        steps: int | None,
    ) -> None:
        super().__init__()
        if not isinstance(genotype, Genotype):
            raise ValueError(
                f"genotype must be a gradnas Genotype, got {type(genotype).__name__}; "
                f"use Genotype.parse(...) or get_genotype(name)"
            )
        for name, value in (
            ("C", C),
            ("num_classes", num_classes),
            ("layers", layers),
            ("in_channels", in_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        genotype.validate(primitives=tuple(OPS), steps=steps)
        self.genotype = genotype
        self.layers = layers
        self.auxiliary = auxiliary
        self._drop_path_prob = 0.0

    def _build_cells(self, C_prev_prev: int, C_prev: int, C: int, reduction_prev: bool) -> int:
        """Append the cells; return the channels of the last cell's output."""
        self.cells = nn.ModuleList()
        self.aux_channels = 0
        C_curr = C
        for layer in range(self.layers):
            reduction = layer in reduction_layers(self.layers)
            if reduction:
                C_curr *= 2
            cell = derived_cell(
                self.genotype, C_prev_prev, C_prev, C_curr, reduction, reduction_prev
            )
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, len(cell.concat) * C_curr
            if layer == self.aux_layer:
                self.aux_channels = C_prev
        return C_prev

    @property
    def aux_layer(self) -> int:
        """Index of the cell whose output feeds the auxiliary head (the second reduction)."""
        return 2 * self.layers // 3

    @property
    def drop_path_prob(self) -> float:
        """Drop-path probability of every non-identity op; 0 (off) until set.

        Setting it updates every op of every cell; the trainer ramps it with
        :func:`~gradnas.spaces.darts.drop_path.drop_path_schedule`.
        """
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, p: float) -> None:
        self._drop_path_prob = check_drop_path_prob(p)
        for module in self.modules():
            if isinstance(module, DropPath):
                module.p = self._drop_path_prob

    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two inputs (s0, s1) of the first cell."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits, or ``(logits, logits_aux)`` in training mode with the auxiliary head.

        The auxiliary logits are only computed (and only returned) while
        training, so evaluation code gets plain logits from either network.
        """
        s0, s1 = self.stem(x)
        logits_aux = None
        for layer, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if layer == self.aux_layer and self.auxiliary and self.training:
                logits_aux = self.auxiliary_head(s1)
        out = self.global_pooling(s1)  # (N, C_prev, 1, 1)
        logits = self.classifier(out.flatten(1))
        return logits if logits_aux is None else (logits, logits_aux)


class NetworkCIFAR(_DerivedNetwork):
    """DARTS' CIFAR network for a genotype (defaults: DARTS' CIFAR-10 retraining).

    The stem is a 3x3 conv (padding 1) to ``3 * C`` channels and BN, so the
    resolution is kept until cell ``layers // 3`` halves it and cell
    ``2 * layers // 3`` halves it again: 32x32 -> 16x16 -> 8x8 on CIFAR, and
    8x8 -> 4x4 -> 2x2 on the 8x8 digits (``in_channels=1``; too small for
    the auxiliary head, which raises in a training forward).

    Args:
        genotype: the architecture; validated against the op table.
        C: channels of the first cells (DARTS' ``--init_channels 36``).
        num_classes: classifier outputs.
        layers: number of cells (DARTS: 20).
        auxiliary: add the auxiliary head (DARTS trains with it, weight 0.4).
        in_channels: image channels.
        steps: if given, the number of nodes each cell must have.

    >>> from gradnas.genotype import DARTS_V2
    >>> net = NetworkCIFAR(DARTS_V2, C=4, num_classes=10, layers=3, in_channels=1).eval()
    >>> tuple(net(torch.zeros(2, 1, 8, 8)).shape)
    (2, 10)
    """

    def __init__(
        self,
        genotype: Genotype,
        C: int = 36,
        num_classes: int = 10,
        layers: int = 20,
        auxiliary: bool = False,
        in_channels: int = 3,
        steps: int | None = None,
    ) -> None:
        super().__init__(genotype, C, num_classes, layers, auxiliary, in_channels, steps)
        C_stem = CIFAR_STEM_MULTIPLIER * C
        self.stem_conv = nn.Sequential(
            nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem)
        )
        C_prev = self._build_cells(C_stem, C_stem, C, reduction_prev=False)
        if auxiliary:
            self.auxiliary_head = AuxiliaryHead(
                self.aux_channels, num_classes, pool_stride=3, bn_after_conv=True
            )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem_conv(x)
        return s, s


class NetworkImageNet(_DerivedNetwork):
    """DARTS' ImageNet network for a genotype (defaults: DARTS' mobile setting).

    Two stems reduce the resolution 8 times (stem0: two stride-2 3x3 convs
    to C/2 then C channels; stem1: one more stride-2 conv), so the first
    cell reads a stride-2 input (``reduction_prev=True``), and the two
    reduction cells bring 224x224 to 7x7. DARTS pools with ``AvgPool2d(7)``;
    here the pooling is global, which is the same at 224x224 and lets other
    sizes run. ``C`` must be even (the first cell's factorized reduce).

    Args: as :class:`NetworkCIFAR`; DARTS uses C=48, layers=14, 1000 classes.
    """

    def __init__(
        self,
        genotype: Genotype,
        C: int = 48,
        num_classes: int = 1000,
        layers: int = 14,
        auxiliary: bool = False,
        in_channels: int = 3,
        steps: int | None = None,
    ) -> None:
        super().__init__(genotype, C, num_classes, layers, auxiliary, in_channels, steps)
        if C % 2:
            raise ValueError(
                f"NetworkImageNet needs an even C (its stem has C // 2 channels), got {C}"
            )
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=False),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        C_prev = self._build_cells(C, C, C, reduction_prev=True)
        if auxiliary:
            self.auxiliary_head = AuxiliaryHead(
                self.aux_channels, num_classes, pool_stride=2, bn_after_conv=False
            )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)
