"""Tests for DrNAS: the Dirichlet mixed op, the KL regulariser against its
closed form, and the bilevel step."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradnas.algorithms.darts import Darts
from gradnas.algorithms.drnas import DrNas, dirichlet_kl_to_uniform
from gradnas.mutables import DifferentiableOP
from gradnas.mutables.dirichlet_op import DirichletOP
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import DartsSearchNetwork

NAMES = ("a", "b", "c")


# -- the KL term ---------------------------------------------------------------------

ALPHA = [0.5, -0.3, 1.2, -1.0]  # both branches of elu


def closed_form_kl_and_grad(alpha: list[float]) -> tuple[float, list[float]]:
    """KL(Dir(a) || Dir(1)) with a = elu(alpha) + 1, and its gradient in alpha, by hand:
    KL = lgamma(a0) - sum lgamma(a_i) - lgamma(K) + sum (a_i - 1)(psi(a_i) - psi(a0)),
    dKL/da_i = (a_i - 1) psi'(a_i) - (a0 - K) psi'(a0), da_i/dalpha_i = 1 or exp(alpha_i)."""
    a = [x + 1.0 if x > 0 else math.exp(x) for x in alpha]
    k, a0 = len(a), sum(a)

    def psi(x, order=0):
        return torch.special.polygamma(order, torch.tensor(x, dtype=torch.float64)).item()

    kl = (
        math.lgamma(a0)
        - sum(math.lgamma(x) for x in a)
        - math.lgamma(k)
        + sum((x - 1) * (psi(x) - psi(a0)) for x in a)
    )
    grad = [
        ((x - 1) * psi(x, 1) - (a0 - k) * psi(a0, 1)) * (1.0 if al > 0 else math.exp(al))
        for x, al in zip(a, alpha)
    ]
    return kl, grad


def test_kl_to_the_uniform_dirichlet_matches_its_closed_form(float64):
    kl, _ = closed_form_kl_and_grad(ALPHA)
    assert dirichlet_kl_to_uniform(torch.tensor(ALPHA)).item() == pytest.approx(kl, abs=1e-12)


def test_kl_gradient_matches_its_closed_form(float64):
    _, grad = closed_form_kl_and_grad(ALPHA)
    alpha = torch.tensor(ALPHA, requires_grad=True)
    dirichlet_kl_to_uniform(alpha).backward()
    assert alpha.grad.tolist() == pytest.approx(grad, abs=1e-10)


def test_kl_vanishes_at_the_uniform_prior(float64):
    # elu(0) + 1 = 1: Dir(1) itself.
    assert dirichlet_kl_to_uniform(torch.zeros(5)).item() == pytest.approx(0.0, abs=1e-12)


# -- the Dirichlet op ------------------------------------------------------------------


def dirichlet_op():
    return DirichletOP({name: nn.Linear(4, 3) for name in NAMES}, "op")


def test_sample_is_a_distribution_over_the_ops():
    op = dirichlet_op()
    probs = op.compute_arch_probs(torch.tensor([0.5, -2.0, 3.0]))
    assert probs.shape == (3,) and bool((probs > 0).all())
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_sample_gradient_reaches_alpha():
    alpha = torch.tensor([0.5, -2.0, 3.0], requires_grad=True)
    probs = dirichlet_op().compute_arch_probs(alpha)
    (probs * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert alpha.grad is not None and bool((alpha.grad != 0).all())


def test_forward_weighs_the_ops_by_one_dirichlet_sample(float64):
    torch.manual_seed(0)
    op = dirichlet_op()
    alpha = torch.tensor([0.5, -0.3, 1.2])
    x = torch.randn(2, 4)
    torch.manual_seed(7)
    out = op(x, arch_param=alpha)
    torch.manual_seed(7)
    w = torch.distributions.Dirichlet(F.elu(alpha) + 1).rsample()
    expected = sum(w[i] * op.choices[name](x) for i, name in enumerate(NAMES))
    assert torch.allclose(out, expected, atol=1e-12)


def test_mean_is_the_normalised_concentration():
    # alpha = (1, 0, -log 2) -> concentration elu(alpha) + 1 = (2, 1, 1/2) -> mean (4, 2, 1) / 7.
    mean = DirichletOP.mean_probs(torch.tensor([1.0, 0.0, -math.log(2.0)]))
    assert mean.tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7], abs=1e-6)


def test_mean_orders_the_ops_as_softmax_does():
    # elu(a) + 1 and exp(a) are both increasing in a, so DartsMutator's softmax
    # ranking picks the op of largest Dirichlet mean.
    gen = torch.Generator().manual_seed(0)
    alpha = torch.randn(50, 8, generator=gen) * 3
    assert torch.equal(
        DirichletOP.mean_probs(alpha).argsort(dim=-1), torch.softmax(alpha, -1).argsort(dim=-1)
    )


# -- the step ---------------------------------------------------------------------------


class ToySupernet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.op = dirichlet_op()

    def forward(self, x):
        return self.op(x)


def toy(regularizer: str, kl_weight: float = 0.1):
    torch.manual_seed(0)
    net = ToySupernet()
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    with torch.no_grad():
        mutator.arch_params["op"].copy_(torch.tensor([0.5, -0.3, 1.2]))
    algo = DrNas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.SGD(mutator.arch_parameters(), lr=1.0),
        regularizer=regularizer,
        kl_weight=kl_weight,
    )
    return net, mutator, algo


def batches():
    gen = torch.Generator().manual_seed(0)
    train = (torch.randn(5, 4, generator=gen), torch.randint(0, 3, (5,), generator=gen))
    val = (torch.randn(5, 4, generator=gen), torch.randint(0, 3, (5,), generator=gen))
    return train, val


def test_kl_regulariser_adds_its_closed_form_gradient_to_the_alpha_step(float64):
    _, l2_mutator, l2 = toy("l2")
    _, kl_mutator, kl = toy("kl", kl_weight=0.1)
    torch.manual_seed(3)  # the same Dirichlet samples in both steps
    l2.step(*batches())
    torch.manual_seed(3)
    metrics = kl.step(*batches())
    kl_value, kl_grad = closed_form_kl_and_grad([0.5, -0.3, 1.2])
    extra = l2_mutator.arch_params["op"].detach() - kl_mutator.arch_params["op"].detach()
    assert extra.tolist() == pytest.approx([0.1 * g for g in kl_grad], abs=1e-10)
    assert metrics["kl"] == pytest.approx(kl_value, abs=1e-12)


def test_l2_regulariser_adds_nothing_to_the_first_order_darts_step(float64):
    net, mutator, algo = toy("l2")
    net2, mutator2 = copy.deepcopy((net, mutator))
    darts = Darts(
        net2,
        mutator2,
        torch.optim.SGD(net2.parameters(), lr=0.1),
        torch.optim.SGD(mutator2.arch_parameters(), lr=1.0),
    )
    torch.manual_seed(3)
    algo.step(*batches())
    torch.manual_seed(3)
    darts.step(*batches())
    assert torch.allclose(mutator.arch_params["op"], mutator2.arch_params["op"], atol=1e-12)
    assert all(
        torch.allclose(p, q, atol=1e-12) for p, q in zip(net.parameters(), net2.parameters())
    )


def test_one_step_runs_on_a_darts_space_supernet():
    torch.manual_seed(0)
    net = DartsSearchNetwork(
        C=4, layers=3, steps=2, multiplier=2, in_channels=1, num_classes=3, op_mutable=DirichletOP
    )
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    # DrNAS release: SGD lr 0.1 momentum 0.9 wd 3e-4; Adam lr 6e-4 betas (0.5, 0.999) wd 1e-3
    # ('l2').
    algo = DrNas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4),
        torch.optim.Adam(mutator.arch_parameters(), lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3),
    )
    alphas = [a.detach().clone() for a in mutator.arch_parameters()]
    weights = [w.detach().clone() for w in net.parameters()]
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(4, 1, 4, 4, generator=gen), torch.randint(0, 3, (4,), generator=gen))
    metrics = algo.step(batch, batch)
    assert all(math.isfinite(v) for v in metrics.values())
    assert all(not torch.equal(a, b) for a, b in zip(alphas, mutator.arch_parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(weights, net.parameters()))
    net.to_genotype(mutator.search_subnet()).validate(steps=2)


# -- bad input ------------------------------------------------------------------------------


def test_unknown_regularizer_is_rejected():
    with pytest.raises(ValueError, match=r"regularizer must be one of \['l2', 'kl'\], got 'l1'"):
        toy("l1")


@pytest.mark.parametrize("bad", [-1e-3, float("nan"), "0.1"])
def test_kl_weight_must_be_a_non_negative_number(bad):
    with pytest.raises(ValueError, match="kl_weight must be a finite number >= 0"):
        toy("kl", kl_weight=bad)


def test_a_supernet_without_dirichlet_ops_is_rejected():
    net = nn.Sequential(DifferentiableOP({"a": nn.Linear(4, 3), "b": nn.Linear(4, 3)}, "op"))
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    with pytest.raises(ValueError, match="no DirichletOP decision"):
        DrNas(
            net,
            mutator,
            torch.optim.SGD(net.parameters(), lr=0.1),
            torch.optim.SGD(mutator.arch_parameters(), lr=1),
        )


def test_state_dict_is_empty_and_rejects_keys():
    _, _, algo = toy("l2")
    assert algo.state_dict() == {}
    with pytest.raises(ValueError, match="DrNas keeps no state"):
        algo.load_state_dict({"epoch": 3})
