"""The DARTS supernet's fast paths compute what the plain DARTS computation does.

The supernet shares parameter-free work between edges, skips ``none``, folds
each op's weight into its last BatchNorm, runs dilated convolutions on pixel
sub-grids, uses channels-last tensors on CPU and, when asked, recomputes each
cell in the backward. The reference here is an independent, plain functional
evaluation of the same parameters, written the way the DARTS code computes a
search cell (quark0/darts ``cnn/model_search.py``): every op on every edge
with its own ReLU and BatchNorm, ``none`` as ``x * 0``, and
``sum(w * op(x))``. Both see the same parameter tensors, so gradients are
compared leaf by leaf. Timings are the benchmark's business
(``benchmarks/search_step.py``), never asserted here.
"""

import functools
import pathlib
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradnas.algorithms.darts import Darts
from gradnas.mutables import DifferentiableOP, GumbelOP
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts.ops import (
    DilConv,
    PoolBN,
    Zero,
    from_subgrids,
    scaled_batch_norm,
    shared,
    sharing_input_work,
    to_subgrids,
)
from gradnas.spaces.darts.search_network import DartsSearchNetwork

STEPS = 4  # intermediate nodes per DARTS cell
MOMENTUM, EPS = 0.1, 1e-5  # nn.BatchNorm2d defaults, which DARTS keeps
SIZE = 16  # input resolution: 16, 8, 4 and 4 in the four cells below
TOL = 1e-10  # float64; the fast paths differ from the plain one by rounding only


# -- the plain computation -----------------------------------------------------


