"""The strongest architecture whose derived network fits a cost budget, found exactly.

The DARTS rule scores each kept op by its softmax weight (with an edge alpha,
times the edge's softmax weight) and keeps, on each node, the ``num_chosen``
inputs whose best op is strongest. Maximising the SUM of the kept ops'
scores gives exactly that architecture when there is no budget, since the
sum separates into one best op per edge and the top inputs per node. Under a
budget the same sum is maximised subject to

    fixed + sum of the kept choices' costs <= budget,

a multiple-choice knapsack: each top-level decision (a DARTS node) picks
one of its options (which inputs, and which op on each), and costs and scores
add up across decisions.

It is solved exactly by dynamic programming over Pareto frontiers. For each
decision the list of its options is reduced to those no other option
dominates (none is both at most as costly and at least as strong); the
decisions are then combined one at a time, keeping after each step only the
non-dominated (cost, score) pairs of the partial architectures whose cost
still fits. An optimal architecture's partial choices can always be swapped
for a non-dominated one without losing score or exceeding the budget, so
nothing optimal is pruned, and costs being non-negative, a partial
architecture over the budget never becomes a fitting one. The frontier is at
most as long as the number of distinct partial costs, a few thousand for the
DARTS cells, instead of the 1.08e18 architectures of the DARTS space.

The options of one decision come from the same rule: choosing ``k`` of its
choices is a small frontier DP over "how many chosen so far"; a choice that
holds nested decisions (a DARTS input and its mixed op) offers every
combination of the nested decisions' options, costed and scored together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import GradnasError
from .table import CostTable

# One way to decide part of the network: its cost, its score, and what it picks,
# as (space_id, chosen names) pairs.
Picks = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Option:
    cost: float
    score: float
    picks: Picks


@dataclass(frozen=True)
class BudgetedSubnet:
    """The derived architecture: ``subnet`` in ``search_subnet()``'s form, its
    derived network's ``cost`` (fixed part included) and its ``score``."""

    subnet: dict[str, dict[str, list[str]]]
    cost: float
    score: float


class BudgetError(GradnasError, ValueError):
    """No architecture of the space fits the budget."""


def pareto(options: Sequence[Option]) -> list[Option]:
    """The options no other dominates, cheapest first (strictly stronger as they
    get costlier); of equal ones the first in ``options`` is kept."""
    ranked = sorted(enumerate(options), key=lambda io: (io[1].cost, -io[1].score, io[0]))
    front: list[Option] = []
    for _, option in ranked:
        if not front or option.score > front[-1].score:
            front.append(option)
    return front


def combine(first: Sequence[Option], second: Sequence[Option], limit: float) -> list[Option]:
    """Every pairing of an option of ``first`` with one of ``second`` that costs
    at most ``limit``, reduced to its frontier."""
    return pareto(
        [
            Option(a.cost + b.cost, a.score + b.score, a.picks + b.picks)
            for a in first
            for b in second
            if a.cost + b.cost <= limit
        ]
    )


