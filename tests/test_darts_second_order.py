"""Second-order DARTS checked against an exact hypergradient.

The reference is computed here by autograd through the virtual step itself:
w' = w - xi * (momentum * buf + grad_w L_train(w, alpha) + wd * w) is built
with ``create_graph=True``, so ``d L_val(w'(alpha), alpha) / d alpha`` is the
exact gradient that DARTS eq. 7 approximates with a finite difference
(Liu et al., ICLR 2019). The virtual weights enter the network through
``torch.func.functional_call``, not through the code under test.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from gradnas.algorithms.darts import Darts
from gradnas.mutables import DifferentiableOP
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import DartsSearchNetwork

pytestmark = pytest.mark.usefixtures("float64")  # conftest: every test here in float64


# -- a smooth tiny supernet: Linear and Softplus only, so every second derivative exists --

WIDTH, CLASSES = 5, 3


def smooth_choices() -> dict[str, nn.Module]:
    return {
        "linear": nn.Linear(WIDTH, WIDTH),
        "softplus_linear": nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.Softplus()),
        "skip": nn.Identity(),
    }


class SmoothSupernet(nn.Module):
    """x (n, 4) -> Linear -> Softplus -> op a -> op b -> op b (same decision) -> Linear -> logits (n, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(4, WIDTH), nn.Softplus())
        self.op_a = DifferentiableOP(smooth_choices(), "a")
        self.op_b1 = DifferentiableOP(smooth_choices(), "b")
        self.op_b2 = DifferentiableOP(smooth_choices(), "b")
        self.head = nn.Linear(WIDTH, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op_b2(self.op_b1(self.op_a(self.stem(x)))))


def smooth_batches(seed: int = 1, n: int = 8):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 4, generator=gen), torch.randint(0, CLASSES, (n,), generator=gen))
        for _ in range(2)
    ]


def smooth_setup(
    lr=0.5,
    momentum=0.9,
    weight_decay=3e-3,
    hessian="finite_difference",
    with_buffer=True,
    grad_clip=5.0,
    param_groups=None,
    seed=0,
):
    """A second-order DARTS search on the smooth supernet. The alphas are
    larger than DARTS' 1e-3 init so the ops differ, and xi is large so the
    Hessian term is a sizeable part of the gradient. ``param_groups(net)``
    replaces the single weight group."""
    torch.manual_seed(seed)
    net = SmoothSupernet()
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    with torch.no_grad():
        for alpha in mutator.arch_parameters():
            alpha.normal_(0.0, 1.0)
    groups = param_groups(net) if param_groups else [{"params": list(net.parameters())}]
    w_opt = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    a_opt = torch.optim.Adam(
        mutator.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3
    )
    darts = Darts(net, mutator, w_opt, a_opt, unrolled=True, hessian=hessian, grad_clip=grad_clip)
    train, val = smooth_batches(seed + 1)
    if with_buffer:
        darts.weight_step(smooth_batches(seed + 2)[0])  # leaves a momentum buffer when momentum > 0
    return net, mutator, darts, train, val


# -- the reference: autograd through the virtual step --------------------------


def virtual_step_settings(optimizer, net):
    """Per weight of ``net``, in ``net.parameters()`` order: (xi, momentum,
    weight decay, a copy of the momentum buffer or None), from the weight's group."""
    by_weight = {}
    for group in optimizer.param_groups:
        for w in group["params"]:
            buf = optimizer.state.get(w, {}).get("momentum_buffer")
            by_weight[w] = (
                group["lr"],
                group.get("momentum", 0.0),
                group.get("weight_decay", 0.0),
                None if buf is None else buf.clone(),
            )
    return [by_weight[w] for w in net.parameters()]


def grads(loss, params, **kwargs):
    out = torch.autograd.grad(loss, params, allow_unused=True, **kwargs)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, out)]


def virtual_weights(net, settings, train, through_alpha=True):
    """{name: w'} with w' = w - xi * (momentum * buf + g + wd * w); w' depends on
    alpha through g when ``through_alpha`` (the exact hypergradient), not otherwise
    (the first-order gradient at w')."""
    names, weights = zip(*net.named_parameters())
    g = grads(F.cross_entropy(net(train[0]), train[1]), list(weights), create_graph=through_alpha)
    out = {}
    for name, w, gi, (xi, momentum, wd, buf) in zip(names, weights, g, settings, strict=True):
        w = w.detach()
        d = (gi if through_alpha else gi.detach()) + wd * w
        if momentum and buf is not None:
            d = d + momentum * buf
        out[name] = w - xi * d
    return out


def reference_gradient(net, mutator, settings, train, val, through_alpha=True):
    alphas = list(mutator.arch_parameters())
    w_virtual = virtual_weights(net, settings, train, through_alpha)
    val_loss = F.cross_entropy(functional_call(net, w_virtual, (val[0],)), val[1])
    return grads(val_loss, alphas)


