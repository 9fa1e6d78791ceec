"""DARTS' mixed op as a mutable: one input, a softmax(alpha)-weighted sum."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MutableModule


def scaled_output(choice: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``weight * choice(x)``, computed by the choice as ``choice(x, weight)`` when
    its class sets ``takes_scale = True``."""
    if getattr(choice, "takes_scale", False):
        scaled: torch.Tensor = choice(x, weight)
        return scaled
    out: torch.Tensor = choice(x)
    return weight * out


def weighted_sum(
    choices: Sequence[nn.Module],
    weights: torch.Tensor,
    x: torch.Tensor,
    indices: Iterable[int] | None = None,
) -> torch.Tensor:
    """``sum_i weights[i] * choices[i](x)`` over ``indices`` (default: every choice).

    Equal to the plain sum, and cheaper:

    - a choice whose module sets ``outputs_zero = True`` (DARTS' ``none``)
      adds exact zeros, so it is not run. Its weight still gets the same
      gradient: its own term contributes ``<dL/dy, 0> = 0``, and the softmax
      (or sample) that made the weights still couples it to the others. It
      runs only when every choice in ``indices`` outputs zeros, to give the
      output its shape;
    - a choice whose class sets ``takes_scale = True`` computes its weighted
      term itself as ``choice(x, weight)`` (DARTS' ops fold the weight into
      their last BatchNorm);
    - the terms are accumulated in place into one tensor this function owns,
      instead of allocating a new partial sum per term.
    """
    indices = list(range(len(choices))) if indices is None else list(indices)
    live = [i for i in indices if not getattr(choices[i], "outputs_zero", False)] or indices
    w = weights.unbind(0)
    out = scaled_output(choices[live[0]], x, w[live[0]])
    if len(live) > 1:
        # A fresh tensor, so the in-place additions below touch nothing autograd saved.
        out = out + scaled_output(choices[live[1]], x, w[live[1]])
        for i in live[2:]:
            out.add_(scaled_output(choices[i], x, w[i]))
    return out


class DifferentiableOP(MutableModule):
    """Applies every choice to the same input and weighs them by softmax(alpha).

    Without an architecture parameter (``with_arch_param=False``) the chosen
    choices are summed. ``forward(x, arch_param=None)`` uses the alpha bound
    by a mutator unless one is passed. The weighted sum is
    :func:`weighted_sum`: choices that output zeros are skipped, and a choice
    may compute its weighted term itself (``takes_scale``).
    """

    def __init__(
        self,
        choices: Mapping[str, nn.Module],
        space_id: str,
        with_arch_param: bool = True,
        num_chosen: int = 1,
    ) -> None:
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
        return weighted_sum(self.choice_modules, self.compute_arch_probs(alpha), x)
