"""A searchable set of incoming connections: choice i processes input i."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MutableModule, sum_tensors


class DifferentiableEdge(MutableModule):
    """Connections from previous nodes into one node, as in a DARTS cell.

    ``forward(prev_inputs)`` takes one tensor per *original* choice
    (``full_choice_names``), also after export removed some, and applies
    choice i to ``prev_inputs[i]``. With an alpha (PC-DARTS' edge
    normalisation) the outputs are weighed by softmax(alpha); without one
    they are summed. ``num_chosen`` is how many inputs the derived node keeps
    (2 in DARTS).
    """

    def __init__(
        self,
        choices: Mapping[str, nn.Module],
        space_id: str,
        with_arch_param: bool,
        num_chosen: int = 1,
    ) -> None:
        super().__init__(choices, space_id, num_chosen=num_chosen, with_arch_param=with_arch_param)

    def build_arch_param(self) -> nn.Parameter | None:
        if not self.with_arch_param:
            return None
        return nn.Parameter(torch.randn(len(self.full_choice_names)) * 1e-3)

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        return F.softmax(arch_param, dim=-1)

    def _check_inputs(self, prev_inputs: Sequence[torch.Tensor]) -> None:
        if len(prev_inputs) != len(self.full_choice_names):
            raise ValueError(
                f"In {self.space_id}: got {len(prev_inputs)} inputs, expected one per "
                f"original choice {list(self.full_choice_names)}"
            )

    def forward(
        self, prev_inputs: Sequence[torch.Tensor], arch_param: torch.Tensor | None = None
    ) -> torch.Tensor:
        self._check_inputs(prev_inputs)
        alpha = self._resolve_arch_param(arch_param, prev_inputs[0])
        if alpha is None:
            return self._sum_chosen(prev_inputs)
        probs = self.compute_arch_probs(alpha)
        return sum_tensors(
            probs[i] * module(prev_inputs[i]) for i, module in enumerate(self.choices.values())
        )
