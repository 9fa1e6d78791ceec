"""What every search algorithm shares: the two parameter sets and a metric helper."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    """The parameters an optimizer updates, in its own order."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def check_disjoint(weights: Iterable[nn.Parameter], alphas: Iterable[nn.Parameter]) -> None:
    """Weights and alphas are separate sets, built explicitly; overlap is a setup bug."""
    if {id(p) for p in weights} & {id(p) for p in alphas}:
        raise ValueError("the weight optimizer holds architecture parameters; build it from "
                         "supernet.parameters() and the arch optimizer from mutator.arch_parameters()")


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy as a 0-d tensor (no host sync until the caller reads it)."""
    return (logits.argmax(dim=1) == target).float().mean()
