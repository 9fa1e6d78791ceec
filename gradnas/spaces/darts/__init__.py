"""The DARTS cell search space (8 ops, 4 intermediate nodes, normal and reduction cells)."""

from .cell import Cell, preprocess
from .drop_path import DropPath, drop_path_schedule
from .network import NetworkCIFAR, NetworkImageNet
from .ops import OPS, DilConv, FactorizedReduce, ReLUConvBN, SepConv, Zero, build_op
from .search_network import (
    DartsSearchNetwork,
    edge_space_id,
    op_space_id,
    reduction_layers,
    search_cell,
    subnet_to_genotype,
)

__all__ = [
    "OPS",
    "Cell",
    "DartsSearchNetwork",
    "DilConv",
    "DropPath",
    "FactorizedReduce",
    "NetworkCIFAR",
    "NetworkImageNet",
    "ReLUConvBN",
    "SepConv",
    "Zero",
    "build_op",
    "drop_path_schedule",
    "edge_space_id",
    "op_space_id",
    "preprocess",
    "reduction_layers",
    "search_cell",
    "subnet_to_genotype",
]
