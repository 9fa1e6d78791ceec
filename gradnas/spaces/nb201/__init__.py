"""The NAS-Bench-201 cell search space (5 ops on the 6 edges of a 4-node cell)."""

from .arch import NB201Arch
from .cell import EDGES, NUM_NODES, NB201Cell, edge_space_id
from .networks import (
    NB201Network,
    NB201SearchNetwork,
    NB201Skeleton,
    ResidualReduction,
    subnet_to_arch,
)
from .ops import NB201_PRIMITIVES, OPS, ReLUConvBN, build_op

__all__ = [
    "EDGES",
    "NB201_PRIMITIVES",
    "NUM_NODES",
    "OPS",
    "NB201Arch",
    "NB201Cell",
    "NB201Network",
    "NB201SearchNetwork",
    "NB201Skeleton",
    "ReLUConvBN",
    "ResidualReduction",
    "build_op",
    "edge_space_id",
    "subnet_to_arch",
]
