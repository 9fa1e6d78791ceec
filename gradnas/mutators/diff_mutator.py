"""The owner of the architecture parameters of a differentiable supernet."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn.modules.module import _IncompatibleKeys

from ..mutables import MutableModule


@runtime_checkable
class _TakesTemperature(Protocol):
    """A mutable that samples with a Gumbel temperature (GumbelOP, GumbelEdge)."""

    def set_temperature(self, tau: float) -> None: ...


def group_mutables(supernet: nn.Module) -> dict[str, list[MutableModule]]:
    """Every mutable of ``supernet`` grouped by ``space_id``, in module order.

    Mutables of one group are one decision, so they must agree on type,
    choice names and ``num_chosen``; a mismatch names the space id.
    """
    groups: dict[str, list[MutableModule]] = {}
    for module in supernet.modules():
        if isinstance(module, MutableModule):
            groups.setdefault(module.space_id, []).append(module)
    if not groups:
        raise ValueError(
            "the supernet holds no mutable module (DifferentiableOP, DifferentiableEdge, ...)"
        )
    for space_id, members in groups.items():
        first = members[0]
        for other in members[1:]:
            if (
                type(other) is not type(first)
                or other.full_choice_names != first.full_choice_names
                or other.num_chosen != first.num_chosen
                or other.with_arch_param != first.with_arch_param
            ):
                raise ValueError(
                    f"In {space_id}: mutables sharing this space_id differ ({type(first).__name__} "
                    f"{list(first.full_choice_names)} vs {type(other).__name__} "
                    f"{list(other.full_choice_names)}); "
                    f"one space_id must name one decision"
                )
    return groups


class DiffMutator(nn.Module):
    """Creates one alpha per decision and binds it to the supernet's mutables.

    After ``prepare_from_supernet(supernet)`` a plain ``supernet(x)`` uses the
    alphas in ``arch_params`` (an ``nn.ParameterDict`` keyed by space id).
    The mutator is an ``nn.Module``: its alphas are in its ``state_dict`` and
    move with ``mutator.to(device)``; they are never in ``supernet.parameters()``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.arch_params = nn.ParameterDict()
        self.search_spaces: dict[str, list[MutableModule]] = {}

    def prepare_from_supernet(self, supernet: nn.Module) -> None:
        groups = group_mutables(supernet)
        for space_id, members in groups.items():
            fresh = members[0].build_arch_param()
            if fresh is None:
                alpha = None
            elif space_id in self.arch_params and self.arch_params[space_id].shape == fresh.shape:
                alpha = self.arch_params[space_id]  # preparing again keeps learned alphas
            else:
                self.arch_params[space_id] = fresh
                alpha = self.arch_params[space_id]
            for mutable in members:
                mutable.bind_arch_param(alpha)
        self.search_spaces = groups

    def _rebind(self) -> None:
        for space_id, members in self.search_spaces.items():
            alpha = self.arch_params.get(space_id, None)
            for mutable in members:
                if not mutable.is_exported:
                    mutable.bind_arch_param(alpha)

    def _apply(
        self, fn: Callable[[torch.Tensor], torch.Tensor], *args: Any, **kwargs: Any
    ) -> DiffMutator:
        # .to()/.double() may replace the Parameter objects (torch's
        # overwrite/swap-on-conversion settings); rebind so the supernet
        # keeps reading the mutator's current alphas.
        result: DiffMutator = super()._apply(fn, *args, **kwargs)  # type: ignore[no-untyped-call]  # torch leaves Module._apply unannotated
        self._rebind()
        return result

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        result: _IncompatibleKeys = super().load_state_dict(
            state_dict, strict=strict, assign=assign
        )
        self._rebind()
        return result

    def prune_choices(self, space_id: str, kept: Sequence[str]) -> torch.Tensor:
        """Prune decision ``space_id`` to the choices ``kept``: every mutable of
        it drops the others, and its alpha becomes a new, shorter parameter
        holding the kept choices' values. Returns the kept positions in the
        old alpha, so optimizer state can follow (the new parameter replaces
        the old one, which an optimizer over the old alphas still holds)."""
        members = self.search_spaces.get(space_id)
        if not members:
            raise ValueError(f"no decision {space_id!r}; known: {sorted(self.search_spaces)}")
        names = list(members[0].full_choice_names)
        for mutable in members:
            mutable.prune_choices(kept)
        index = torch.tensor(
            [names.index(name) for name in members[0].full_choice_names], dtype=torch.long
        )
        if space_id in self.arch_params:
            old = self.arch_params[space_id]
            self.arch_params[space_id] = nn.Parameter(old.detach()[index.to(old.device)].clone())
        self._rebind()
        return index

    def arch_parameters(self) -> Iterator[nn.Parameter]:
        """Exactly the alphas, for the architecture optimizer."""
        return iter(self.arch_params.values())

    def arch_probs(self) -> dict[str, torch.Tensor]:
        """softmax(alpha) of every decision, detached, for logging and derivation."""
        return {
            space_id: torch.softmax(alpha.detach(), dim=-1)
            for space_id, alpha in self.arch_params.items()
        }

    def set_temperature(self, tau: float) -> None:
        """Set the Gumbel temperature of every mutable that samples."""
        for members in self.search_spaces.values():
            for mutable in members:
                if isinstance(mutable, _TakesTemperature):
                    mutable.set_temperature(tau)
