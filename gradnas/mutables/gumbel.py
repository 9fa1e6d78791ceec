"""Gumbel-softmax sampling shared by :class:`GumbelOP` and :class:`GumbelEdge`.

Hard sampling uses the GDAS estimator (Dong & Yang, "Searching for a Robust
Neural Architecture in Four GPU Hours", CVPR 2019): with
``soft = softmax((alpha + g) / tau)`` and the sampled index ``k``, the
straight-through weights are ``h = one_hot(k) - soft.detach() + soft`` and the
output is ``y = h_k * o_k(x)``. Only the sampled op runs, ``h_k == 1`` in the
forward pass, and every alpha still gets a gradient through ``soft_k``:
``dy/dalpha_j = o_k(x) * soft_k * (delta_kj - soft_j) / tau``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gumbel_noise(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise shaped like ``like``: ``-log(-log(u))``.

    ``u`` is clamped into the open interval (0, 1), so the noise is finite by
    construction; this replaces GDAS's loop that redraws a sample holding
    inf or NaN, which would cost a device-to-host sync on every forward.
    """
    u = torch.rand_like(like)
    tiny = torch.finfo(u.dtype).tiny
    u = u.clamp(min=tiny, max=1.0 - torch.finfo(u.dtype).eps)
    return -torch.log(-torch.log(u))


def gumbel_weights(
    alpha: torch.Tensor, noise: torch.Tensor, tau: float, hard: bool, k: int = 1
) -> tuple[torch.Tensor, list[int] | None]:
    """Weights of one Gumbel-softmax sample and, when ``hard``, the indices to compute.

    ``hard`` with ``k > 1`` draws ``k`` distinct choices (Gumbel-top-k, a
    sample without replacement from softmax(alpha)); their straight-through
    weights are a k-hot vector in the forward pass. The indices are read to
    the host once here, so callers skip the other choices without testing
    each weight.
    """
    logits = (alpha + noise) / tau
    soft = F.softmax(logits, dim=-1)
    if not hard:
        return soft, None
    indices = torch.topk(logits.detach(), k).indices
    k_hot = torch.zeros_like(soft).scatter_(-1, indices, 1.0)
    weights = k_hot - soft.detach() + soft
    return weights, sorted(indices.tolist())


def check_temperature(tau: float, space_id: str) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
        raise ValueError(f"In {space_id}: temperature must be a positive number, got {tau!r}")
    return float(tau)
