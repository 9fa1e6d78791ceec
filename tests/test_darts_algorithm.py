"""Tests for gradnas.algorithms.Darts: parity with a plain DARTS reference, the
separation of the two halves of the bilevel step, and a second-order smoke test."""

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradnas.algorithms import darts as darts_module
from gradnas.algorithms.darts import Darts
from gradnas.genotype import PRIMITIVES
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import DartsSearchNetwork, build_op

STEPS, MULTIPLIER = 4, 4


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The tensors here are tiny: OpenMP threads bring nothing, and on a loaded
    # 2-core machine their spin-waits cost seconds per op.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# DARTS' optimizer settings (Liu et al. 2019, train_search.py defaults):
# weights SGD lr 0.025 momentum 0.9 wd 3e-4, alphas Adam lr 3e-4 betas (0.5, 0.999) wd 1e-3.
def weight_sgd(params, lr=0.025, momentum=0.9, weight_decay=3e-4):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def arch_adam(params, lr=3e-4):
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), weight_decay=1e-3)


def batch(gen, n, channels, size, num_classes=10):
    return (
        torch.randn(n, channels, size, size, generator=gen),
        torch.randint(0, num_classes, (n,), generator=gen),
    )


def max_abs_diff(xs, ys) -> float:
    return max((x.detach() - y.detach()).abs().max().item() for x, y in zip(xs, ys, strict=True))


# -- a plain reference supernet, written the way the DARTS paper's code is laid out --


class RefMixedOp(nn.Module):
    def __init__(self, C, stride):
        super().__init__()
        self._ops = nn.ModuleList(
            build_op(name, C, stride, affine=False, search=True) for name in PRIMITIVES
        )

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


def relu_conv_bn(C_in, C_out):
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(C_in, C_out, 1, bias=False), nn.BatchNorm2d(C_out, affine=False)
    )


class RefFactorizedReduce(nn.Module):
    """ReLU, two 1x1 stride-2 convs (one on the input shifted by a pixel), concat, BN."""

    def __init__(self, C_in, C_out):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=False)

    def forward(self, x):
        x = self.relu(x)  # even sizes only (32, 16, 8)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class RefCell(nn.Module):
    def __init__(self, C_prev_prev, C_prev, C, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (
            RefFactorizedReduce(C_prev_prev, C) if reduction_prev else relu_conv_bn(C_prev_prev, C)
        )
        self.preprocess1 = relu_conv_bn(C_prev, C)
        self._ops = nn.ModuleList()
        for i in range(STEPS):
            for j in range(2 + i):
                self._ops.append(RefMixedOp(C, 2 if reduction and j < 2 else 1))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(STEPS):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-MULTIPLIER:], dim=1)


class RefNetwork(nn.Module):
    def __init__(self, C, layers, in_channels=3, num_classes=10, stem_multiplier=3):
        super().__init__()
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            self.cells.append(RefCell(C_prev_prev, C_prev, C_curr, reduction, reduction_prev))
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, MULTIPLIER * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        k = sum(2 + i for i in range(STEPS))  # 14 edges
        # Plain tensors, not registered: self.parameters() are the weights only.
        self.alphas_normal = torch.zeros(k, len(PRIMITIVES), requires_grad=True)
        self.alphas_reduce = torch.zeros(k, len(PRIMITIVES), requires_grad=True)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights = F.softmax(
                self.alphas_reduce if cell.reduction else self.alphas_normal, dim=-1
            )
            s0, s1 = s1, cell(s0, s1, weights)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))


def copy_into_reference(net, mutator, ref):
    """Weights by parameter order (shapes checked pairwise), alphas by space id."""
    net_params, ref_params = list(net.parameters()), list(ref.parameters())
    assert len(net_params) == len(ref_params)
    with torch.no_grad():
        for p, q in zip(net_params, ref_params):
            assert p.shape == q.shape
            q.copy_(p)
        for cell_type, rows in (("normal", ref.alphas_normal), ("reduce", ref.alphas_reduce)):
            offset = 0
            for i in range(STEPS):
                for j in range(2 + i):
                    rows[offset + j].copy_(mutator.arch_params[f"{cell_type}_node{i}_input{j}"])
                offset += 2 + i


def gradnas_alphas_as_rows(mutator):
    """The mutator's alphas stacked like alphas_normal / alphas_reduce (14, 8)."""
    return [
        torch.stack(
            [
                mutator.arch_params[f"{t}_node{i}_input{j}"].detach()
                for i in range(STEPS)
                for j in range(2 + i)
            ]
        )
        for t in ("normal", "reduce")
    ]