def exact_mixed_hvp(net, mutator, settings, train, val):
    """xi * grad^2_{alpha, w} L_train(w) . v with v = grad_w' L_val(w'), by double backward."""
    alphas, weights = list(mutator.arch_parameters()), list(net.parameters())
    w_virtual = {
        name: w.detach().requires_grad_()
        for name, w in virtual_weights(net, settings, train, through_alpha=False).items()
    }
    val_loss = F.cross_entropy(functional_call(net, w_virtual, (val[0],)), val[1])
    v = grads(val_loss, list(w_virtual.values()))
    g = grads(F.cross_entropy(net(train[0]), train[1]), weights, create_graph=True)
    dot = sum((gi * xi * vi).sum() for gi, vi, (xi, *_) in zip(g, v, settings, strict=True))
    return grads(dot, alphas)


def architecture_gradient(darts, train, val):
    """The alpha gradient the architecture step computes (and then applies)."""
    darts.architecture_step(train, val)
    return [a.grad.detach().clone() for a in darts.mutator.arch_parameters()]


def relative_error(xs, ys) -> float:
    x, y = torch.cat([t.flatten() for t in xs]), torch.cat([t.flatten() for t in ys])
    return ((x - y).norm() / y.norm()).item()


def reference_and_darts(hessian="finite_difference", **kwargs):
    """The exact hypergradient on a copy, and Darts' gradient, from one state."""
    net, mutator, darts, train, val = smooth_setup(hessian=hessian, **kwargs)
    settings = virtual_step_settings(darts.weight_optimizer, net)
    ref_net, ref_mutator = copy.deepcopy((net, mutator))  # copied together: the bindings follow
    exact = reference_gradient(ref_net, ref_mutator, settings, train, val)
    return (
        exact,
        architecture_gradient(darts, train, val),
        (ref_net, ref_mutator, settings, train, val),
    )


def groups_with_their_own_settings(net):
    """Two weight groups, listed in the reverse of the network's order, each with its own lr, momentum, wd."""
    late = [p for m in (net.head, net.op_b2, net.op_b1) for p in m.parameters()]
    early = [p for m in (net.op_a, net.stem) for p in m.parameters()]
    return [
        {"params": late, "lr": 0.2, "momentum": 0.5, "weight_decay": 0.0},
        {"params": early, "lr": 0.6, "momentum": 0.9, "weight_decay": 1e-2},
    ]


OPTIMIZERS = {
    "momentum_with_buffer": {"momentum": 0.9, "weight_decay": 3e-3, "with_buffer": True},
    "momentum_before_first_step": {"momentum": 0.9, "weight_decay": 3e-3, "with_buffer": False},
    "no_momentum_no_weight_decay": {"momentum": 0.0, "weight_decay": 0.0, "with_buffer": True},
    "per_group_lr_momentum_wd": {"param_groups": groups_with_their_own_settings},
    # DARTS clips only the real weight step; clipping the virtual one would change w'.
    "tiny_grad_clip": {"grad_clip": 1e-3},
}


# -- finite difference ---------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_finite_difference_gradient_is_within_1_percent_of_the_exact_hypergradient(optimizer):
    exact, got, _ = reference_and_darts(**optimizer)
    assert relative_error(got, exact) < 0.01


def test_finite_difference_hessian_term_is_within_5_percent_of_the_exact_mixed_hvp():
    _exact, got, (ref_net, ref_mutator, settings, train, val) = reference_and_darts()
    first_order = reference_gradient(
        ref_net, ref_mutator, settings, train, val, through_alpha=False
    )
    darts_term = [f - g for f, g in zip(first_order, got)]  # got = first order - xi * H v
    exact_term = exact_mixed_hvp(ref_net, ref_mutator, settings, train, val)
    assert relative_error(darts_term, exact_term) < 0.05


def test_first_order_gradient_at_virtual_weights_misses_the_1_percent_bound():
    """Without the Hessian term the comparison fails, so the 1% test can tell."""
    exact, _, (ref_net, ref_mutator, settings, train, val) = reference_and_darts()
    first_order = reference_gradient(
        ref_net, ref_mutator, settings, train, val, through_alpha=False
    )
    assert relative_error(first_order, exact) > 0.01


# -- exact Hessian ---------------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_exact_hessian_matches_the_exact_hypergradient_on_the_smooth_supernet(optimizer):
    exact, got, _ = reference_and_darts(hessian="exact", **optimizer)
    assert relative_error(got, exact) < 1e-10


