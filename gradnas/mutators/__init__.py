"""Mutators: own the architecture parameters and derive the final architecture."""

from .darts_mutator import DartsMutator
from .deploy import deploy_subnet
from .diff_mutator import DiffMutator, group_mutables
from .one_shot_mutator import OneShotMutator
from .snas_mutator import SnasMutator

__all__ = [
    "DartsMutator",
    "DiffMutator",
    "OneShotMutator",
    "SnasMutator",
    "deploy_subnet",
    "group_mutables",
]
