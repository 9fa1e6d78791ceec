"""Single-path one-shot op (SPOS): runs the one choice a mutator set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .base import MutableModule


class OneShotOP(MutableModule):
    """Runs only the active choice, set by ``OneShotMutator.set_subnet``.

    The active choice is a plain attribute read on the host, so a forward
    costs no device sync; it starts unset and a forward before any
    ``set_active`` is an error rather than a silent default.
    """

    def __init__(self, choices: Mapping[str, nn.Module], space_id: str) -> None:
        super().__init__(choices, space_id, num_chosen=1)
        self.active: str | None = None

    def set_active(self, name: str) -> None:
        if name not in self.choices:
            raise ValueError(
                f"In {self.space_id}: unknown choice {name!r}; available: {self.choice_names}"
            )
        self.active = name

    def export(self, chosen: Sequence[str]) -> None:
        super().export(chosen)
        self.active = self.choice_names[0] if self.num_choices == 1 else None

    def forward(self, x: torch.Tensor, arch_param: torch.Tensor | None = None) -> torch.Tensor:
        if self.is_exported:
            return self._sum_chosen([x] * len(self.full_choice_names))
        if self.active is None:
            raise RuntimeError(
                f"In {self.space_id}: no active choice; call "
                f"OneShotMutator.set_subnet(...) or sample_subnet() first"
            )
        out: torch.Tensor = self.choices[self.active](x)
        return out