def test_exact_hessian_matches_the_exact_hypergradient_on_darts_ops():
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=4, layers=3, in_channels=1)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    with torch.no_grad():
        for alpha in mutator.arch_parameters():
            alpha.normal_(0.0, 1.0)
    w_opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(
        mutator.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3
    )
    darts = Darts(net, mutator, w_opt, a_opt, unrolled=True, hessian="exact")
    gen = torch.Generator().manual_seed(1)
    train, val, warmup = [
        (torch.randn(2, 1, 8, 8, generator=gen), torch.randint(0, 10, (2,), generator=gen))
        for _ in range(3)
    ]
    darts.weight_step(warmup)  # a momentum buffer is present
    settings = virtual_step_settings(w_opt, net)
    # BatchNorm in train mode normalises by batch statistics; the copies start from the same state.
    ref_net, ref_mutator = copy.deepcopy((net, mutator))
    exact = reference_gradient(ref_net, ref_mutator, settings, train, val)
    got = architecture_gradient(darts, train, val)
    assert relative_error(got, exact) < 1e-8
    # and the Hessian term matters here, so dropping it would have failed
    first_order = reference_gradient(
        ref_net, ref_mutator, settings, train, val, through_alpha=False
    )
    assert relative_error(first_order, exact) > 1e-6


# -- what the architecture step leaves behind -------------------------------------

HESSIANS = ["finite_difference", "exact"]


@pytest.mark.parametrize("hessian", HESSIANS)
def test_architecture_step_leaves_weights_and_momentum_buffers_bit_identical(hessian):
    net, mutator, darts, train, val = smooth_setup(hessian=hessian, with_buffer=True)
    weights = [w.detach().clone() for w in net.parameters()]
    buffers = [darts.weight_optimizer.state[w]["momentum_buffer"].clone() for w in net.parameters()]
    alphas = [a.detach().clone() for a in mutator.arch_parameters()]
    darts.architecture_step(train, val)
    assert all(torch.equal(w, w0) for w, w0 in zip(net.parameters(), weights, strict=True))
    assert all(
        torch.equal(darts.weight_optimizer.state[w]["momentum_buffer"], b0)
        for w, b0 in zip(net.parameters(), buffers, strict=True)
    )
    # the step ran
    assert not all(torch.equal(a, a0) for a, a0 in zip(mutator.arch_parameters(), alphas))


@pytest.mark.parametrize("hessian", HESSIANS)
def test_architecture_step_updates_batchnorm_statistics_once_with_the_training_batch(hessian):
    """As in DARTS, whose forwards at w' and w+- run on a copy of the network:
    only the training forward at w reaches the running statistics."""
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=4, layers=3, in_channels=1)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    darts = Darts(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9),
        torch.optim.Adam(mutator.arch_parameters(), lr=3e-4),
        unrolled=True,
        hessian=hessian,
    )
    gen = torch.Generator().manual_seed(1)
    train, val = [
        (torch.randn(2, 1, 8, 8, generator=gen), torch.randint(0, 10, (2,), generator=gen))
        for _ in range(2)
    ]
    expected = copy.deepcopy(net).train()
    expected(train[0])
    darts.architecture_step(train, val)
    bns = [
        (m, e) for m, e in zip(net.modules(), expected.modules()) if isinstance(m, nn.BatchNorm2d)
    ]
    assert bns
    for bn, bn_expected in bns:
        assert torch.equal(bn.running_mean, bn_expected.running_mean)
        assert torch.equal(bn.running_var, bn_expected.running_var)
        assert bn.num_batches_tracked == bn_expected.num_batches_tracked == 1


@pytest.mark.parametrize("hessian", HESSIANS)
def test_zero_learning_rate_gives_the_first_order_gradient_without_nan(hessian):
    """xi = 0: w' = w and the Hessian term vanishes (no 0/0 in eps)."""
    net, mutator, darts, train, val = smooth_setup(lr=0.0, hessian=hessian)
    ref_net, ref_mutator = copy.deepcopy((net, mutator))
    expected = grads(F.cross_entropy(ref_net(val[0]), val[1]), list(ref_mutator.arch_parameters()))
    got = architecture_gradient(darts, train, val)
    assert relative_error(got, expected) < 1e-12


# -- bad input --------------------------------------------------------------------


def make_darts(weight_optimizer_kwargs, **darts_kwargs):
    net = SmoothSupernet()
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    return Darts(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), **weight_optimizer_kwargs),
        torch.optim.Adam(mutator.arch_parameters()),
        **darts_kwargs,
    )


@pytest.mark.parametrize(
    "option",
    [{"nesterov": True}, {"dampening": 0.1}, {"maximize": True}],
    ids=["nesterov", "dampening", "maximize"],
)
def test_unrolled_refuses_sgd_options_the_virtual_step_does_not_model(option):
    kwargs = dict(lr=0.1, momentum=0.9, **option)
    with pytest.raises(ValueError, match=next(iter(option))):
        make_darts(kwargs, unrolled=True)
    make_darts(kwargs, unrolled=False)  # first order has no virtual step, so anything goes


def test_unknown_hessian_is_refused_by_name():
    with pytest.raises(ValueError, match="hessian must be one of .*'fd'"):
        make_darts({"lr": 0.1}, unrolled=True, hessian="fd")
