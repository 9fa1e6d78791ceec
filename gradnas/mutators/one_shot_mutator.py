"""Uniform single-path sampling for one-shot (SPOS) training."""

from __future__ import annotations

import torch
from torch import nn

from ..mutables import OneShotOP
from .diff_mutator import group_mutables

Subnet = dict[str, dict[str, list[str]]]


class OneShotMutator(nn.Module):
    """Samples and sets single paths of a supernet built from :class:`OneShotOP`.

    It owns no parameters; it is an ``nn.Module`` only so it can be handled
    like the differentiable mutators.
    """

    def __init__(self) -> None:
        super().__init__()
        self.search_spaces: dict[str, list[OneShotOP]] = {}

    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        groups = group_mutables(supernet)
        wrong = [space_id for space_id, members in groups.items() if not isinstance(members[0], OneShotOP)]
        if wrong:
            raise ValueError(f"OneShotMutator handles OneShotOP only; these decisions are not: {wrong}")
        self.search_spaces = groups

    def sample_subnet(self, generator: torch.Generator | None = None) -> Subnet:
        """One choice per decision, uniformly at random (torch's RNG, or ``generator``)."""
        subnet: Subnet = {}
        for space_id, members in self.search_spaces.items():
            names = members[0].choice_names
            index = int(torch.randint(len(names), (1,), generator=generator))
            subnet[space_id] = {"chosen": [names[index]]}
        return subnet

    def set_subnet(self, subnet: Subnet) -> None:
        """Make every mutable run the choice ``subnet`` names for its decision."""
        missing = [space_id for space_id in self.search_spaces if space_id not in subnet]
        if missing:
            raise ValueError(f"the subnet has no choice for {missing}")
        for space_id, members in self.search_spaces.items():
            chosen = subnet[space_id]["chosen"]
            if len(chosen) != 1:
                raise ValueError(f"In {space_id}: a one-shot path takes exactly one choice, got {chosen}")
            for mutable in members:
                mutable.set_active(chosen[0])
