"""The expected cost of a supernet and the cost terms built on it."""

from __future__ import annotations

import math

import pytest
import torch

from gradnas.cost import (
    FBNET_ALPHA,
    FBNET_BETA,
    build_cost_table,
    expected_cost,
    fbnet_loss,
    hinge_cost_term,
    linear_cost_term,
    softmax_probs,
)
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import DartsSearchNetwork


@pytest.fixture(scope="module")
def searched():
    torch.manual_seed(0)
    supernet = DartsSearchNetwork(C=4, layers=3, steps=2, multiplier=2, in_channels=1)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(supernet)
    with torch.no_grad():
        for alpha in mutator.arch_parameters():
            alpha.normal_()
    return supernet, mutator, build_cost_table(supernet, (1, 8, 8))


def test_expected_cost_is_the_probability_weighted_sum(searched):
    _, mutator, table = searched
    probs = softmax_probs(mutator.arch_params)
    by_hand = table.fixed.macs
    for space_id, p in probs.items():
        for pi, cost in zip(p.tolist(), table.decisions[space_id].choices.values()):
            by_hand += pi * cost.macs
    assert expected_cost(table, probs, "macs").item() == pytest.approx(by_hand, rel=1e-6)
    assert expected_cost(table, probs, "macs", include_fixed=False).item() == pytest.approx(
        by_hand - table.fixed.macs, rel=1e-6
    )


def test_expected_cost_gradient_is_its_closed_form(searched):
    """d E / d alpha_j = p_j (c_j - sum_i p_i c_i) for every decision."""
    _, mutator, table = searched
    alphas = {sid: a.detach().double().requires_grad_() for sid, a in mutator.arch_params.items()}
    expected_cost(table, softmax_probs(alphas), "weights").backward()
    for space_id, alpha in alphas.items():
        p = torch.softmax(alpha.detach(), -1)
        c = torch.tensor(
            [cost.weights for cost in table.decisions[space_id].choices.values()],
            dtype=torch.float64,
        )
        closed = p * (c - (p * c).sum())
        torch.testing.assert_close(alpha.grad, closed, rtol=1e-10, atol=1e-10)
    assert any(alpha.grad.abs().max() > 0 for alpha in alphas.values())


def test_the_alphas_of_a_mutator_get_the_gradient(searched):
    _, mutator, table = searched
    mutator.zero_grad()
    linear_cost_term(
        expected_cost(table, softmax_probs(mutator.arch_params)), 1.0, scale=1e6
    ).backward()
    grads = [a.grad for a in mutator.arch_parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_linear_and_hinge_terms():
    cost = torch.tensor(3e6)
    assert linear_cost_term(cost, 0.5, scale=1e6).item() == pytest.approx(1.5)
    assert hinge_cost_term(cost, target=4e6, weight=2.0).item() == 0.0
    assert hinge_cost_term(cost, target=2e6, weight=2.0).item() == pytest.approx(2.0 * 0.5)
    with pytest.raises(ValueError, match="target must be positive"):
        hinge_cost_term(cost, target=0.0, weight=1.0)


def test_fbnet_form_multiplies_the_loss():
    """FBNet's loss * alpha * log(cost)^beta, by hand, and its published constants."""
    assert (FBNET_ALPHA, FBNET_BETA) == (0.2, 0.6)
    loss, cost = torch.tensor(2.0), torch.tensor(20.0, requires_grad=True)
    out = fbnet_loss(loss, cost, scale=1.0)
    assert out.item() == pytest.approx(2.0 * 0.2 * math.log(20.0) ** 0.6)
    out.backward()
    # d/dc [L a (log c)^b] = L a b (log c)^(b-1) / c
    assert cost.grad.item() == pytest.approx(2.0 * 0.2 * 0.6 * math.log(20.0) ** -0.4 / 20.0)
    with pytest.raises(ValueError, match="cost / scale > 1"):
        fbnet_loss(loss, torch.tensor(5e5), scale=1e6)


def test_probabilities_must_fit_the_table(searched):
    _, _, table = searched
    with pytest.raises(ValueError, match="no decision 'nope'"):
        expected_cost(table, {"nope": torch.ones(2)})
    with pytest.raises(ValueError, match="probabilities of shape"):
        expected_cost(table, {"normal_node0_input0": torch.ones(3)})
