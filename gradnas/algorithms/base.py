"""What every search algorithm shares: the two parameter sets, a metric helper,
and the two data-parallel hooks.

Every algorithm has two attributes the engine sets under ``torchrun``
(:mod:`gradnas.parallel`): ``model``, the module the weight step's forward
goes through (the supernet itself, or its ``DistributedDataParallel``
wrapper, which averages the weight gradients over the ranks during the
backward), and ``replicas``, whose ``average_grads_`` / ``average_`` average
every gradient DDP does not see (the alphas', and those second-order DARTS
takes with ``torch.autograd.grad``). Single-process, both do nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..parallel import Replicas


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    """The parameters an optimizer updates, in its own order."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def check_disjoint(weights: Iterable[nn.Parameter], alphas: Iterable[nn.Parameter]) -> None:
    """Weights and alphas are separate sets, built explicitly; overlap is a setup bug."""
    if {id(p) for p in weights} & {id(p) for p in alphas}:
        raise ValueError(
            "the weight optimizer holds architecture parameters; build it from "
            "supernet.parameters() and the arch optimizer from mutator.arch_parameters()"
        )


def use_data_parallel(algorithm: object, model: nn.Module, replicas: Replicas) -> None:
    """Route ``algorithm``'s weight-step forward through ``model`` (a DDP
    wrapper of its supernet) and average its other gradients over ``replicas``."""
    if getattr(model, "module", model) is not algorithm.supernet:  # type: ignore[attr-defined]
        raise ValueError("the data-parallel model must wrap the algorithm's own supernet")
    algorithm.model = model  # type: ignore[attr-defined]
    algorithm.replicas = replicas  # type: ignore[attr-defined]


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy as a 0-d tensor (no host sync until the caller reads it)."""
    return (logits.argmax(dim=1) == target).float().mean()
