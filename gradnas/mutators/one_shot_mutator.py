"""Uniform single-path sampling for one-shot (SPOS) training.

Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform
Sampling", ECCV 2020: each training step runs one path of the supernet,
drawn uniformly. In the DARTS cell a path keeps ``num_chosen`` distinct
inputs per node (a :class:`OneShotEdge`) and one op on each kept input (a
:class:`OneShotOP`), so a path is exactly a genotype.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from ..mutables import MutableModule, OneShotOP
from ..mutables.one_shot_edge import OneShotEdge
from .darts_mutator import outermost_mutables
from .diff_mutator import group_mutables

Subnet = dict[str, dict[str, list[str]]]


class OneShotMutator(nn.Module):
    """Samples and sets single paths of a supernet of :class:`OneShotOP` and :class:`OneShotEdge`.

    A subnet has the format of ``DartsMutator.search_subnet()``,
    ``{space_id: {'chosen': [names]}}``, so ``DartsSearchNetwork.to_genotype``
    turns a path into a genotype.

    It owns no parameters; it is an ``nn.Module`` only so it can be handled
    like the differentiable mutators.

    Args:
        exclude: op choices that ``sample_subnet`` never draws. DARTS'
            derivation never keeps ``none`` (a path through the zero op carries
            nothing), hence the default; ``exclude=()`` draws every choice.
            ``set_subnet`` still accepts an excluded op when it is named.
    """

    def __init__(self, exclude: Sequence[str] = ("none",)) -> None:
        super().__init__()
        if isinstance(exclude, str):
            raise ValueError(
                f"exclude must be a sequence of choice names, not the string {exclude!r}"
            )
        self.exclude = tuple(exclude)
        self.search_spaces: dict[str, list[MutableModule]] = {}
        # No alphas, but the same attribute as a DiffMutator's, so callers need not ask
        # which mutator they have.
        self.arch_params = nn.ParameterDict()
        # space id -> choice name -> space ids of the mutables inside that choice.
        self._inner: dict[str, dict[str, set[str]]] = {}

    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        groups = group_mutables(supernet)
        wrong = [
            space_id
            for space_id, members in groups.items()
            if not isinstance(members[0], (OneShotOP, OneShotEdge))
        ]
        if wrong:
            raise ValueError(
                f"OneShotMutator handles OneShotOP and OneShotEdge only; these decisions are not: {wrong}"
            )
        for space_id, members in groups.items():
            if isinstance(members[0], OneShotOP) and not self._allowed(members[0]):
                raise ValueError(
                    f"In {space_id}: every choice {members[0].choice_names} is excluded "
                    f"by exclude={self.exclude}"
                )
        inner: dict[str, dict[str, set[str]]] = {}
        for space_id, members in groups.items():
            for mutable in members:
                for name, module in mutable.choices.items():
                    inside = {m.space_id for m in outermost_mutables(module)}
                    if inside:
                        inner.setdefault(space_id, {}).setdefault(name, set()).update(inside)
        self.search_spaces = groups
        self._inner = inner

    def arch_probs(self) -> dict[str, torch.Tensor]:
        """No decision has an alpha: empty, as for a supernet without architecture parameters."""
        return {}

    def arch_parameters(self) -> Iterator[nn.Parameter]:
        """No architecture parameters."""
        return iter(())

    def search_subnet(self) -> Subnet:
        """There are no alphas to derive from: a one-path method finds its path in its
        final stage (SPOS' evolution, random search's trials)."""
        raise ValueError("a one-path supernet has no alphas to derive an architecture from")

    def _allowed(self, op: MutableModule) -> list[str]:
        return [name for name in op.choice_names if name not in self.exclude]

    def sample_subnet(self, generator: torch.Generator | None = None) -> Subnet:
        """A uniformly random path (torch's RNG, or ``generator``).

        Every decision is drawn, also the ops of inputs the path does not
        keep (they do not run; drawing them keeps the number of draws per
        path fixed). An edge keeps ``num_chosen`` distinct inputs, uniform
        over the subsets and listed in input order; an op one choice uniform
        over those not in ``exclude``.
        """
        subnet: Subnet = {}
        for space_id, members in self.search_spaces.items():
            first = members[0]
            if isinstance(first, OneShotEdge):
                names = first.choice_names
                kept = torch.randperm(len(names), generator=generator)[: first.num_chosen].tolist()
                subnet[space_id] = {"chosen": [names[i] for i in sorted(kept)]}
            else:
                names = self._allowed(first)
                index = int(torch.randint(len(names), (1,), generator=generator))
                subnet[space_id] = {"chosen": [names[index]]}
        return subnet

    def _required(self, subnet: Mapping[str, Mapping[str, Sequence[str]]]) -> set[str]:
        """The decisions a forward reaches under ``subnet``: every decision not
        inside another mutable, and those inside the choices it keeps."""
        nested = {
            sid for by_name in self._inner.values() for ids in by_name.values() for sid in ids
        }
        stack = [sid for sid in self.search_spaces if sid not in nested]
        required: set[str] = set()
        while stack:
            space_id = stack.pop()
            if space_id in required:
                continue
            required.add(space_id)
            entry = subnet.get(space_id)
            chosen = entry.get("chosen", ()) if isinstance(entry, Mapping) else ()
            for name in chosen if isinstance(chosen, (list, tuple)) else ():
                stack.extend(self._inner.get(space_id, {}).get(name, ()))
        return required

    def set_subnet(self, subnet: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
        """Make every mutable run the choices ``subnet`` names for its decision.

        Decisions a path does not reach (the ops of inputs an edge does not
        keep) may be left out, as ``DartsMutator.search_subnet()`` leaves
        them out; they are cleared, so a stale choice never lingers. The
        whole subnet is checked before anything changes.
        """
        unknown = sorted(set(subnet) - set(self.search_spaces))
        if unknown:
            raise ValueError(f"the subnet names space ids the supernet does not have: {unknown}")
        missing = sorted(self._required(subnet) - set(subnet))
        if missing:
            raise ValueError(f"the subnet has no choice for {missing}")
        active: dict[str, str | tuple[str, ...]] = {}
        for space_id, entry in subnet.items():
            first = self.search_spaces[space_id][0]
            if not isinstance(entry, Mapping) or "chosen" not in entry:
                raise ValueError(f"In {space_id}: expected {{'chosen': [names]}}, got {entry!r}")
            chosen = entry["chosen"]
            if isinstance(first, OneShotEdge):
                active[space_id] = first.check_active(chosen)
                continue
            if isinstance(chosen, str) or len(chosen) != 1:
                raise ValueError(
                    f"In {space_id}: a one-shot path takes exactly one choice, got {chosen}"
                )
            if chosen[0] not in first.choices:
                raise ValueError(
                    f"In {space_id}: unknown choice {chosen[0]!r}; available: {first.choice_names}"
                )
            active[space_id] = chosen[0]
        for space_id, members in self.search_spaces.items():
            # An edge's choice is a tuple of names, an op's one name (built above).
            choice = active.get(space_id)
            for mutable in members:
                if isinstance(mutable, OneShotEdge):
                    if isinstance(choice, tuple):
                        mutable.set_active(choice)
                    else:
                        mutable.active = None
                elif isinstance(mutable, OneShotOP):
                    if isinstance(choice, str):
                        mutable.set_active(choice)
                    else:
                        mutable.active = None
