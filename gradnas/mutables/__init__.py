"""Mutable modules: the searchable parts of a supernet."""

from .base import MutableModule
from .differentiable_edge import DifferentiableEdge
from .differentiable_op import DifferentiableOP
from .dirichlet_op import DirichletOP
from .gumbel_edge import GumbelEdge
from .gumbel_op import GumbelOP
from .one_shot_edge import OneShotEdge
from .one_shot_op import OneShotOP

__all__ = [
    "DifferentiableEdge",
    "DifferentiableOP",
    "DirichletOP",
    "GumbelEdge",
    "GumbelOP",
    "MutableModule",
    "OneShotEdge",
    "OneShotOP",
]
