"""Derivation of the final architecture by the DARTS rule."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..mutables import DifferentiableEdge, MutableModule
from .diff_mutator import DiffMutator

Subnet = dict[str, dict[str, list[str]]]


def outermost_mutables(module: nn.Module) -> list[MutableModule]:
    """Mutables inside ``module`` that are not nested in another mutable."""
    if isinstance(module, MutableModule):
        return [module]
    found: list[MutableModule] = []
    for child in module.children():
        found.extend(outermost_mutables(child))
    return found


class DartsMutator(DiffMutator):
    """A :class:`DiffMutator` whose ``search_subnet()`` applies the DARTS rule.

    - An op decision keeps its strongest choice by softmax weight, ignoring
      ``ignore_choices`` (DARTS never picks ``none``).
    - An edge decision keeps the ``num_chosen`` inputs whose chosen op is
      strongest; where the edge has its own alpha (PC-DARTS edge
      normalisation) each op strength is multiplied by softmax(edge alpha)
      first. The kept inputs are listed strongest first, ties in input order,
      as in the genotypes DARTS derives.
    - Ops on edges that were not kept are left out of the result.

    Pass ``ignore_choices=()`` for the rule of NAS-Bench-201 and SNAS, which
    keep every op's argmax, ``none`` included.
    """

    def __init__(self, ignore_choices: Sequence[str] = ("none",)) -> None:
        super().__init__()
        self.ignore_choices = tuple(ignore_choices)

    def _best_op(self, op: MutableModule) -> tuple[str, float]:
        names = list(op.full_choice_names)
        alpha = self.arch_params.get(op.space_id, None)
        if alpha is None:
            if len(names) == 1:
                return names[0], 1.0
            raise ValueError(
                f"In {op.space_id}: cannot rank choices without an architecture parameter"
            )
        probs = torch.softmax(alpha.detach().double(), dim=-1).tolist()
        candidates = [
            (p, -i, name)
            for i, (name, p) in enumerate(zip(names, probs))
            if name not in self.ignore_choices
        ]
        if not candidates:
            raise ValueError(
                f"In {op.space_id}: every choice is in ignore_choices {self.ignore_choices}"
            )
        p, _, name = max(candidates)
        return name, p

    def search_subnet(self) -> Subnet:
        """The chosen names of every decision: ``{space_id: {'chosen': [names]}}``."""
        subnet: Subnet = {}
        under_edges: set[str] = set()
        for space_id, members in self.search_spaces.items():
            edge = members[0]
            if not isinstance(edge, DifferentiableEdge):
                continue
            names = list(edge.full_choice_names)
            inner = [outermost_mutables(edge.choices[name]) for name in names]
            under_edges.update(m.space_id for ops in inner for m in ops)
            strengths, best = [], []
            for ops in inner:
                if ops:  # the edge's choice is ranked by its first op's strongest choice
                    chosen = [self._best_op(op) for op in ops]
                    strengths.append(chosen[0][1])
                    best.append([(op.space_id, name) for op, (name, _) in zip(ops, chosen)])
                else:
                    strengths.append(1.0)
                    best.append([])
            if space_id in self.arch_params:
                edge_probs = torch.softmax(
                    self.arch_params[space_id].detach().double(), dim=-1
                ).tolist()
                strengths = [s * w for s, w in zip(strengths, edge_probs)]
            elif not any(inner) and edge.num_chosen < len(names):
                raise ValueError(
                    f"In {space_id}: cannot rank inputs: the edge has no alpha and no op mutables"
                )
            # Strongest first, ties in input order (a stable sort), as the DARTS
            # genotypes list a node's inputs.
            kept = sorted(range(len(names)), key=lambda i: -strengths[i])[: edge.num_chosen]
            subnet[space_id] = {"chosen": [names[i] for i in kept]}
            for i in kept:
                for op_space_id, op_name in best[i]:
                    subnet[op_space_id] = {"chosen": [op_name]}
        for space_id, members in self.search_spaces.items():
            if (
                space_id not in subnet
                and space_id not in under_edges
                and not isinstance(members[0], DifferentiableEdge)
            ):
                subnet[space_id] = {"chosen": [self._best_op(members[0])[0]]}
        return subnet
