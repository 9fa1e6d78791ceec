"""The DARTS search network (supernet) built from gradnas mutables."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...genotype import PRIMITIVES, Genotype
from ...mutables import DifferentiableEdge, DifferentiableOP, MutableModule
from .cell import Cell, preprocess
from .ops import build_op
from .partial_channel import PartialChannelOp
from .widen import Growth, widen_partial_channels

# Builds the mutable for one edge's op choice from {op name: module} and a space id.
OpMutableFactory = Callable[[Mapping[str, nn.Module], str], MutableModule]
CELL_TYPES = ("normal", "reduce")


def edge_space_id(cell_type: str, node: int) -> str:
    """The decision of which inputs node ``node`` keeps (shared by every cell of the type)."""
    return f"{cell_type}_node{node}"


def op_space_id(cell_type: str, node: int, input_index: int) -> str:
    """The decision of the op on the edge from state ``input_index`` into ``node``."""
    return f"{cell_type}_node{node}_input{input_index}"


def search_cell(
    cell_type: str,
    C_prev_prev: int,
    C_prev: int,
    C: int,
    reduction: bool,
    reduction_prev: bool,
    steps: int,
    multiplier: int,
    primitives: Sequence[str],
    op_mutable: OpMutableFactory,
    edge_alpha: bool,
    num_chosen: int = 2,
    partial_channels: int = 1,
) -> Cell:
    """A search cell: node i is an edge over all ``2 + i`` earlier states, each
    input through a mixed op of every primitive (stride 2 on the cell inputs
    of a reduction cell). Search ops are affine-free, as in DARTS.

    With ``partial_channels = K > 1`` each mixed op is built for ``C // K``
    channels and wrapped in a :class:`PartialChannelOp` (PC-DARTS)."""
    pre0, pre1 = preprocess(C_prev_prev, C_prev, C, reduction_prev, affine=False)
    nodes, node_inputs = [], []
    for i in range(steps):
        choices = {}
        for j in range(2 + i):
            stride = 2 if reduction and j < 2 else 1
            ops = {
                name: build_op(name, C // partial_channels, stride, affine=False, search=True)
                for name in primitives
            }
            op = op_mutable(ops, op_space_id(cell_type, i, j))
            choices[f"input{j}"] = (
                op if partial_channels == 1 else PartialChannelOp(op, partial_channels, stride)
            )
        nodes.append(
            DifferentiableEdge(
                choices,
                edge_space_id(cell_type, i),
                with_arch_param=edge_alpha,
                num_chosen=min(num_chosen, 2 + i),
            )
        )
        node_inputs.append(list(range(2 + i)))
    concat = list(range(2 + steps - multiplier, 2 + steps))
    return Cell(pre0, pre1, nodes, node_inputs, concat, reduction)


def reduction_layers(layers: int) -> tuple[int, ...]:
    """Cells that halve the resolution and double the channels: at 1/3 and 2/3 of the depth."""
    return (layers // 3, 2 * layers // 3)


class DartsSearchNetwork(nn.Module):
    """DARTS' supernet: a conv stem, ``layers`` cells, global pooling, a linear classifier.

    Normal cells share their decisions (space ids ``normal_*``), reduction
    cells theirs (``reduce_*``), as DARTS' ``alphas_normal`` and
    ``alphas_reduce``. The stem is a 3x3 conv (padding 1) and BatchNorm, so the
    input resolution is kept until the first reduction cell; on 8x8 digits
    with 5 layers the cells see 8x8, 4x4 (from cell 1) and 2x2 (from cell 3).

    Args:
        C: channels of the first cells (doubled at each reduction).
        layers: number of cells.
        steps: intermediate nodes per cell.
        multiplier: how many of the last states a cell concatenates.
        stem_multiplier: stem width as a multiple of ``C``.
        op_mutable: builds each edge's mixed op, e.g. ``DifferentiableOP`` or
            ``functools.partial(GumbelOP, tau=10.0)``.
        edge_alpha: give each node's edge its own alpha (PC-DARTS' edge normalisation).
        partial_channels: PC-DARTS' K: each mixed op sees ``1/K`` of its
            edge's channels (see :mod:`.partial_channel`); 1 is plain DARTS.
            PC-DARTS is ``partial_channels=4, edge_alpha=True`` (Xu et al.,
            ICLR 2020, K = 4 on CIFAR-10). ``C`` must be a multiple of it.
        memory_efficient: keep only each cell's inputs during the forward and
            recompute the cell's activations in the backward (activation
            checkpointing per cell): much less memory for one more forward.
            Outputs, gradients and BatchNorm running statistics are those of
            the default mode (the recomputation does not update the
            statistics a second time).
        channels_last: run the network on channels-last tensors; ``None``
            (default) does so for CPU inputs, where PyTorch's pooling,
            depthwise and pointwise convolution kernels are several times
            faster in that layout. The values computed are the same.
    """

    def __init__(
        self,
        C: int = 16,
        layers: int = 8,
        steps: int = 4,
        multiplier: int = 4,
        stem_multiplier: int = 3,
        in_channels: int = 3,
        num_classes: int = 10,
        primitives: Sequence[str] = PRIMITIVES,
        op_mutable: OpMutableFactory = DifferentiableOP,
        edge_alpha: bool = False,
        partial_channels: int = 1,
        memory_efficient: bool = False,
        channels_last: bool | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(memory_efficient, bool):
            raise ValueError(f"memory_efficient must be a bool, got {memory_efficient!r}")
        if channels_last is not None and not isinstance(channels_last, bool):
            raise ValueError(f"channels_last must be a bool or None, got {channels_last!r}")
        if (
            isinstance(partial_channels, bool)
            or not isinstance(partial_channels, int)
            or partial_channels < 1
        ):
            raise ValueError(f"partial_channels must be an int >= 1, got {partial_channels!r}")
        if C % partial_channels:
            raise ValueError(f"C ({C}) must be a multiple of partial_channels ({partial_channels})")
        if not 1 <= multiplier <= steps:
            raise ValueError(f"multiplier must be in 1..steps ({steps}), got {multiplier}")
        if layers < 3 or C < 2 or C % 2:
            # Fewer than 3 cells leave no normal cell (reductions sit at 1/3 and 2/3 of the depth).
            raise ValueError(f"need layers >= 3 and an even C >= 2, got layers={layers}, C={C}")
        self.steps, self.multiplier = steps, multiplier
        self.memory_efficient, self.channels_last = memory_efficient, channels_last
        self.primitives = tuple(primitives)
        self.partial_channels = partial_channels
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for layer in range(layers):
            reduction = layer in reduction_layers(layers)
            if reduction:
                C_curr *= 2
            cell_type = "reduce" if reduction else "normal"
            self.cells.append(
                search_cell(
                    cell_type,
                    C_prev_prev,
                    C_prev,
                    C_curr,
                    reduction,
                    reduction_prev,
                    steps,
                    multiplier,
                    self.primitives,
                    op_mutable,
                    edge_alpha,
                    partial_channels=partial_channels,
                )
            )
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last or (self.channels_last is None and x.device.type == "cpu"):
            x = x.contiguous(memory_format=torch.channels_last)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            if self.memory_efficient and torch.is_grad_enabled():
                s1_next = checkpoint(
                    cell,
                    s0,
                    s1,
                    use_reentrant=False,
                    context_fn=functools.partial(_recompute_context, cell),
                )
            else:
                s1_next = cell(s0, s1)
            s0, s1 = s1, s1_next
        out = self.global_pooling(s1)  # (N, C_prev, 1, 1)
        logits: torch.Tensor = self.classifier(out.flatten(1))
        return logits

    def widen_partial_channels(self, k: int) -> list[Growth]:
        """Lower PC-DARTS' K to ``k``: every edge's ops grow to ``C // k`` channels
        keeping their trained weights (DrNAS' progressive search; see
        :mod:`.widen`). Returns each replaced parameter with its successor and
        the function that grows optimizer state shaped like it."""
        if self.partial_channels == 1:
            raise ValueError("this network has no partial channels to widen (partial_channels=1)")
        growths = widen_partial_channels(self.cells, k)
        self.partial_channels = k
        return growths

    def to_genotype(self, subnet: Mapping[str, Mapping[str, Sequence[str]]]) -> Genotype:
        """The genotype of a subnet from ``DartsMutator.search_subnet()``.

        Each node lists its kept inputs in the subnet's order (strongest
        first for the DARTS rule) with the op chosen on that edge. A node may
        keep any number of inputs, none included: the argmax rule of SNAS
        (``SnasMutator``) drops every edge whose strongest op is ``none``.
        """
        return subnet_to_genotype(subnet, self.steps, self.multiplier)


class FrozenRunningStats:
    """Within ``with FrozenRunningStats(module):`` the BatchNorms in ``module``
    normalise as usual but leave their running statistics and batch counters
    as they were.

    Each BatchNorm runs with momentum 0, so its update ``(1 - 0) * running +
    0 * batch`` keeps the statistics bit for bit (the call is otherwise
    unchanged, which activation checkpointing requires: the recomputation
    must save the same tensors as the forward did), and its
    ``num_batches_tracked`` is put back on exit. The object may be entered
    again, as a double backward recomputes a checkpointed cell more than once.
    """

    def __init__(self, module: nn.Module) -> None:
        self.batchnorms = [
            m
            for m in module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        ]
        # One entry per enter: each BatchNorm's momentum and batch count.
        self.saved: list[list[tuple[float | None, torch.Tensor | None]]] = []

    def __enter__(self) -> None:
        self.saved.append(
            [
                (
                    bn.momentum,
                    None if bn.num_batches_tracked is None else bn.num_batches_tracked.clone(),
                )
                for bn in self.batchnorms
            ]
        )
        for bn in self.batchnorms:
            bn.momentum = 0.0

    def __exit__(self, *exc_info: object) -> None:
        for bn, (momentum, count) in zip(self.batchnorms, self.saved.pop()):
            bn.momentum = momentum
            if count is not None and bn.num_batches_tracked is not None:
                bn.num_batches_tracked.copy_(count)


def _recompute_context(
    cell: nn.Module,
) -> tuple[contextlib.AbstractContextManager[None], FrozenRunningStats]:
    """``checkpoint``'s (forward, recomputation) contexts: the forward updates
    the BatchNorm statistics once, the recomputations in the backward do not."""
    return contextlib.nullcontext(), FrozenRunningStats(cell)


def subnet_to_genotype(
    subnet: Mapping[str, Mapping[str, Sequence[str]]], steps: int, multiplier: int
) -> Genotype:
    cells = {}
    for cell_type in CELL_TYPES:
        nodes = []
        for i in range(steps):
            edge = subnet.get(edge_space_id(cell_type, i))
            if edge is None:
                raise ValueError(f"the subnet has no decision {edge_space_id(cell_type, i)!r}")
            node = []
            for input_name in edge["chosen"]:
                j = int(input_name.removeprefix("input"))
                op = subnet.get(op_space_id(cell_type, i, j))
                if op is None:
                    raise ValueError(f"the subnet has no op for {op_space_id(cell_type, i, j)!r}")
                node.append((op["chosen"][0], j))
            nodes.append(node)
        cells[cell_type] = nodes
    concat = list(range(2 + steps - multiplier, 2 + steps))
    return Genotype(
        normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat
    )
