"""DARTS' mixed op as a mutable: one input, a softmax(alpha)-weighted sum."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import MutableModule


class DifferentiableOP(MutableModule):
    """Applies every choice to the same input and weighs them by softmax(alpha).

    Without an architecture parameter (``with_arch_param=False``) the chosen
    choices are summed. ``forward(x, arch_param=None)`` uses the alpha bound
    by a mutator unless one is passed.
    """

    def __init__(self, choices: Mapping[str, nn.Module], space_id: str, with_arch_param: bool = True,
                 num_chosen: int = 1) -> None:
        super().__init__(choices, space_id, num_chosen=num_chosen, with_arch_param=with_arch_param)

    def build_arch_param(self) -> nn.Parameter | None:
        if not self.with_arch_param:
            return None
        # DARTS initialises alphas as 1e-3 * randn.
        return nn.Parameter(torch.randn(len(self.full_choice_names)) * 1e-3)

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        return F.softmax(arch_param, dim=-1)

    def forward(self, x: torch.Tensor, arch_param: torch.Tensor | None = None) -> torch.Tensor:
        alpha = self._resolve_arch_param(arch_param, x)
        if alpha is None:
            return self._sum_chosen([x] * len(self.full_choice_names))
        probs = self.compute_arch_probs(alpha)
        return sum(probs[i] * op(x) for i, op in enumerate(self.choices.values()))
