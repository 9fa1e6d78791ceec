"""Mutable modules: the searchable parts of a supernet."""

from .base import MutableModule
from .differentiable_edge import DifferentiableEdge
from .differentiable_op import DifferentiableOP
from .dirichlet_op import DirichletOP
from .gumbel_edge import GumbelEdge
from .gumbel_op import GumbelOP
from .kernel_conv import KernelChoice, KernelConv2d
from .one_shot_edge import OneShotEdge
from .one_shot_op import OneShotOP
from .width_conv import WidthChoice, WidthConv2d

__all__ = [
    "DifferentiableEdge",
    "DifferentiableOP",
    "DirichletOP",
    "GumbelEdge",
    "GumbelOP",
    "KernelChoice",
    "KernelConv2d",
    "MutableModule",
    "OneShotEdge",
    "OneShotOP",
    "WidthChoice",
    "WidthConv2d",
]
