"""How a search method weighs a decision's choices, as the mutable classes it builds.

A supernet is written once, with any of the seed's mutables
(``DifferentiableOP``, ``GumbelOP``, ``DifferentiableEdge``, ...). The method
that searches it decides how choices are weighed: softmax (DARTS), hard or
soft Gumbel-softmax (GDAS, SNAS), a Dirichlet sample (DrNAS) or one path
(SPOS, random search). :func:`reweigh` turns every mutable of a module into
the method's kind, keeping its choices (the same module objects, so no weight
is re-drawn), its ``space_id`` and ``num_chosen``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import nn

from .base import MutableModule
from .differentiable_edge import DifferentiableEdge
from .differentiable_op import DifferentiableOP
from .dirichlet_op import DirichletOP
from .gumbel_edge import GumbelEdge
from .gumbel_op import GumbelOP
from .one_shot_edge import OneShotEdge
from .one_shot_op import OneShotOP

# (choices, space_id, num_chosen) -> the op mutable of a method
OpFactory = Callable[[Mapping[str, nn.Module], str, int], MutableModule]
# (choices, space_id, num_chosen, with_arch_param) -> the edge mutable of a method
EdgeFactory = Callable[[Mapping[str, nn.Module], str, int, bool], MutableModule]


@dataclass(frozen=True)
class Weighing:
    """The mutables of one way of weighing choices.

    ``op`` builds a one-input decision, ``edge`` a several-input one (an edge
    built without an alpha by the user stays without one: a DARTS node sums
    its inputs and ranks them by their ops).
    """

    name: str  # for messages: "softmax", "gumbel (hard)", "dirichlet", "one path"
    op: OpFactory
    edge: EdgeFactory


def softmax() -> Weighing:
    return Weighing(
        "softmax",
        lambda choices, sid, k: DifferentiableOP(choices, sid, num_chosen=k),
        lambda choices, sid, k, alpha: DifferentiableEdge(
            choices, sid, with_arch_param=alpha, num_chosen=k
        ),
    )


def gumbel(tau: float, hard: bool) -> Weighing:
    return Weighing(
        f"gumbel ({'hard' if hard else 'soft'})",
        lambda choices, sid, k: GumbelOP(choices, sid, num_chosen=k, tau=tau, hard=hard),
        lambda choices, sid, k, alpha: (
            GumbelEdge(choices, sid, with_arch_param=True, num_chosen=k, tau=tau, hard=hard)
            if alpha
            else DifferentiableEdge(choices, sid, with_arch_param=False, num_chosen=k)
        ),
    )


def dirichlet() -> Weighing:
    # No Dirichlet edge exists: an edge with its own alpha keeps softmax weights.
    return Weighing(
        "dirichlet",
        lambda choices, sid, k: DirichletOP(choices, sid, num_chosen=k),
        lambda choices, sid, k, alpha: DifferentiableEdge(
            choices, sid, with_arch_param=alpha, num_chosen=k
        ),
    )


def one_path() -> Weighing:
    return Weighing(
        "one path",
        lambda choices, sid, k: _one_shot_op(choices, sid, k),
        lambda choices, sid, k, alpha: OneShotEdge(choices, sid, num_chosen=k),
    )


def _one_shot_op(choices: Mapping[str, nn.Module], space_id: str, k: int) -> MutableModule:
    if k != 1:
        raise ValueError(f"In {space_id}: a one-path op keeps one choice, num_chosen is {k}")
    return OneShotOP(choices, space_id)


def is_edge(mutable: MutableModule) -> bool:
    """Whether ``mutable`` takes one input per choice (an edge) rather than one input."""
    return isinstance(mutable, (DifferentiableEdge, OneShotEdge))


def _convert(mutable: MutableModule, weighing: Weighing) -> MutableModule:
    if mutable.is_exported:
        raise ValueError(f"In {mutable.space_id}: an exported mutable cannot be searched again")
    choices = {name: reweigh(module, weighing) for name, module in mutable.choices.items()}
    if is_edge(mutable):
        new = weighing.edge(choices, mutable.space_id, mutable.num_chosen, mutable.with_arch_param)
    else:
        new = weighing.op(choices, mutable.space_id, mutable.num_chosen)
    new.train(mutable.training)
    return new


def reweigh(module: nn.Module, weighing: Weighing) -> nn.Module:
    """``module`` with every mutable replaced, in place, by ``weighing``'s kind.

    Returns ``module`` (or its replacement, when ``module`` itself is a
    mutable). Choices nested in a choice are converted too.
    """
    if isinstance(module, MutableModule):
        return _convert(module, weighing)
    for name, child in list(module._modules.items()):
        if child is not None:
            replaced = reweigh(child, weighing)
            if replaced is not child:
                module._modules[name] = replaced
    return module
