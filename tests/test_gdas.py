"""Tests for gradnas.algorithms.gdas.Gdas (Dong & Yang, CVPR 2019): one op per
edge, the hard-Gumbel estimator's closed form, the temperature schedule and its
state, and the two halves of the bilevel step."""

import functools
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradnas.algorithms.gdas import Gdas
from gradnas.mutables import DifferentiableOP, GumbelOP
from gradnas.mutables.gumbel import gumbel_noise
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import DartsSearchNetwork

TAU_MAX, TAU_MIN = (
    10.0,
    0.1,
)  # GDAS' search scripts (D-X-Y/AutoDL-Projects): --tau_max 10 --tau_min 0.1


def optimizers(net, mutator, weight_lr=0.025, arch_lr=3e-4):
    # GDAS' settings, as DARTS: SGD lr 0.025 momentum 0.9 wd 3e-4; Adam lr 3e-4 betas (0.5, 0.999)
    # wd 1e-3.
    return (
        torch.optim.SGD(net.parameters(), lr=weight_lr, momentum=0.9, weight_decay=3e-4),
        torch.optim.Adam(
            mutator.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999), weight_decay=1e-3
        ),
    )


def gdas_for(net, **kwargs):
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    weight_lr, arch_lr = kwargs.pop("weight_lr", 0.025), kwargs.pop("arch_lr", 3e-4)
    return Gdas(net, mutator, *optimizers(net, mutator, weight_lr, arch_lr), **kwargs)


def gumbel_darts_net(seed=0):
    torch.manual_seed(seed)
    return DartsSearchNetwork(
        C=4, layers=3, in_channels=1, op_mutable=functools.partial(GumbelOP, tau=TAU_MAX, hard=True)
    )


def digits_like_batches(n_batches, seed=1, n=4):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen))
        for _ in range(n_batches)
    ]


def gumbel_ops(net):
    return [m for m in net.modules() if isinstance(m, GumbelOP)]


# -- Gumbel noise ------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gumbel_noise_is_finite_when_the_uniform_draw_is_exactly_0_or_1(monkeypatch, dtype):
    """GDAS redraws noise holding inf/NaN; gradnas clamps u into (0, 1), so there is nothing to redraw."""
    monkeypatch.setattr(
        torch, "rand_like", lambda t, **kw: torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=t.dtype)
    )
    g = gumbel_noise(torch.zeros(4, dtype=dtype))
    assert g.dtype == dtype
    assert torch.isfinite(g).all()
    assert g[0] < g[1]  # u = 0 and u = 1 still map to the two ends of the noise


# -- one op per edge ------------------------------------------------------------


def test_hard_gumbel_darts_supernet_runs_one_op_per_mixed_op_forward():
    net = gumbel_darts_net()
    gdas_for(net)
    ops = gumbel_ops(net)
    calls_per_forward: list[int] = []
    running = {}

    def start(op, args):
        running[op] = 0

    def finish(op, args, out):
        calls_per_forward.append(running.pop(op))

    def count(op):
        def hook(module, args, out):
            running[op] += 1

        return hook

    for op in ops:
        op.register_forward_pre_hook(start)
        op.register_forward_hook(finish)
        for choice in op.choice_modules:
            choice.register_forward_hook(count(op))
    net.train()
    for x, _ in digits_like_batches(2):
        net(x)
    assert len(calls_per_forward) == 2 * len(ops) > 0
    assert calls_per_forward == [1] * len(calls_per_forward)


# -- the estimator's closed form on a toy, at the temperature the schedule sets --