def derive_within_budget(
    table: CostTable,
    scores: Mapping[str, torch.Tensor | Sequence[float]],
    budget: float,
    metric: str = "macs",
    ignore_choices: Sequence[str] = ("none",),
) -> BudgetedSubnet:
    """The architecture with the highest total score whose derived network costs
    at most ``budget`` in ``metric``, found exactly (see the module docstring).

    ``scores[space_id]`` has one value per choice in the table's order; for
    the DARTS rule pass ``mutator.arch_probs()`` (softmax of every alpha).
    Choices named in ``ignore_choices`` are never kept (DARTS never keeps
    ``none``; pass ``()`` for the argmax rule of NAS-Bench-201 and SNAS).
    A decision without scores must keep all its choices, or its choices hold
    the decisions that rank them (a DARTS edge is ranked by its ops).
    Raises :class:`BudgetError` naming the cheapest cost when nothing fits.
    """
    ignored = frozenset(ignore_choices)
    score_lists: dict[str, list[float]] = {}
    for space_id, values in scores.items():
        if space_id not in table.decisions:
            continue  # e.g. an alpha of a decision this table does not cost
        listed = values.tolist() if isinstance(values, torch.Tensor) else list(values)
        expected = len(table.decisions[space_id].choices)
        if len(listed) != expected:
            raise ValueError(f"In {space_id}: {len(listed)} scores for {expected} choices")
        score_lists[space_id] = [float(v) for v in listed]
    fixed = table.fixed.get(metric)
    limit = budget - fixed
    memo: dict[str, list[Option]] = {}

    def choice_options(space_id: str, index: int, name: str) -> list[Option]:
        decision = table.decisions[space_id]
        own = decision.choices[name].get(metric)
        nested = decision.nested.get(name, ())
        if nested:
            factor = score_lists[space_id][index] if space_id in score_lists else 1.0
            combos: list[Option] = [Option(own, 0.0, ())]
            for inner in nested:
                combos = combine(combos, decision_options(inner), limit)
            return pareto([Option(o.cost, factor * o.score, o.picks) for o in combos])
        if space_id in score_lists:
            return [Option(own, score_lists[space_id][index], ())]
        if decision.num_chosen < len(decision.choices):
            raise ValueError(
                f"In {space_id}: no scores rank this decision's choices and none of its "
                f"choices holds decisions that would"
            )
        return [Option(own, 0.0, ())]

    def decision_options(space_id: str) -> list[Option]:
        if space_id in memo:
            return memo[space_id]
        decision = table.decisions[space_id]
        names = list(decision.choices)
        k = decision.num_chosen
        # by_count[j]: the frontier of choosing j of the choices seen so far;
        # the picks of one choice are (its name,) first, then its nested picks.
        by_count: list[list[Option]] = [[Option(0.0, 0.0, ())]] + [[] for _ in range(k)]
        for i, name in enumerate(names):
            if name in ignored:
                continue
            mine = [
                Option(o.cost, o.score, ((space_id, (name,)), *o.picks))
                for o in choice_options(space_id, i, name)
            ]
            for j in range(k, 0, -1):
                if by_count[j - 1]:
                    by_count[j] = pareto(by_count[j] + combine(by_count[j - 1], mine, limit))
        memo[space_id] = [_merge_names(o, space_id) for o in by_count[k]]
        return memo[space_id]

    def cheapest(space_id: str) -> float:
        """The least cost of a decision, budget ignored (for the error message)."""
        decision = table.decisions[space_id]
        costs = []
        for name in decision.choices:
            if name in ignored:
                continue
            inner = sum(cheapest(sid) for sid in decision.nested.get(name, ()))
            costs.append(decision.choices[name].get(metric) + inner)
        return (
            sum(sorted(costs)[: decision.num_chosen])
            if len(costs) >= decision.num_chosen
            else float("inf")
        )

    front: list[Option] = [Option(0.0, 0.0, ())] if limit >= 0 else []
    for space_id in table.top_level:
        if not front:
            break
        front = combine(front, decision_options(space_id), limit)
    if not front:
        least = fixed + sum(cheapest(sid) for sid in table.top_level)

        def shown(value: float) -> str:
            return f"{value:.3f} ms" if metric == "latency" else f"{value:,.0f}"

        raise BudgetError(
            f"no architecture fits the {metric} budget of {shown(budget)}: the cheapest costs "
            f"{shown(least)} (of which the fixed part {shown(fixed)})"
        )
    best = max(front, key=lambda o: o.score)  # the frontier is cheapest first: ties go cheap
    subnet = {
        sid: {"chosen": _strongest_first(sid, list(names), table, score_lists, best.picks)}
        for sid, names in best.picks
    }
    return BudgetedSubnet(subnet=subnet, cost=fixed + best.cost, score=best.score)


def _merge_names(option: Option, space_id: str) -> Option:
    """One pick for ``space_id`` listing every chosen name, in choice order."""
    names: list[str] = []
    rest: list[tuple[str, tuple[str, ...]]] = []
    for sid, picked in option.picks:
        if sid == space_id:
            names.extend(picked)
        else:
            rest.append((sid, picked))
    return Option(option.cost, option.score, ((space_id, tuple(names)), *rest))


def _strongest_first(
    space_id: str,
    names: list[str],
    table: CostTable,
    score_lists: Mapping[str, list[float]],
    picks: Picks,
) -> list[str]:
    """Chosen names strongest first, ties in choice order, as DARTS' genotypes
    list a node's inputs; a choice holding decisions is as strong as they are."""
    decision = table.decisions[space_id]
    order = list(decision.choices)
    chosen_of = dict(picks)

    def strength(name: str) -> float:
        i = order.index(name)
        nested = decision.nested.get(name, ())
        if nested:
            factor = score_lists[space_id][i] if space_id in score_lists else 1.0
            inner = 0.0
            for sid in nested:
                inner += sum(
                    score_lists[sid][list(table.decisions[sid].choices).index(n)]
                    for n in chosen_of.get(sid, ())
                    if sid in score_lists
                )
            return factor * inner
        return score_lists[space_id][i] if space_id in score_lists else 0.0

    return sorted(names, key=lambda n: (-strength(n), order.index(n)))
