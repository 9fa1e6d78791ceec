"""A mixed op weighed by a Gumbel-softmax sample (GDAS when hard, SNAS when soft)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .differentiable_op import DifferentiableOP, weighted_sum
from .gumbel import check_temperature, gumbel_noise, gumbel_weights


class GumbelOP(DifferentiableOP):
    """Weighs its choices by ``gumbel_softmax(alpha, tau, hard)``.

    With ``hard=True`` only the sampled choice is computed and the output is
    the GDAS estimator ``h_k * o_k(x)`` (see :mod:`gradnas.mutables.gumbel`).
    With ``hard=False`` every choice is computed and weighed by the soft sample.
    Either way the sum is :func:`~gradnas.mutables.differentiable_op.weighted_sum`
    (choices that output zeros skipped unless sampled alone).
    ``set_temperature`` changes ``tau`` for the next forward.
    """

    def __init__(
        self,
        choices: Mapping[str, nn.Module],
        space_id: str,
        tau: float = 1.0,
        hard: bool = True,
        with_arch_param: bool = True,
        num_chosen: int = 1,
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

    def forward(self, x: torch.Tensor, arch_param: torch.Tensor | None = None) -> torch.Tensor:
        alpha = self._resolve_arch_param(arch_param, x)
        if alpha is None:
            return self._sum_chosen([x] * len(self.full_choice_names))
        weights, indices = gumbel_weights(
            alpha, self.gumbel_noise(alpha), self.tau, self.hard, self.num_chosen
        )
        return weighted_sum(self.choice_modules, weights, x, indices)