class ToySupernet(nn.Module):
    """One hard-Gumbel mixed op over three different maps of x (n, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.op = GumbelOP(
            {
                "linear": nn.Linear(3, 3),
                "tanh": nn.Sequential(nn.Linear(3, 3), nn.Tanh()),
                "scale": nn.Linear(3, 3, bias=False),
            },
            "toy",
            tau=TAU_MAX,
            hard=True,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


ALPHA = [0.10, 0.04, -0.05]
NOISE = [
    0.00,
    0.08,
    0.02,
]  # alpha + noise = [0.10, 0.12, -0.03]: k = 1, close enough that tau = 0.1 is not saturated
K = 1


def toy_gdas(epoch, num_epochs):
    torch.manual_seed(0)
    net = ToySupernet()
    gdas = gdas_for(net)
    with torch.no_grad():
        gdas.mutator.arch_params["toy"].copy_(torch.tensor(ALPHA))
    net.op.gumbel_noise = lambda alpha: torch.tensor(NOISE)
    gdas.on_epoch_start(epoch, num_epochs)
    return net, gdas


def closed_form(net, x, upstream, tau):
    """soft = softmax((alpha + g) / tau), y = o_k(x) and
    dL/dalpha_j = <dL/dy, o_k(x)> * soft_k * (delta_kj - soft_j) / tau."""
    logits = (torch.tensor(ALPHA) + torch.tensor(NOISE)) / tau
    soft = logits.exp() / logits.exp().sum()
    with torch.no_grad():
        y = net.op.choice_modules[K](x)
    c = (upstream * y).sum()
    grad = torch.stack([c * soft[K] * ((1.0 if j == K else 0.0) - soft[j]) / tau for j in range(3)])
    return y, grad, soft


def toy_data():
    gen = torch.Generator().manual_seed(5)
    return torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)


def test_gdas_output_is_the_sampled_op_only(float64):
    net, gdas = toy_gdas(1, 3)
    x, upstream = toy_data()
    y, _, _ = closed_form(net, x, upstream, gdas.tau)
    torch.testing.assert_close(net(x), y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("epoch,tau", [(0, 10.0), (1, 5.05), (2, 0.1)])  # 10 - 9.9 * epoch / 2
def test_gdas_alpha_gradient_is_the_closed_form_at_the_scheduled_tau(float64, epoch, tau):
    net, gdas = toy_gdas(epoch, 3)
    x, upstream = toy_data()
    (net(x) * upstream).sum().backward()
    _, expected, _ = closed_form(net, x, upstream, tau)
    alpha = gdas.mutator.arch_params["toy"]
    torch.testing.assert_close(alpha.grad, expected, rtol=1e-10, atol=1e-14)
    assert (alpha.grad.abs() > 1e-6).all()


def test_scheduled_tau_max_gives_softer_sample_weights_than_tau_min(float64):
    """With fixed noise the forward's soft weights (checked through the gradient
    above) are near uniform at tau_max and far from it at tau_min."""
    x, upstream = toy_data()
    spread = {}
    for epoch in (0, 4):
        net, gdas = toy_gdas(epoch, 5)
        (net(x) * upstream).sum().backward()
        _, expected, soft = closed_form(net, x, upstream, gdas.tau)
        torch.testing.assert_close(
            gdas.mutator.arch_params["toy"].grad, expected, rtol=1e-10, atol=1e-14
        )
        spread[epoch] = (soft - 1 / 3).abs().max().item()
    assert spread[0] < 0.01 < 0.1 < spread[4]


# -- the temperature schedule -------------------------------------------------------


def test_schedule_is_linear_from_tau_max_at_epoch_0_to_tau_min_at_the_last_epoch():
    gdas = gdas_for(ToySupernet())
    taus = []
    for epoch in range(6):
        gdas.on_epoch_start(epoch, 6)
        taus.append(gdas.tau)
    assert taus[0] == TAU_MAX and taus[-1] == TAU_MIN
    np.testing.assert_allclose(taus, np.linspace(TAU_MAX, TAU_MIN, 6), rtol=1e-12)


def test_schedule_sets_tau_on_every_gumbel_mutable():
    net = gumbel_darts_net()
    gdas = gdas_for(net)
    assert {op.tau for op in gumbel_ops(net)} == {TAU_MAX}  # before the first epoch
    gdas.on_epoch_start(2, 5)
    assert gdas.tau == pytest.approx(TAU_MAX - (TAU_MAX - TAU_MIN) * 2 / 4)
    assert {op.tau for op in gumbel_ops(net)} == {gdas.tau}


def test_single_epoch_search_runs_at_tau_max():
    gdas = gdas_for(ToySupernet())
    gdas.on_epoch_start(0, 1)
    assert gdas.tau == TAU_MAX


@pytest.mark.parametrize("epoch,num_epochs", [(5, 5), (-1, 5), (0, 0), (1.5, 5)])
def test_epoch_outside_the_search_is_refused(epoch, num_epochs):
    gdas = gdas_for(ToySupernet())
    with pytest.raises(ValueError, match="epoch"):
        gdas.on_epoch_start(epoch, num_epochs)


# -- state --------------------------------------------------------------------------


def test_state_dict_round_trip_restores_tau_and_schedule_into_a_fresh_gdas():
    gdas = gdas_for(ToySupernet(), tau_max=4.0, tau_min=0.5)
    gdas.on_epoch_start(3, 8)
    buffer = io.BytesIO()
    torch.save(gdas.state_dict(), buffer)  # the engine's checkpoints load with weights_only=True
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    net = ToySupernet()
    fresh = gdas_for(net)  # default schedule, tau = 10
    fresh.load_state_dict(state)
    assert fresh.tau == gdas.tau == pytest.approx(4.0 - 3.5 * 3 / 7)
    assert net.op.tau == gdas.tau  # re-applied to the mutables
    fresh.on_epoch_start(7, 8)
    assert fresh.tau == 0.5  # the restored schedule, not the constructor's


@pytest.mark.parametrize(
    "state,match",
    [
        ({"tau": 1.0, "tau_max": 10.0}, "missing \\['tau_min'\\]"),
        ({"tau": 1.0, "tau_max": 10.0, "tau_min": 0.1, "epoch": 3}, "unknown \\['epoch'\\]"),
        ({"tau": 1.0, "tau_max": 0.1, "tau_min": 10.0}, "tau_max >= tau_min > 0"),
        ({"tau": -1.0, "tau_max": 10.0, "tau_min": 0.1}, "tau must be a positive number"),
    ],
)
def test_bad_state_is_refused_by_name(state, match):
    gdas = gdas_for(ToySupernet())
    with pytest.raises(ValueError, match=match):
        gdas.load_state_dict(state)
    assert gdas.tau == TAU_MAX  # and nothing was half-applied


# -- construction -----------------------------------------------------------------------


@pytest.mark.parametrize("tau_max,tau_min", [(0.1, 10.0), (1.0, 0.0), (1.0, -1.0)])
def test_schedule_outside_tau_max_ge_tau_min_gt_0_is_refused(tau_max, tau_min):
    with pytest.raises(ValueError, match="tau_max >= tau_min > 0"):
        gdas_for(ToySupernet(), tau_max=tau_max, tau_min=tau_min)


def test_supernet_without_gumbel_mutables_is_refused():
    net = nn.Sequential(DifferentiableOP({"a": nn.Linear(3, 3), "b": nn.Identity()}, "plain"))
    with pytest.raises(ValueError, match="GumbelOP"):
        gdas_for(net)


def test_soft_gumbel_supernet_is_refused_naming_the_mutable():
    net = nn.Sequential(
        GumbelOP({"a": nn.Linear(3, 3), "b": nn.Identity()}, "soft_one", hard=False)
    )
    with pytest.raises(ValueError, match="soft_one"):
        gdas_for(net)


# -- the bilevel step ---------------------------------------------------------------------


def test_step_returns_finite_floats_and_every_alpha_gets_a_gradient():
    net = gumbel_darts_net()
    gdas = gdas_for(net)
    gdas.on_epoch_start(0, 10)
    alphas = dict(gdas.mutator.arch_params.items())
    reached = set()
    batches = digits_like_batches(8)
    for train, val in zip(batches[::2], batches[1::2]):
        stats = gdas.step(train, val)
        assert set(stats) == {"train_loss", "train_acc", "val_loss", "val_acc"}
        assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
        reached |= {
            name for name, a in alphas.items() if a.grad is not None and (a.grad != 0).any()
        }
    assert reached == set(alphas)


def test_architecture_half_leaves_weights_unchanged():
    net = gumbel_darts_net()
    gdas = gdas_for(net, weight_lr=0.0)
    weights = [p.detach().clone() for p in net.parameters()]
    alphas = [a.detach().clone() for a in gdas.mutator.arch_parameters()]
    train, val = digits_like_batches(2)
    gdas.step(train, val)
    assert all(torch.equal(p, w) for p, w in zip(net.parameters(), weights))
    assert any(not torch.equal(a, a0) for a, a0 in zip(gdas.mutator.arch_parameters(), alphas))


def test_weight_half_leaves_alphas_unchanged():
    net = gumbel_darts_net()
    gdas = gdas_for(net, arch_lr=0.0)
    weights = [p.detach().clone() for p in net.parameters()]
    alphas = [a.detach().clone() for a in gdas.mutator.arch_parameters()]
    train, val = digits_like_batches(2)
    gdas.step(train, val)
    assert all(torch.equal(a, a0) for a, a0 in zip(gdas.mutator.arch_parameters(), alphas))
    assert any(not torch.equal(p, w) for p, w in zip(net.parameters(), weights))


def test_alpha_gradient_is_the_validation_loss_gradient_of_the_sampled_cell(float64):
    """The architecture half back-propagates the validation loss only: with the
    noise fixed, its alpha gradient is the one of L_val on the same sample."""
    torch.manual_seed(0)
    net = ToySupernet()
    gdas = gdas_for(net)
    net.op.gumbel_noise = lambda alpha: torch.tensor(NOISE)
    gen = torch.Generator().manual_seed(3)
    train = (torch.randn(4, 3, generator=gen), torch.randint(0, 3, (4,), generator=gen))
    val = (torch.randn(4, 3, generator=gen), torch.randint(0, 3, (4,), generator=gen))
    alpha = gdas.mutator.arch_params["toy"]
    expected = torch.autograd.grad(F.cross_entropy(net(val[0]), val[1]), [alpha])[0]
    gdas.step(train, val)
    torch.testing.assert_close(alpha.grad, expected, rtol=1e-12, atol=1e-15)
