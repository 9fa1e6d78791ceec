"""The expected cost of a supernet and the cost terms of an architecture loss.

Under an architecture distribution with probabilities ``p[d][i]`` for choice
``i`` of decision ``d``, the expected cost of the derived network is

    E[cost] = fixed + sum_d sum_i p[d][i] * cost[d][i]

(the decisions are independent; a choice's cost is summed over every mutable
sharing the decision, see :mod:`.table`). It is linear in the probabilities,
so with ``p = softmax(alpha)`` its gradient is, in closed form,

    dE/dalpha[d][j] = p[d][j] * (cost[d][j] - sum_i p[d][i] * cost[d][i]).

Any method's probabilities work: softmax (DARTS, PC-DARTS), Gumbel-softmax
samples (GDAS, SNAS), Dirichlet means or samples (DrNAS).

In a DARTS cell every edge's op decision counts, although the derived cell
keeps only ``num_chosen`` inputs per node: there the sum is the cost the
architecture distribution puts on all of the supernet's edges, not the
derived network's; it is the derived network's expected cost where every
decision is kept (NAS-Bench-201, width and kernel choices).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from .table import CostTable


def softmax_probs(arch_params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``softmax(alpha)`` of every decision, differentiable (unlike
    ``DiffMutator.arch_probs``, which is detached for logging)."""
    return {space_id: torch.softmax(alpha, dim=-1) for space_id, alpha in arch_params.items()}


def expected_cost(
    table: CostTable,
    probs: Mapping[str, torch.Tensor],
    metric: str = "macs",
    include_fixed: bool = True,
) -> torch.Tensor:
    """``E[cost]`` of the derived network, a scalar tensor differentiable in ``probs``.

    ``probs[space_id]`` holds one probability per choice of the decision, in
    the table's choice order (the mutables' built order, as the alphas).
    Decisions without probabilities (no alpha) are left out: their cost does
    not depend on the architecture parameters. ``include_fixed`` adds the
    fixed part, which shifts the value but not the gradient.
    """
    terms = []
    like: torch.Tensor | None = None
    for space_id, p in probs.items():
        decision = table.decisions.get(space_id)
        if decision is None:
            raise ValueError(f"the cost table has no decision {space_id!r}")
        costs = [cost.get(metric) for cost in decision.choices.values()]
        if p.shape != (len(costs),):
            raise ValueError(
                f"In {space_id}: probabilities of shape {tuple(p.shape)} for {len(costs)} choices"
            )
        terms.append(p @ torch.tensor(costs, dtype=p.dtype, device=p.device))
        like = p
    fixed = table.fixed.get(metric) if include_fixed else 0.0
    if like is None:
        return torch.tensor(fixed)
    return torch.stack(terms).sum() + fixed


def linear_cost_term(cost: torch.Tensor, weight: float, scale: float = 1.0) -> torch.Tensor:
    """``weight * cost / scale``: a penalty proportional to the expected cost,
    the form of SNAS' resource constraint (Xie et al., "SNAS", ICLR 2019,
    Sec. 2.4); ``scale`` (e.g. 1e6 for MACs) keeps ``weight`` near 1."""
    return weight * cost / scale


def hinge_cost_term(cost: torch.Tensor, target: float, weight: float) -> torch.Tensor:
    """``weight * max(0, cost / target - 1)``: nothing while the expected cost
    is within ``target``, then a penalty growing with the relative excess."""
    if target <= 0:
        raise ValueError(f"the cost target must be positive, got {target}")
    return weight * torch.clamp(cost / target - 1.0, min=0.0)


# FBNet's values (Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via
# Differentiable Neural Architecture Search", CVPR 2019: the loss of Eq. 2 with
# alpha = 0.2, beta = 0.6 in its ImageNet search, latency in ms).
FBNET_ALPHA = 0.2
FBNET_BETA = 0.6


def fbnet_loss(
    loss: torch.Tensor,
    cost: torch.Tensor,
    alpha: float = FBNET_ALPHA,
    beta: float = FBNET_BETA,
    scale: float = 1.0,
) -> torch.Tensor:
    """FBNet's multiplicative form: ``loss * alpha * (log(cost / scale)) ** beta``.

    FBNet (Wu et al., CVPR 2019, Eq. 2) multiplies the cross-entropy by
    ``alpha * log(LAT)^beta`` instead of adding a penalty, so the trade-off
    does not depend on the loss' magnitude. The log needs ``cost / scale > 1``
    (FBNet's latency is in ms, tens of them); pick ``scale`` as the unit,
    e.g. 1e6 for MACs in millions.
    """
    ratio = cost / scale
    if bool((ratio <= 1.0).any()):
        raise ValueError(
            f"FBNet's log form needs cost / scale > 1, got {float(ratio.min()):.4g}; "
            f"use a smaller scale (the cost's unit)"
        )
    if not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a positive number, got {beta}")
    return loss * alpha * torch.log(ratio) ** beta
