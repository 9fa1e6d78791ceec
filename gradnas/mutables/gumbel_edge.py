"""Incoming connections picked by a Gumbel-softmax sample."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .base import sum_tensors
from .differentiable_edge import DifferentiableEdge
from .gumbel import check_temperature, gumbel_noise, gumbel_weights


class GumbelEdge(DifferentiableEdge):
    """An edge whose inputs are weighed by ``gumbel_softmax(alpha, tau, hard)``.

    With ``hard=True`` only the sampled inputs' modules run. ``num_chosen > 1``
    with ``hard=True`` samples ``num_chosen`` *distinct* inputs by Gumbel-top-k
    (a draw without replacement from softmax(alpha)), each kept input weighed
    by its straight-through weight (1 in the forward pass).
    """

    def __init__(
        self,
        choices: Mapping[str, nn.Module],
        space_id: str,
        with_arch_param: bool = True,
        num_chosen: int = 1,
        tau: float = 1.0,
        hard: bool = True,
    ) -> None:
        super().__init__(choices, space_id, with_arch_param=with_arch_param, num_chosen=num_chosen)
        self.tau = check_temperature(tau, space_id)
        self.hard = bool(hard)

    def set_temperature(self, tau: float) -> None:
        self.tau = check_temperature(tau, self.space_id)

    def gumbel_noise(self, alpha: torch.Tensor) -> torch.Tensor:
        """Fresh noise for one sample; tests replace it to fix the sample."""
        return gumbel_noise(alpha)

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        weights, _ = gumbel_weights(
            arch_param, self.gumbel_noise(arch_param), self.tau, self.hard, self.num_chosen
        )
        return weights

    def forward(
        self, prev_inputs: Sequence[torch.Tensor], arch_param: torch.Tensor | None = None
    ) -> torch.Tensor:
        self._check_inputs(prev_inputs)
        alpha = self._resolve_arch_param(arch_param, prev_inputs[0])
        if alpha is None:
            return self._sum_chosen(prev_inputs)
        weights, indices = gumbel_weights(
            alpha, self.gumbel_noise(alpha), self.tau, self.hard, self.num_chosen
        )
        modules = self.choice_modules
        terms: Sequence[int] = range(len(modules)) if indices is None else indices
        return sum_tensors(weights[i] * modules[i](prev_inputs[i]) for i in terms)
