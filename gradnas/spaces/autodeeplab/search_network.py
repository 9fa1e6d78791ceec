"""The Auto-DeepLab supernet: a DARTS cell at every (layer, resolution), searchable paths between them.

Liu et al., "Auto-DeepLab", CVPR 2019, Sections 3 and 4.1. After the stem,
each layer ``l`` has a cell at every level it can reach (see :mod:`.layout`).
The cell at (l, k) reads

- h^{l-1}: the previous layer's outputs at levels k - 1, k, k + 1, each
  brought to level k by its own transition (down, same, up) and weighed by
  softmax(beta) of the cell's network-level decision, a
  :class:`~gradnas.mutables.DifferentiableEdge` over those transitions
  (space id ``path_layer{l}_level{k}``, one beta per cell);
- h^{l-2}: the output of layer l - 2 at level k (or that layer's nearest
  level), resized to level k.

Every cell is a DARTS search cell of ``steps`` (the paper's B = 5) blocks
whose op decisions (space ids ``cell_node{i}``, ``cell_node{i}_input{j}``) are
shared by all cells, as the paper shares alpha. A block has ``F * s / 4``
channels at rate s and the cell concatenates all its blocks (``B * F * s / 4``
channels), the paper's channel rule (Section 4.1; the release's
``filter_scaling`` doubles per downsampling). Each level of the last layer
feeds an ASPP with ``B * F * s / 4`` filters per branch (three branches: 1x1,
3x3 of rate 96 / s, image pooling); their logits are upsampled to the input
size and summed.

One departure from the paper's eq. 6, which weighs three *cell outputs*
(one cell per incoming transition): here the betas weigh the three
transitioned inputs of a single cell. A path still picks one transition into
each cell, so the derived networks are the same, and the supernet has a
third of the cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...genotype import PRIMITIVES
from ...mutables import DifferentiableEdge
from ..darts.search_network import edge_space_id, op_space_id
from .arch import AutoDeepLabArch
from .aspp import ASPP
from .layout import incoming, levels, prev_prev_level, rate
from .parts import CELL_TYPE, STEM_CHANNELS, Stem, match_size, searchable_cell, transition
from .viterbi import viterbi_path

# Input sizes must be multiples of this: the stem halves twice, the cells up to three times more.
SIZE_MULTIPLE = 32
# Auto-DeepLab's search ASPP at rate s has atrous rate 96 / s (Liu et al., Section 3.2).
SEARCH_ASPP_RATE = 96


def path_space_id(layer: int, level: int) -> str:
    """The network-level decision of the cell at (layer, level)."""
    return f"path_layer{layer}_level{level}"


class SearchNode(nn.Module):
    """One cell of the supernet and the network-level edge that feeds it."""

    def __init__(self, edge: DifferentiableEdge, cell: nn.Module) -> None:
        super().__init__()
        self.edge, self.cell = edge, cell

    def forward(self, sources: Sequence[torch.Tensor], prev_prev: torch.Tensor) -> torch.Tensor:
        s1 = self.edge(sources)  # (N, C, H_k, W_k): the transitions' beta-weighted sum
        out: torch.Tensor = self.cell(match_size(prev_prev, s1), s1)
        return out


class AutoDeepLabSearchNetwork(nn.Module):
    """The supernet over ``layers`` layers and four resolutions.

    Args:
        F: filters per block at rate 4 (the paper searches with F = 8).
        layers: the paper's L (12).
        steps: blocks per cell, the paper's B (5).
        num_classes: segmentation classes (per-pixel logits of that many channels).
        stem_channels: widths of the stem's three convs (the release's 64, 64, 128).
        aspp_rate: the search ASPP at rate s has atrous rate ``max(1, aspp_rate // s)``.
    """

    def __init__(
        self,
        F: int = 8,
        layers: int = 12,
        steps: int = 5,
        in_channels: int = 3,
        num_classes: int = 19,
        primitives: Sequence[str] = PRIMITIVES,
        stem_channels: Sequence[int] = STEM_CHANNELS,
        aspp_rate: int = SEARCH_ASPP_RATE,
    ) -> None:
        super().__init__()
        for name, value in (
            ("F", F),
            ("layers", layers),
            ("steps", steps),
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("aspp_rate", aspp_rate),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if F % 2:
            raise ValueError(f"F must be even (a down transition splits its filters), got {F}")
        self.F, self.layers, self.steps = F, layers, steps
        self.primitives = tuple(primitives)
        self.stem = Stem(in_channels, stem_channels)
        self.nodes = nn.ModuleDict()
        for layer in range(layers):
            for level in levels(layer):
                choices = {
                    name: transition(
                        name,
                        self._source_channels(layer - 1, source),
                        self.block_channels(level),
                        affine=False,
                    )
                    for name, source in incoming(layer, level)
                }
                edge = DifferentiableEdge(
                    choices, path_space_id(layer, level), with_arch_param=len(choices) > 1
                )
                cell = searchable_cell(
                    self._prev_prev_channels(layer, level),
                    self.block_channels(level),
                    steps,
                    self.primitives,
                )
                self.nodes[self._key(layer, level)] = SearchNode(edge, cell)
        self.heads = nn.ModuleDict(
            {
                str(level): ASPP(
                    self.out_channels(level),
                    self.out_channels(level),
                    [max(1, aspp_rate // rate(level))],
                    num_classes,
                )
                for level in levels(layers - 1)
            }
        )

    @staticmethod
    def _key(layer: int, level: int) -> str:
        return f"layer{layer}_level{level}"

    def block_channels(self, level: int) -> int:
        """Channels of each block of a cell at ``level``: F * s / 4."""
        return self.F << level  # F * 2**level

    def out_channels(self, level: int) -> int:
        """Channels of a cell's output at ``level`` (the stem's output at level 0 of layer -1
        is not a cell: see :meth:`_prev_prev_channels`)."""
        return self.steps * self.block_channels(level)

    def _source_channels(self, layer: int, level: int) -> int:
        return self.stem.out_channels if layer < 0 else self.out_channels(level)

    def _prev_prev_channels(self, layer: int, level: int) -> int:
        if layer == 0:
            return self.stem.half_channels
        return self._source_channels(layer - 2, prev_prev_level(layer, level))

    def node(self, layer: int, level: int) -> SearchNode:
        """The cell and network-level edge at (layer, level)."""
        node = self.nodes[self._key(layer, level)]
        assert isinstance(node, SearchNode)
        return node

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits (N, num_classes, H, W) for images (N, C, H, W)."""
        if x.dim() != 4 or x.shape[2] % SIZE_MULTIPLE or x.shape[3] % SIZE_MULTIPLE:
            raise ValueError(
                f"expected images (N, C, H, W) with H and W multiples of {SIZE_MULTIPLE}, "
                f"got shape {tuple(x.shape)}"
            )
        half, quarter = self.stem(x)
        # states[layer][level]: the output of each cell; layer -2 and -1 are the stem's.
        states: dict[int, dict[int, torch.Tensor]] = {-2: {-1: half}, -1: {0: quarter}}
        for layer in range(self.layers):
            states[layer] = {}
            for level in levels(layer):
                sources = [states[layer - 1][source] for _, source in incoming(layer, level)]
                prev_prev = states[layer - 2][prev_prev_level(layer, level)]
                states[layer][level] = self.node(layer, level)(sources, prev_prev)
            states.pop(layer - 2)  # no later cell reads it
        last = states[self.layers - 1]
        logits = [
            F.interpolate(
                self.heads[str(level)](out), size=x.shape[-2:], mode="bilinear", align_corners=False
            )
            for level, out in last.items()
        ]
        total: torch.Tensor = torch.stack(logits).sum(dim=0)
        return total

    def path_weights(
        self, arch_params: Mapping[str, torch.Tensor]
    ) -> dict[tuple[int, int], list[float]]:
        """softmax(beta) of every cell's network-level decision, in :func:`incoming` order
        ([1.0] for a cell with one incoming transition, which has no beta).

        ``arch_params`` maps space ids to alphas and betas, as a mutator's ``arch_params``."""
        weights = {}
        for layer in range(self.layers):
            for level in levels(layer):
                beta = arch_params.get(path_space_id(layer, level), None)
                weights[(layer, level)] = (
                    [1.0] if beta is None else torch.softmax(beta.detach().double(), -1).tolist()
                )
        return weights

    def to_arch(
        self,
        subnet: Mapping[str, Mapping[str, Sequence[str]]],
        arch_params: Mapping[str, torch.Tensor],
    ) -> AutoDeepLabArch:
        """The architecture a search found: the cell from ``subnet`` (a mutator's
        ``search_subnet()``; with a :class:`~gradnas.mutators.DartsMutator` the DARTS rule:
        best op per edge ignoring ``none``, the two strongest inputs per block), the path by
        Viterbi over the betas in ``arch_params`` (the mutator's)."""
        cell = []
        for i in range(self.steps):
            edge = subnet.get(edge_space_id(CELL_TYPE, i))
            if edge is None:
                raise ValueError(f"the subnet has no decision {edge_space_id(CELL_TYPE, i)!r}")
            block = []
            for input_name in edge["chosen"]:
                j = int(input_name.removeprefix("input"))
                op = subnet.get(op_space_id(CELL_TYPE, i, j))
                if op is None:
                    raise ValueError(f"the subnet has no op for {op_space_id(CELL_TYPE, i, j)!r}")
                block.append((op["chosen"][0], j))
            cell.append(block)
        path, _ = viterbi_path(self.path_weights(arch_params), self.layers)
        return AutoDeepLabArch(cell, path, primitives=self.primitives)
