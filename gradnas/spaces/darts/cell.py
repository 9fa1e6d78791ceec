"""The DARTS cell, one class for the search network and the derived networks.

A cell preprocesses its two inputs (the outputs of the two previous cells),
computes each intermediate node as an edge over earlier states, and
concatenates some of the states. In the search network every node's edge is
a :class:`~gradnas.mutables.DifferentiableEdge` over all earlier states with
a mixed op per input; in a derived network it is an edge over the genotype's
inputs with one fixed op each. The cell itself does not know which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .ops import FactorizedReduce, ReLUConvBN, sharing_input_work


class DenseGradient(torch.autograd.Function):
    """The identity, whose backward lays its gradient out densely in the forward
    tensor's memory format.

    The backward of ``torch.cat`` hands each input a slice of the output's
    gradient, which is dense in neither layout; a cell's last node receives
    only that, and adding it to dense gradients of other uses gives a
    channels-first sum. PyTorch's CPU BatchNorm backward (the last op of
    every candidate op) is several times slower on such gradients than on
    dense channels-last ones, so the cell densifies them once, here.
    """

    # ctx is Any: it carries the attributes forward sets for backward, which
    # torch's FunctionCtx does not declare.
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        ctx.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=ctx.memory_format)


def preprocess(
    C_prev_prev: int, C_prev: int, C: int, reduction_prev: bool, affine: bool
) -> tuple[nn.Module, nn.Module]:
    """1x1 convs bringing both cell inputs to ``C`` channels; the older input
    is also halved in resolution when the previous cell was a reduction."""
    if reduction_prev:
        pre0: nn.Module = FactorizedReduce(C_prev_prev, C, affine)
    else:
        pre0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine)
    return pre0, ReLUConvBN(C_prev, C, 1, 1, 0, affine)


class Cell(nn.Module):
    """Nodes computed in order from earlier states, then a channel concat.

    Args:
        pre0: preprocessing of the input c_{k-2}.
        pre1: preprocessing of the input c_{k-1}.
        nodes: one edge module per intermediate node, called with the list
            of states named in ``node_inputs``.
        node_inputs: for each node, the state indices its edge reads
            (0 = c_{k-2}, 1 = c_{k-1}, 2.. = earlier nodes).
        concat: the state indices concatenated into the cell's output.
        reduction: whether this cell halves the resolution.
    """

    def __init__(
        self,
        pre0: nn.Module,
        pre1: nn.Module,
        nodes: Sequence[nn.Module],
        node_inputs: Sequence[Sequence[int]],
        concat: Sequence[int],
        reduction: bool,
    ) -> None:
        super().__init__()
        if len(nodes) != len(node_inputs):
            raise ValueError(f"{len(nodes)} nodes but {len(node_inputs)} input lists")
        self.preprocess0 = pre0
        self.preprocess1 = pre1
        self.nodes = nn.ModuleList(nodes)
        self.node_inputs = [list(inputs) for inputs in node_inputs]
        self.concat = list(concat)
        self.reduction = reduction

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        # Every edge leaving a state applies the same parameter-free ReLU and
        # pools to it: compute those once per state (see ops.sharing_input_work).
        with sharing_input_work():
            for edge, inputs in zip(self.nodes, self.node_inputs):
                states.append(edge([states[j] for j in inputs]))
        dense = [
            DenseGradient.apply(states[i])  # type: ignore[no-untyped-call]  # torch leaves Function.apply unannotated
            for i in self.concat
        ]
        return torch.cat(dense, dim=1)
