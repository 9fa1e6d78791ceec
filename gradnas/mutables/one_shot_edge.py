"""Single-path one-shot edge (SPOS): runs only the inputs a mutator set.

In the DARTS cell a single path keeps ``num_chosen`` of a node's earlier
states (2 in DARTS) and one op on each; :class:`OneShotEdge` is the input
half of that choice, :class:`~gradnas.mutables.OneShotOP` the op half.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .base import MutableModule, sum_tensors


class OneShotEdge(MutableModule):
    """Sums the outputs of its active choices, choice i applied to input i.

    ``forward(prev_inputs)`` takes one tensor per *original* choice
    (``full_choice_names``), as every edge does, but computes only the
    ``num_chosen`` active ones, so the inactive inputs' modules neither run
    nor receive a gradient. The active set is a plain host-side attribute
    (no device sync per forward); it starts unset, and a forward before
    ``set_active`` is an error rather than a silent default.
    """

    def __init__(
        self, choices: Mapping[str, nn.Module], space_id: str, num_chosen: int = 1
    ) -> None:
        super().__init__(choices, space_id, num_chosen=num_chosen, with_arch_param=False)
        self._input_index = {name: i for i, name in enumerate(self.full_choice_names)}
        self.active: tuple[str, ...] | None = None

    def check_active(self, names: Sequence[str]) -> tuple[str, ...]:
        """``names`` as a tuple if they can be the active set, else a ValueError:
        exactly ``num_chosen`` distinct names of present choices."""
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ValueError(
                f"In {self.space_id}: expected a list of {self.num_chosen} choice name(s), got {names!r}"
            )
        names = tuple(names)
        unknown = [name for name in names if name not in self.choices]
        if unknown:
            raise ValueError(
                f"In {self.space_id}: unknown choice(s) {unknown}; available: {self.choice_names}"
            )
        if len(set(names)) != len(names) or len(names) != self.num_chosen:
            raise ValueError(
                f"In {self.space_id}: a path keeps exactly {self.num_chosen} distinct input(s), "
                f"got {list(names)}"
            )
        return names

    def set_active(self, names: Sequence[str]) -> None:
        """Make the next forwards run exactly the choices ``names``."""
        self.active = self.check_active(names)

    def export(self, chosen: Sequence[str]) -> None:
        super().export(chosen)
        self.active = tuple(self.choice_names)

    def forward(
        self, prev_inputs: Sequence[torch.Tensor], arch_param: torch.Tensor | None = None
    ) -> torch.Tensor:
        if len(prev_inputs) != len(self.full_choice_names):
            raise ValueError(
                f"In {self.space_id}: got {len(prev_inputs)} inputs, expected one per "
                f"original choice {list(self.full_choice_names)}"
            )
        if self.is_exported:
            return self._sum_chosen(prev_inputs)
        if self.active is None:
            raise RuntimeError(
                f"In {self.space_id}: no active inputs; call "
                f"OneShotMutator.set_subnet(...) or sample_subnet() first"
            )
        outputs: list[torch.Tensor] = [
            self.choices[name](prev_inputs[self._input_index[name]]) for name in self.active
        ]
        return outputs[0] if len(outputs) == 1 else sum_tensors(outputs)
