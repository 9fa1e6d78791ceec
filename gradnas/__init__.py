"""gradnas: differentiable neural architecture search for PyTorch.

The main names are importable from the top level (``from gradnas import DartsMutator``) and from
their packages (``gradnas.mutables``, ``gradnas.mutators``, ``gradnas.algorithms``, ...). They are
loaded on first use, so ``import gradnas`` and ``gradnas --help`` do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it; read by __getattr__ below.
_EXPORTS = {
    "MutableModule": "gradnas.mutables",
    "DifferentiableOP": "gradnas.mutables",
    "DifferentiableEdge": "gradnas.mutables",
    "GumbelOP": "gradnas.mutables",
    "GumbelEdge": "gradnas.mutables",
    "DirichletOP": "gradnas.mutables",
    "OneShotOP": "gradnas.mutables",
    "OneShotEdge": "gradnas.mutables",
    "DiffMutator": "gradnas.mutators",
    "DartsMutator": "gradnas.mutators",
    "SnasMutator": "gradnas.mutators",
    "OneShotMutator": "gradnas.mutators",
    "deploy_subnet": "gradnas.mutators",
    "Darts": "gradnas.algorithms",
    "Gdas": "gradnas.algorithms",
    "PCDarts": "gradnas.algorithms",
    "Snas": "gradnas.algorithms",
    "DrNas": "gradnas.algorithms",
    "Spos": "gradnas.algorithms",
    "Genotype": "gradnas.genotype",
    "get_genotype": "gradnas.genotype",
    "SearchConfig": "gradnas.config",
    "TrainConfig": "gradnas.config",
    "load_config": "gradnas.config",
    "GradnasError": "gradnas.errors",
    "search": "gradnas.api",
    "train": "gradnas.api",
}

# Kept equal to _EXPORTS by tests/test_public_api.py.
__all__ = [
    "Darts",
    "DartsMutator",
    "DiffMutator",
    "DifferentiableEdge",
    "DifferentiableOP",
    "DirichletOP",
    "DrNas",
    "Gdas",
    "Genotype",
    "GradnasError",
    "GumbelEdge",
    "GumbelOP",
    "MutableModule",
    "OneShotEdge",
    "OneShotMutator",
    "OneShotOP",
    "PCDarts",
    "SearchConfig",
    "Snas",
    "SnasMutator",
    "Spos",
    "TrainConfig",
    "__version__",
    "deploy_subnet",
    "get_genotype",
    "load_config",
    "search",
    "train",
]

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads them
    from .algorithms import Darts, DrNas, Gdas, PCDarts, Snas, Spos
    from .api import search, train
    from .config import SearchConfig, TrainConfig, load_config
    from .errors import GradnasError
    from .genotype import Genotype, get_genotype
    from .mutables import (
        DifferentiableEdge,
        DifferentiableOP,
        DirichletOP,
        GumbelEdge,
        GumbelOP,
        MutableModule,
        OneShotEdge,
        OneShotOP,
    )
    from .mutators import DartsMutator, DiffMutator, OneShotMutator, SnasMutator, deploy_subnet


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gradnas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
