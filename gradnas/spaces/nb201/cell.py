"""The NAS-Bench-201 cell: a complete DAG over 4 nodes, one op per edge.

Node 0 is the cell's input, nodes 1 and 2 are intermediate, node 3 is the
output. Every pair ``j < i`` is an edge ``j -> i`` (6 edges), and each node
is the plain sum of its incoming edges (Dong & Yang, ICLR 2020, Sec. 2.1;
AutoDL-Projects ``NAS201SearchCell`` and ``InferCell`` sum the edges the
same way). The same class serves the supernet, whose edges are op mutables,
and the fixed network, whose edges are plain ops: the cell code is written once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

NUM_NODES = 4
# Every edge (target i, source j) with j < i, in the benchmark's arch-string
# order: node 1's inputs, then node 2's, then node 3's, each by source.
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(1, NUM_NODES) for j in range(i))


def edge_space_id(i: int, j: int) -> str:
    """The decision of the op on the edge from node ``j`` into node ``i``; one
    decision per edge shared by every cell (the benchmark's search keeps one
    ``(6, 5)`` alpha matrix for all cells)."""
    return f"edge_{i}_{j}"


class NB201Cell(nn.Module):
    """Sums ``edge(i, j)(node_j)`` over ``j < i`` for nodes 1..3 and returns node 3.

    Args:
        make_edge: builds the module of edge ``(i, j)``: a mutable over the
            five ops in the supernet, the chosen op in a fixed network.
    """

    def __init__(self, make_edge: Callable[[int, int], nn.Module]) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({edge_space_id(i, j): make_edge(i, j) for i, j in EDGES})

    def edge(self, i: int, j: int) -> nn.Module:
        return self.edges[edge_space_id(i, j)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for i in range(1, NUM_NODES):
            nodes.append(sum(self.edge(i, j)(nodes[j]) for j in range(i)))
        return nodes[-1]