def batchnorms(module):
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def test_first_order_matches_plain_darts_reference_at_full_size(float64):
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=16, layers=8, num_classes=10, in_channels=3)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    ref = RefNetwork(C=16, layers=8)
    copy_into_reference(net, mutator, ref)
    assert len(batchnorms(net)) == len(batchnorms(ref))
    init_weights = [p.detach().clone() for p in net.parameters()]
    init_alphas = gradnas_alphas_as_rows(mutator)

    darts = Darts(net, mutator, weight_sgd(net.parameters()), arch_adam(mutator.arch_parameters()))
    ref_alphas = [ref.alphas_normal, ref.alphas_reduce]
    ref_w_opt, ref_a_opt = weight_sgd(ref.parameters()), arch_adam(ref_alphas)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        train, val = batch(gen, 2, 3, 32), batch(gen, 2, 3, 32)
        darts.step(train, val)
        # reference: architecture step on the validation batch, then weight step on the training
        # batch
        ref.train()
        ref_a_opt.zero_grad()
        F.cross_entropy(ref(val[0]), val[1]).backward()
        ref_a_opt.step()
        ref_w_opt.zero_grad()
        F.cross_entropy(ref(train[0]), train[1]).backward()
        nn.utils.clip_grad_norm_(ref.parameters(), 5.0)
        ref_w_opt.step()

    alphas = gradnas_alphas_as_rows(mutator)
    assert max_abs_diff(alphas, ref_alphas) < 1e-10
    assert max_abs_diff(net.parameters(), ref.parameters()) < 1e-10
    for bn, ref_bn in zip(batchnorms(net), batchnorms(ref)):
        assert torch.allclose(bn.running_mean, ref_bn.running_mean, rtol=0, atol=1e-10)
        assert torch.allclose(bn.running_var, ref_bn.running_var, rtol=0, atol=1e-10)
        assert bn.num_batches_tracked == ref_bn.num_batches_tracked == 6  # 3 val + 3 train forwards
    # and both sides really moved, so the comparison could have failed
    assert min((a - a0).abs().max().item() for a, a0 in zip(alphas, init_alphas)) > 1e-4
    assert max_abs_diff(net.parameters(), init_weights) > 1e-3


# -- the two halves of the step touch their own parameter set only ------------


def small_setup(seed=0, weight_opt=weight_sgd, arch_opt=arch_adam, unrolled=False, grad_clip=5.0):
    torch.manual_seed(seed)
    net = DartsSearchNetwork(C=4, layers=3, in_channels=1)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    darts = Darts(
        net,
        mutator,
        weight_opt(net.parameters()),
        arch_opt(mutator.arch_parameters()),
        unrolled=unrolled,
        grad_clip=grad_clip,
    )
    gen = torch.Generator().manual_seed(seed + 1)
    return net, mutator, darts, batch(gen, 4, 1, 8), batch(gen, 4, 1, 8)


def loss_grads(net, mutator, data, wrt):
    net.train()
    loss = F.cross_entropy(net(data[0]), data[1])
    params = list(net.parameters()) if wrt == "weights" else list(mutator.arch_parameters())
    return torch.autograd.grad(loss, params)


def test_alpha_grad_is_the_validation_loss_grad_only(float64):
    net, mutator, darts, train, val = small_setup(grad_clip=None)
    before_net, before_mutator = copy.deepcopy((net, mutator))  # copied together: bindings follow
    darts.step(train, val)
    expected = loss_grads(before_net, before_mutator, val, "alphas")
    grads = [a.grad for a in mutator.arch_parameters()]
    assert max_abs_diff(grads, expected) < 1e-12
    # a training-loss gradient leaking into the alphas would be visible
    train_part = loss_grads(before_net, before_mutator, train, "alphas")
    assert max_abs_diff(train_part, [torch.zeros_like(g) for g in train_part]) > 1e-6


def test_weight_grad_is_the_training_loss_grad_at_the_updated_alphas(float64):
    net, mutator, darts, train, val = small_setup(grad_clip=None)
    before_net, before_mutator = copy.deepcopy((net, mutator))
    darts.step(train, val)
    stale = loss_grads(before_net, before_mutator, train, "weights")  # at the pre-step alphas
    with torch.no_grad():
        for a, a_new in zip(before_mutator.arch_parameters(), mutator.arch_parameters()):
            a.copy_(a_new)
    expected = loss_grads(before_net, before_mutator, train, "weights")
    grads = [w.grad for w in net.parameters()]
    assert max_abs_diff(grads, expected) < 1e-12
    # the updated alphas matter, so using the old ones would have failed
    assert max_abs_diff(stale, expected) > 1e-8


