"""Turn a supernet into the fixed network of one subnet."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from ..mutables import MutableModule


def _walk(
    module: nn.Module, subnet: Mapping[str, Mapping[str, list[str]]], apply: bool, seen: set[str]
) -> None:
    """Visit mutables top-down, ``module`` itself included; only the choices
    that stay are entered, so ops on removed edges need no entry in ``subnet``.
    A chosen choice may itself be a mutable (a DARTS edge whose choices are
    mixed ops), so each chosen module is visited, not only its children."""
    if not isinstance(module, MutableModule):
        for child in module.children():
            _walk(child, subnet, apply, seen)
        return
    entry = subnet.get(module.space_id)
    if entry is None or "chosen" not in entry:
        raise ValueError(
            f"In {module.space_id}: the subnet has no 'chosen' entry for this decision"
        )
    chosen = list(entry["chosen"])
    unknown = [name for name in chosen if name not in module.choices]
    if unknown or not chosen:
        raise ValueError(
            f"In {module.space_id}: cannot choose {chosen}; available: {module.choice_names}"
        )
    seen.add(module.space_id)
    if apply:
        module.export(chosen)
    for name in chosen:
        _walk(module.choices[name], subnet, apply, seen)


def deploy_subnet(supernet: nn.Module, subnet: Mapping[str, Mapping[str, list[str]]]) -> nn.Module:
    """Export every mutable of ``supernet`` to its chosen names, in place.

    The whole subnet is checked before anything changes, so a bad subnet
    leaves the supernet as it was. Afterwards the forward computes only the
    chosen modules and reads no alpha. Returns ``supernet``.
    """
    seen: set[str] = set()
    _walk(supernet, subnet, apply=False, seen=seen)
    extra = sorted(set(subnet) - seen)
    known = {m.space_id for m in supernet.modules() if isinstance(m, MutableModule)}
    unknown = [space_id for space_id in extra if space_id not in known]
    if unknown:
        raise ValueError(f"the subnet names space ids the supernet does not have: {unknown}")
    _walk(supernet, subnet, apply=True, seen=set())
    return supernet