class Plain:
    """DARTS' search network evaluated op by op on the parameters of a gradnas
    supernet, with its own copy of every BatchNorm's running statistics."""

    def __init__(
        self,
        net: DartsSearchNetwork,
        mutator: DartsMutator,
        gdas_noise: dict | None = None,
        tau: float = 10.0,
        training: bool = True,
    ) -> None:
        self.net, self.mutator = net, mutator
        self.gdas_noise, self.tau, self.training = gdas_noise, tau, training
        self.stats = {
            bn: (bn.running_mean.clone(), bn.running_var.clone())
            for bn in net.modules()
            if isinstance(bn, nn.BatchNorm2d)
        }

    def bn(self, module: nn.BatchNorm2d, x):
        mean, var = self.stats[module]
        return F.batch_norm(x, mean, var, module.weight, module.bias, self.training, MOMENTUM, EPS)

    def relu_conv_bn(self, seq, x, stride=1, padding=0, dilation=1, groups=1):
        return self.bn(
            seq[-1], F.conv2d(F.relu(x), seq[1].weight, None, stride, padding, dilation, groups)
        )

    def factorized_reduce(self, fr, x):
        x = F.relu(x)  # even sizes only
        return self.bn(
            fr.bn,
            torch.cat(
                [
                    F.conv2d(x, fr.conv_1.weight, stride=2),
                    F.conv2d(x[:, :, 1:, 1:], fr.conv_2.weight, stride=2),
                ],
                dim=1,
            ),
        )

    def dil_block(self, block, x, stride, padding, dilation):
        C = x.shape[1]
        h = F.conv2d(F.relu(x), block[1].weight, None, stride, padding, dilation, C)
        return self.bn(block[3], F.conv2d(h, block[2].weight))

    def op(self, name, module, x, stride):
        if name == "none":
            return x.mul(0.0) if stride == 1 else x[:, :, ::stride, ::stride].mul(0.0)
        if name == "max_pool_3x3":
            return self.bn(module[1], F.max_pool2d(x, 3, stride, 1))
        if name == "avg_pool_3x3":
            return self.bn(module[1], F.avg_pool2d(x, 3, stride, 1, count_include_pad=False))
        if name == "skip_connect":
            return x if stride == 1 else self.factorized_reduce(module, x)
        if name.startswith("sep_conv"):
            k = int(name[-1])
            h = self.dil_block(module[0], x, stride, k // 2, 1)
            return self.dil_block(module[1], h, 1, k // 2, 1)
        k = int(name[-1])  # dil_conv_3x3 / dil_conv_5x5: dilation 2, padding 2 * (k // 2)
        return self.dil_block(module, x, stride, 2 * (k // 2), 2)

    def mixed(self, mixed, x, stride):
        alpha = self.mutator.arch_params[mixed.space_id]
        names, ops = list(mixed.choices.keys()), list(mixed.choices.values())
        if self.gdas_noise is None:
            weights = F.softmax(alpha, dim=-1)
            return sum(w * self.op(n, op, x, stride) for w, n, op in zip(weights, names, ops))
        # GDAS (Dong & Yang 2019): straight-through one-hot h of softmax((alpha + g) / tau), y = h_k
        # * o_k(x)
        soft = F.softmax((alpha + self.gdas_noise[mixed.space_id]) / self.tau, dim=-1)
        k = int(soft.argmax())
        h = F.one_hot(torch.tensor(k), len(names)).to(soft.dtype) - soft.detach() + soft
        return h[k] * self.op(names[k], ops[k], x, stride)

    def __call__(self, x):
        net = self.net
        s0 = s1 = self.bn(net.stem[1], F.conv2d(x, net.stem[0].weight, padding=1))
        for cell in net.cells:
            pre0 = cell.preprocess0
            states = [
                self.factorized_reduce(pre0, s0)
                if hasattr(pre0, "conv_1")
                else self.relu_conv_bn(pre0, s0),
                self.relu_conv_bn(cell.preprocess1, s1),
            ]
            for i in range(STEPS):
                edge = cell.nodes[i]
                states.append(
                    sum(
                        self.mixed(
                            edge.choices[f"input{j}"], h, 2 if cell.reduction and j < 2 else 1
                        )
                        for j, h in enumerate(states)
                    )
                )
            s0, s1 = s1, torch.cat(states[-4:], dim=1)
        return net.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


def supernet(seed=0, **kwargs):
    torch.manual_seed(seed)
    net = DartsSearchNetwork(C=4, layers=4, num_classes=5, in_channels=3, **kwargs)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    with torch.no_grad():  # alphas far from uniform, so that a wrong weighting shows
        for alpha in mutator.arch_parameters():
            alpha.normal_()
    return net, mutator


def data(seed=1, n=4, size=SIZE):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=gen), torch.randint(0, 5, (n,), generator=gen)


def loss_and_grads(forward, net, mutator, x, y):
    out = forward(x)
    params = list(net.parameters()) + list(mutator.arch_parameters())
    # GDAS leaves ops unused
    grads = torch.autograd.grad(F.cross_entropy(out, y), params, allow_unused=True)
    return out, [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def max_diff(xs, ys):
    return max((a - b).abs().max().item() for a, b in zip(xs, ys, strict=True))


def fixed_gdas_noise(net, mutator, seed=3):
    gen = torch.Generator().manual_seed(seed)
    noise = {
        sid: -torch.log(-torch.log(torch.rand(alpha.shape, generator=gen)))
        for sid, alpha in mutator.arch_params.items()
    }
    for op in net.modules():
        if isinstance(op, GumbelOP):
            op.gumbel_noise = functools.partial(lambda alpha, n: n, n=noise[op.space_id])
    return noise


# -- outputs and gradients equal the plain computation ---------------------------

MODES = {
    "default": {},
    "memory_efficient": {"memory_efficient": True},
    "nchw": {"channels_last": False},
}


@pytest.mark.parametrize("mode", MODES)
def test_outputs_and_every_gradient_equal_the_plain_computation(float64, mode):
    net, mutator = supernet(**MODES[mode])
    x, y = data()
    out, grads = loss_and_grads(net, net, mutator, x, y)
    ref_out, ref_grads = loss_and_grads(Plain(net, mutator), net, mutator, x, y)
    assert max_diff([out], [ref_out]) < TOL
    assert max_diff(grads, ref_grads) < TOL
    # the gradients are not all trivial
    assert max_diff(grads, [torch.zeros_like(g) for g in grads]) > 1e-3


@pytest.mark.parametrize("mode", ["default", "memory_efficient"])
def test_gdas_hard_sample_under_fixed_noise_equals_the_plain_estimator(float64, mode):
    net, mutator = supernet(
        op_mutable=functools.partial(GumbelOP, tau=10.0, hard=True), **MODES[mode]
    )
    noise = fixed_gdas_noise(net, mutator)
    x, y = data()
    out, grads = loss_and_grads(net, net, mutator, x, y)
    ref_out, ref_grads = loss_and_grads(
        Plain(net, mutator, gdas_noise=noise, tau=10.0), net, mutator, x, y
    )
    assert max_diff([out], [ref_out]) < TOL
    assert max_diff(grads, ref_grads) < TOL


def test_memory_efficient_gdas_recomputes_the_same_random_sample(float64):
    # Fresh Gumbel noise per forward: the recomputation in the backward must draw the same.
    default, mutator = supernet(op_mutable=functools.partial(GumbelOP, tau=1.0, hard=True))
    lean, lean_mutator = supernet(
        op_mutable=functools.partial(GumbelOP, tau=1.0, hard=True), memory_efficient=True
    )
    x, y = data()
    torch.manual_seed(5)
    out, grads = loss_and_grads(default, default, mutator, x, y)
    torch.manual_seed(5)
    lean_out, lean_grads = loss_and_grads(lean, lean, lean_mutator, x, y)
    assert max_diff([out], [lean_out]) < TOL
    assert max_diff(grads, lean_grads) < TOL


@pytest.mark.parametrize("hessian", ["exact", "finite_difference"])
def test_memory_efficient_second_order_darts_steps_equal_the_default_ones(float64, hessian):
    # 'exact' back-propagates twice through each checkpointed cell (double backward).
    def run(memory_efficient):
        torch.manual_seed(0)
        net = DartsSearchNetwork(
            C=4, layers=3, num_classes=5, in_channels=3, memory_efficient=memory_efficient
        )
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
        darts.step(data(seed=30, size=8), data(seed=40, size=8))
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        return (
            list(mutator.arch_parameters()) + list(net.parameters()) + [m.running_var for m in bns],
            [int(m.num_batches_tracked) for m in bns],
        )

    default, default_counts = run(False)
    lean, lean_counts = run(True)
    assert max_diff(default, lean) < TOL
    assert lean_counts == default_counts


@pytest.mark.parametrize("mode", ["default", "memory_efficient"])
def test_batchnorm_running_statistics_equal_the_plain_ones_after_training_steps(float64, mode):
    net, mutator = supernet(**MODES[mode])
    plain = Plain(net, mutator)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for step in range(3):
        x, y = data(seed=10 + step)
        _out, grads = loss_and_grads(net, net, mutator, x, y)
        with torch.no_grad():
            plain(x)  # the same weights as the forward above
        for p, g in zip(net.parameters(), grads):
            p.grad = g
        opt.step()
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert max_diff([m.running_mean for m in bns], [plain.stats[m][0] for m in bns]) < TOL
    assert max_diff([m.running_var for m in bns], [plain.stats[m][1] for m in bns]) < TOL
    # one update per forward, none per recomputation
    assert all(m.num_batches_tracked == 3 for m in bns)


def test_eval_mode_uses_the_running_statistics_like_the_plain_computation(float64):
    net, mutator = supernet()
    for step in range(2):
        net(data(seed=20 + step)[0])
    net.eval()
    x, _ = data()
    with torch.no_grad():
        out = net(x)
        # normalises by copies of the running statistics
        ref = Plain(net, mutator, training=False)(x)
    assert max_diff([out], [ref]) < TOL
    # batch statistics would differ
    assert max_diff([out], [Plain(net, mutator, training=True)(x)]) > 1e-3


# -- the savings are there -------------------------------------------------------


def count_calls(modules):
    calls = [0]

    def hook(*_):
        calls[0] += 1

    for m in modules:
        m.register_forward_hook(hook)
    return calls


def test_none_is_never_run_in_a_darts_forward():
    net, _ = supernet()
    calls = count_calls([m for m in net.modules() if isinstance(m, Zero)])
    net(data()[0])
    assert calls[0] == 0


def test_each_pool_runs_once_per_state_it_reads():
    net, _ = supernet()
    pools = [m for m in net.modules() if isinstance(m, nn.MaxPool2d)]
    calls = count_calls(pools)
    net(data()[0])
    # a cell's edges read 5 states (2 inputs, 3 nodes); a reduction cell pools its 2 inputs
    # with stride 2 and its 3 nodes with stride 1, which are different pools of the same state
    assert len(pools) == 4 * 14
    assert calls[0] == 4 * 5


def test_every_mixed_op_gets_a_dense_channels_last_gradient():
    # CPU BatchNorm backward is several times slower on the strided gradient slices torch.cat hands
    # back
    net, _ = supernet()
    layouts = []

    def record(module, args, out):
        out.register_hook(
            lambda g: layouts.append(g.is_contiguous(memory_format=torch.channels_last))
        )

    mixed = [m for m in net.modules() if isinstance(m, DifferentiableOP)]
    for m in mixed:
        m.register_forward_hook(record)
    x, y = data()
    F.cross_entropy(net(x), y).backward()
    assert len(layouts) == len(mixed) == 4 * 14
    assert all(layouts)


def test_gdas_runs_one_op_per_edge():
    net, _mutator = supernet(op_mutable=functools.partial(GumbelOP, tau=10.0, hard=True))
    mixed = [m for m in net.modules() if isinstance(m, GumbelOP)]
    calls = count_calls([op for m in mixed for op in m.choices.values()])
    net(data()[0])
    assert calls[0] == len(mixed) == 4 * 14


# -- the pieces --------------------------------------------------------------------


def test_scaled_batch_norm_equals_scale_times_batch_norm_in_channels_last(float64):
    # A channels-last input with a channels-last upstream gradient: the layout in
    # which torch 2.13's CPU BatchNorm backward mishandles a stride-0 weight.
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    scale = torch.tensor(0.7, requires_grad=True)
    up = torch.randn(3, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    fast, plain = nn.BatchNorm2d(4, affine=False), nn.BatchNorm2d(4, affine=False)
    got = torch.autograd.grad(scaled_batch_norm(fast, x, scale), [x, scale], up)
    expected = torch.autograd.grad(scale * plain(x), [x, scale], up)
    assert max_diff(got, expected) < 1e-12
    assert (
        max_diff([fast.running_mean, fast.running_var], [plain.running_mean, plain.running_var])
        < 1e-15
    )
    assert fast.num_batches_tracked == plain.num_batches_tracked == 1


def test_subgrids_round_trip_and_order():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    sub = to_subgrids(x, 2)  # (2*2*2, 3, 2, 3)
    assert sub.shape == (8, 3, 2, 3)
    # sub-grid (r=1, s=0) of sample 1
    assert torch.equal(sub[(1 * 2 + 0) * 2 + 1], x[1, :, 1::2, 0::2])
    assert torch.equal(from_subgrids(sub, 2), x)


@pytest.mark.parametrize(
    "size, stride, kernel", [(8, 1, 3), (8, 1, 5), (8, 2, 3), (8, 2, 5), (7, 1, 5), (7, 2, 3)]
)
def test_dilated_conv_equals_the_dilated_convolution(float64, size, stride, kernel):
    # odd sizes take the plain dilated convolution (stride 1) or the even sub-grid (stride 2)
    torch.manual_seed(0)
    op = DilConv(3, 3, kernel, stride, 2 * (kernel // 2), 2, affine=False)
    x = torch.randn(2, 3, size, size, requires_grad=True)
    _relu, dw, pw, _bn = op
    plain = F.batch_norm(
        pw(F.conv2d(F.relu(x), dw.weight, None, stride, 2 * (kernel // 2), 2, 3)),
        None,
        None,
        training=True,
    )
    up = torch.randn(plain.shape)
    got = op(x)
    assert got.shape == plain.shape
    assert (
        max_diff(
            torch.autograd.grad(got, [x, dw.weight, pw.weight], up),
            torch.autograd.grad(plain, [x, dw.weight, pw.weight], up),
        )
        < TOL
    )
    assert max_diff([got], [plain]) < TOL


def test_shared_work_is_computed_once_per_input_inside_a_block_only():
    x, y = torch.randn(2), torch.randn(2)
    calls = []

    def work(t):
        calls.append(t)
        return t * 2

    with sharing_input_work():
        assert shared("double", x, work) is shared("double", x, work)
        shared("double", y, work)
        shared("half", x, lambda t: t / 2)  # another computation of the same input
    shared("double", x, work)  # outside a block: computed every time
    assert len(calls) == 3


def test_equal_slices_share_work_and_other_slices_or_versions_do_not():
    # PC-DARTS slices the same channels of a state on every edge: equal views are the same input
    x = torch.randn(2, 4, 3, 3)
    calls = []

    def work(t):
        calls.append(t)
        return t.relu()

    with sharing_input_work():
        first = shared("relu", x[:, :2], work)
        assert shared("relu", x[:, :2], work) is first
        shared("relu", x[:, 2:], work)
        x.add_(1.0)  # a new version of the same memory is a new input
        assert torch.equal(shared("relu", x[:, :2], work), x[:, :2].relu())
    assert len(calls) == 3


def test_pools_with_different_settings_do_not_share_work():
    x = torch.randn(2, 3, 6, 6)
    pools = [
        nn.MaxPool2d(3, stride=1, padding=1),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True),
    ]
    ops = [PoolBN(pool, 3) for pool in pools]
    with sharing_input_work():
        outs = [op(x) for op in ops]
    for _op, pool, out in zip(ops, pools, outs):
        assert torch.allclose(out, F.batch_norm(pool(x), None, None, training=True), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"memory_efficient": 1}, "memory_efficient must be a bool"),
        ({"channels_last": "yes"}, "channels_last must be a bool or None"),
    ],
)
def test_bad_mode_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DartsSearchNetwork(C=4, layers=3, **kwargs)


# -- the benchmark runs ------------------------------------------------------------

BENCHMARK = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "search_step.py"
TABLE_ROWS = [
    "reference DARTS 1st order (plain supernet)",
    "DARTS 1st order",
    "DARTS 2nd order",
    "GDAS",
    "PC-DARTS",
    "SNAS",
    "DrNAS",
]


def table_rows(text: str) -> list[tuple[str, str]]:
    rows = [
        line.split("|") for line in text.splitlines() if line.startswith("| ") and "---" not in line
    ]
    return [(cells[1].strip(), cells[2].strip()) for cells in rows[1:]]


def test_quick_benchmark_prints_a_row_per_algorithm():
    # A subprocess, so the benchmark's global torch settings (threads, dtype) and
    # other tests' never meet.
    proc = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--in-process"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert table_rows(proc.stdout) == [(TABLE_ROWS[0], "plain")] + [
        (label, "default") for label in TABLE_ROWS[1:]
    ]
    assert "max |gradnas - reference (default, float64)|" in proc.stdout


def test_quick_benchmark_runs_each_configuration_in_its_own_process_in_both_modes():
    proc = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--algorithms", "darts1", "--memory-efficient"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert table_rows(proc.stdout) == [
        (TABLE_ROWS[0], "plain"),
        (TABLE_ROWS[1], "default"),
        (TABLE_ROWS[1], "memory-efficient"),
    ]
    assert "max |gradnas - reference (memory-efficient, float64)|" in proc.stdout
    assert "WARNING" not in proc.stdout  # the workers' peak RSS is their own


def test_quick_benchmark_without_the_reference_prints_the_second_order_ratio():
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--quick",
            "--in-process",
            "--algorithms",
            "darts1,darts2",
            "--no-reference",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert table_rows(proc.stdout) == [(TABLE_ROWS[1], "default"), (TABLE_ROWS[2], "default")]
    assert "DARTS 2nd order / gradnas DARTS 1st order (default), batch 2: " in proc.stdout