def test_architecture_half_leaves_weights_unchanged(float64):
    net, mutator, darts, train, val = small_setup(
        weight_opt=lambda p: torch.optim.SGD(p, lr=0.0, momentum=0.0, weight_decay=0.0)
    )
    weights = [p.detach().clone() for p in net.parameters()]
    alphas = [a.detach().clone() for a in mutator.arch_parameters()]
    darts.step(train, val)
    assert all(torch.equal(p, w) for p, w in zip(net.parameters(), weights))
    assert max_abs_diff(mutator.arch_parameters(), alphas) > 1e-5


def test_weight_half_leaves_alphas_unchanged(float64):
    net, mutator, darts, train, val = small_setup(arch_opt=lambda p: arch_adam(p, lr=0.0))
    weights = [p.detach().clone() for p in net.parameters()]
    alphas = [a.detach().clone() for a in mutator.arch_parameters()]
    darts.step(train, val)
    assert all(torch.equal(a, a0) for a, a0 in zip(mutator.arch_parameters(), alphas))
    assert max_abs_diff(net.parameters(), weights) > 1e-4


def test_weight_optimizer_holding_an_alpha_is_refused():
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=4, layers=3, in_channels=1)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    alphas = list(mutator.arch_parameters())
    with pytest.raises(ValueError, match="weight optimizer holds architecture parameters"):
        Darts(net, mutator, weight_sgd(list(net.parameters()) + alphas[:1]), arch_adam(alphas))


# -- second order: smoke test only (its exact gradient is tested elsewhere) ---


def test_second_order_step_restores_weights_and_moves_alphas(float64):
    net, mutator, darts, train, val = small_setup(unrolled=True)
    # keep only the architecture half's effect
    darts.weight_optimizer.step = lambda *args, **kwargs: None
    weights = [p.detach().clone() for p in net.parameters()]
    alphas = [a.detach().clone() for a in mutator.arch_parameters()]
    stats = darts.step(train, val)
    assert all(torch.equal(p, w) for p, w in zip(net.parameters(), weights))
    assert max_abs_diff(mutator.arch_parameters(), alphas) > 1e-5
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())


def test_virtual_step_equals_the_per_weight_sgd_formula_bit_for_bit(float64):
    """The direction d = momentum * buf + grad + wd * w of each weight, computed on
    lists (torch._foreach_*), equals the per-tensor formula exactly, in two
    groups with their own lr, momentum and wd, where some weights have a
    momentum buffer and others none yet."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(2, 2))
    params = list(net.parameters())
    groups = [
        {"params": params[:3], "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-2},
        {"params": params[3:], "lr": 0.7, "momentum": 0.5, "weight_decay": 0.0},
    ]
    w_opt = torch.optim.SGD(groups, lr=0.1)
    darts = Darts(
        net, DartsMutator(), w_opt, arch_adam([nn.Parameter(torch.zeros(2))]), unrolled=True
    )
    for p in params[1::2]:  # every other weight has a buffer: a first step that reached only those
        w_opt.state[p]["momentum_buffer"] = torch.randn_like(p)
    grads = [torch.randn_like(p) for p in params]
    xis, directions = darts._virtual_step(grads)
    grad_of = dict(zip(map(id, params), grads))
    expected_xis, expected = [], []
    for group in groups:
        for p in group["params"]:
            d = grad_of[id(p)] + group["weight_decay"] * p.detach()
            buf = w_opt.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                d = d + group["momentum"] * buf
            expected_xis.append(group["lr"])
            expected.append(d)
    assert xis == expected_xis
    assert all(torch.equal(d, e) for d, e in zip(directions, expected, strict=True))
    # the buffer counted
    assert not torch.equal(directions[1], grads[1] + 1e-2 * params[1].detach())


def test_finite_difference_passes_with_frozen_weights_give_the_same_hessian_term(monkeypatch):
    """The finite-difference passes take the weights out of autograd (a fast path);
    their alpha gradients equal those of passes with the weights in it, bit for bit,
    and the weights require gradients again afterwards."""
    _net, _mutator, darts, train, _val = small_setup(unrolled=True)
    gen = torch.Generator().manual_seed(5)
    xi_v = [0.025 * torch.randn(w.shape, generator=gen) for w in darts.weights]
    w0 = [w.detach().clone() for w in darts.weights]
    fast = darts._finite_difference_mixed_hvp(*train, xi_v, w0)
    assert all(w.requires_grad for w in darts.weights)
    monkeypatch.setattr(darts_module, "weights_frozen", lambda weights: contextlib.nullcontext())
    plain = darts._finite_difference_mixed_hvp(*train, xi_v, w0)
    assert all(torch.equal(f, p) for f, p in zip(fast, plain, strict=True))
    assert any(f.abs().max() > 0 for f in fast)
