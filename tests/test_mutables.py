"""Tests for gradnas.mutables: what each mutable computes, how it fails, and
the six defects of the mmrazor v0.2.0 reference (see DESIGN.md) not coming back.

Expected values are computed here by hand (explicit exp / sum, ``x @ W.T + b``),
never by calling the code under test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradnas.mutables import DifferentiableEdge, DifferentiableOP, GumbelEdge, GumbelOP, OneShotOP


class Scale(nn.Module):
    """Multiplies its input by a constant."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.c


class Counter(Scale):
    """A Scale that counts how often it ran."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__(c)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().forward(x)


def manual_softmax(v: torch.Tensor) -> torch.Tensor:
    e = torch.exp(v - v.max())
    return e / e.sum()


def counters(*scales: float) -> dict[str, Counter]:
    return {name: Counter(c) for name, c in zip("abcdefgh", scales)}


def calls(module) -> list[int]:
    """Calls of every counter among the module's choices, in full-choice order
    (use on modules whose choices were not exported)."""
    return [m.calls for m in module.choices.values()]


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- DifferentiableOP


def test_differentiable_op_is_softmax_weighted_sum_of_choices(x):
    lin = nn.Linear(3, 3)
    op = DifferentiableOP({"a": Scale(1.0), "b": Scale(-2.0), "c": lin}, "op")
    alpha = torch.tensor([0.3, -1.2, 0.8])
    op.bind_arch_param(alpha)
    w = manual_softmax(alpha)
    expected = w[0] * x + w[1] * (-2.0 * x) + w[2] * (x @ lin.weight.T + lin.bias)
    torch.testing.assert_close(op(x), expected)


def test_differentiable_op_explicit_arch_param_overrides_bound_one(x):
    op = DifferentiableOP({"a": Scale(1.0), "b": Scale(5.0)}, "op")
    op.bind_arch_param(torch.tensor([3.0, -3.0]))
    passed = torch.tensor([-1.0, 2.0])
    w = manual_softmax(passed)
    torch.testing.assert_close(op(x, arch_param=passed), w[0] * x + w[1] * 5.0 * x)


def test_differentiable_op_without_arch_param_sums_choices(x):
    op = DifferentiableOP(counters(1.0, 2.0, 4.0), "op", with_arch_param=False)
    torch.testing.assert_close(op(x), 7.0 * x)


@pytest.mark.parametrize("cls", [DifferentiableOP, GumbelOP, DifferentiableEdge, GumbelEdge])
def test_build_arch_param_is_small_random_vector_of_num_choices(cls):
    torch.manual_seed(0)
    mutable = cls({f"c{i}": nn.Identity() for i in range(400)}, "sid", with_arch_param=True)
    alpha = mutable.build_arch_param()
    assert isinstance(alpha, nn.Parameter)
    assert alpha.shape == (400,)
    assert alpha.abs().max() < 1e-2
    assert (alpha != 0).any()
    # randn * 1e-3: the sample std of 400 draws is within a few percent of 1e-3
    assert 0.8e-3 < alpha.std().item() < 1.2e-3


@pytest.mark.parametrize("cls", [DifferentiableOP, GumbelOP, DifferentiableEdge, GumbelEdge])
def test_build_arch_param_is_none_without_arch_param(cls):
    mutable = cls({"a": nn.Identity(), "b": nn.Identity()}, "sid", with_arch_param=False)
    assert mutable.build_arch_param() is None


def test_choices_may_be_given_as_module_dict(x):
    op = DifferentiableOP(
        nn.ModuleDict({"a": Scale(2.0), "b": Scale(3.0)}), "op", with_arch_param=False
    )
    assert op.choice_names == ["a", "b"]
    torch.testing.assert_close(op(x), 5.0 * x)


# ---------------------------------------------------------------- defect 4: missing binding


@pytest.mark.parametrize("cls", [DifferentiableOP, GumbelOP])
def test_op_with_arch_param_but_no_binding_raises_naming_space_id(cls, x):
    op = cls({"a": Scale(1.0), "b": Scale(2.0)}, "unbound_op")
    with pytest.raises(RuntimeError, match="unbound_op"):
        op(x)


@pytest.mark.parametrize("cls", [DifferentiableEdge, GumbelEdge])
def test_edge_with_arch_param_but_no_binding_raises_naming_space_id(cls, x):
    edge = cls({"a": Scale(1.0), "b": Scale(2.0)}, "unbound_edge", with_arch_param=True)
    with pytest.raises(RuntimeError, match="unbound_edge"):
        edge([x, x])


# ---------------------------------------------------------------- Gumbel: defect 1, temperature


def test_gumbel_edge_with_defaults_runs_forward(x):
    edge = GumbelEdge({"a": Scale(1.0), "b": Scale(2.0)}, "gedge", hard=True)
    edge.bind_arch_param(torch.zeros(2))
    y = edge([x, x + 1.0])
    # hard with one chosen input: exactly one input's output
    assert torch.equal(y, x * 1.0) or torch.equal(y, (x + 1.0) * 2.0)


def _soft_gumbel_expected(alpha, g, tau, outputs):
    w = manual_softmax((alpha + g) / tau)
    return sum(w[i] * o for i, o in enumerate(outputs))


@pytest.mark.parametrize("kind", ["op", "edge"])
def test_set_temperature_changes_next_soft_gumbel_forward(kind, x):
    scales = (1.0, 2.0, -3.0)
    alpha = torch.tensor([0.2, -0.1, 0.4])
    g = torch.tensor([0.5, 1.0, -0.7])
    if kind == "op":
        mutable = GumbelOP({n: Scale(c) for n, c in zip("abc", scales)}, "g", hard=False)
        inputs = [x, x, x]

        def run():
            return mutable(x)
    else:
        mutable = GumbelEdge({n: Scale(c) for n, c in zip("abc", scales)}, "g", hard=False)
        inputs = [x, x + 1.0, x - 2.0]

        def run():
            return mutable(inputs)

    mutable.bind_arch_param(alpha)
    mutable.gumbel_noise = lambda a: g
    outputs = [c * inp for c, inp in zip(scales, inputs)]

    at_1 = run()
    torch.testing.assert_close(at_1, _soft_gumbel_expected(alpha, g, 1.0, outputs))
    mutable.set_temperature(0.1)
    at_01 = run()
    torch.testing.assert_close(at_01, _soft_gumbel_expected(alpha, g, 0.1, outputs))
    assert not torch.allclose(at_1, at_01)


@pytest.mark.parametrize("cls", [GumbelOP, GumbelEdge])
@pytest.mark.parametrize("tau", [0.0, -1.0])
def test_non_positive_temperature_raises_naming_space_id(cls, tau):
    mutable = cls({"a": Scale(1.0), "b": Scale(2.0)}, "temp_sid")
    with pytest.raises(ValueError, match="temp_sid"):
        mutable.set_temperature(tau)
    with pytest.raises(ValueError, match="temp_sid"):
        cls({"a": Scale(1.0), "b": Scale(2.0)}, "temp_sid", tau=tau)


# ---------------------------------------------------------------- GDAS estimator (defect 3)

GDAS_SCALES = (1.0, 2.0, -3.0)
GDAS_ALPHA = [0.1, 0.5, -0.2]
# alpha + g = [0.4, 0.1, 1.3] -> k = 2;  alpha + g = [1.1, 0.6, 0.0] -> k = 0
GDAS_CASES = [(torch.tensor([0.3, -0.4, 1.5]), 2), (torch.tensor([1.0, 0.1, 0.2]), 0)]


def _gdas_setup(g, tau=0.7):
    op = GumbelOP(counters(*GDAS_SCALES), "gdas", tau=tau, hard=True)
    alpha = torch.tensor(GDAS_ALPHA, requires_grad=True)
    op.bind_arch_param(alpha)
    op.gumbel_noise = lambda a: g
    return op, alpha


@pytest.mark.parametrize("g,k", GDAS_CASES)
def test_gdas_output_is_exactly_the_sampled_choice(g, k, x):
    op, _ = _gdas_setup(g)
    assert torch.equal(op(x), x * GDAS_SCALES[k])


@pytest.mark.parametrize("g,k", GDAS_CASES)
def test_gdas_runs_only_the_sampled_choice(g, k, x):
    op, _ = _gdas_setup(g)
    op(x)
    assert calls(op) == [1 if i == k else 0 for i in range(3)]


@pytest.mark.parametrize("g,k", GDAS_CASES)
def test_gdas_alpha_gradient_matches_closed_form(g, k, x):
    tau = 0.7
    op, alpha = _gdas_setup(g, tau)
    c = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
    (op(x) * c).sum().backward()

    # y = h_k * o_k(x), h_k = 1 - soft_k.detach() + soft_k, so
    # dL/dalpha_j = sum(c * o_k(x)) * soft_k * (delta_kj - soft_j) / tau
    a = torch.tensor(GDAS_ALPHA)
    soft = manual_softmax((a + g) / tau)
    upstream = (c * x * GDAS_SCALES[k]).sum()
    expected = torch.stack(
        [upstream * soft[k] * ((1.0 if j == k else 0.0) - soft[j]) / tau for j in range(3)]
    )
    torch.testing.assert_close(alpha.grad, expected)
    assert (alpha.grad != 0).all()


# ---------------------------------------------------------------- defect 2: skip from indices


def test_soft_differentiable_op_calls_every_choice_once(x):
    op = DifferentiableOP(counters(1.0, 2.0, 3.0), "op")
    op.bind_arch_param(torch.tensor([5.0, -5.0, 0.0]))
    op(x)
    assert calls(op) == [1, 1, 1]


def test_soft_gumbel_op_calls_every_choice_once(x):
    op = GumbelOP(counters(1.0, 2.0, 3.0), "op", hard=False)
    op.bind_arch_param(torch.zeros(3))
    op(x)
    assert calls(op) == [1, 1, 1]


def test_hard_gumbel_edge_runs_only_the_sampled_input(x):
    edge = GumbelEdge(counters(1.0, 2.0, 3.0), "edge", hard=True)
    edge.bind_arch_param(torch.tensor([0.0, 0.0, 0.0]))
    edge.gumbel_noise = lambda a: torch.tensor([0.0, 2.0, 1.0])  # argmax = 1
    y = edge([x, x + 1.0, x + 2.0])
    assert calls(edge) == [0, 1, 0]
    assert torch.equal(y, (x + 1.0) * 2.0)


def test_hard_gumbel_op_with_random_noise_runs_one_choice_per_forward(x):
    torch.manual_seed(3)
    op = GumbelOP(counters(1.0, 2.0, 3.0, 4.0), "op", hard=True)
    op.bind_arch_param(torch.zeros(4))
    for step in range(1, 21):
        op(x)
        assert sum(calls(op)) == step


# ---------------------------------------------------------------- GumbelEdge, num_chosen = 2


def _top2_edge(x):
    edge = GumbelEdge(counters(1.0, 10.0, 100.0, 1000.0), "top2", hard=True, num_chosen=2)
    edge.bind_arch_param(torch.tensor([0.5, 0.0, 0.2, -0.3]))
    # alpha + g = [0.5, 0.9, 0.1, 1.2] -> top-2 = inputs 3 and 1
    edge.gumbel_noise = lambda a: torch.tensor([0.0, 0.9, -0.1, 1.5])
    inputs = [x, x + 1.0, x + 2.0, x + 3.0]
    return edge, inputs


def test_hard_gumbel_edge_num_chosen_2_runs_the_top2_of_alpha_plus_noise(x):
    edge, inputs = _top2_edge(x)
    edge(inputs)
    assert calls(edge) == [0, 1, 0, 1]


def test_hard_gumbel_edge_num_chosen_2_outputs_sum_of_the_two_chosen(x):
    edge, inputs = _top2_edge(x)
    torch.testing.assert_close(
        edge(inputs), inputs[1] * 10.0 + inputs[3] * 1000.0, rtol=0, atol=1e-4
    )


def test_hard_gumbel_edge_num_chosen_2_picks_two_distinct_with_random_noise(x):
    torch.manual_seed(5)
    edge = GumbelEdge(counters(1.0, 1.0, 1.0, 1.0), "top2", hard=True, num_chosen=2)
    edge.bind_arch_param(torch.zeros(4))
    for _ in range(20):
        before = calls(edge)
        edge([x, x, x, x])
        ran = [after - b for after, b in zip(calls(edge), before)]
        assert sorted(ran) == [0, 0, 1, 1]


# ---------------------------------------------------------------- defect 5: choice_mask


def _three_choice_op():
    return DifferentiableOP({"a": Scale(1.0), "b": Scale(2.0), "c": Scale(3.0)}, "mask_op")


def test_choice_mask_is_a_bool_buffer_in_state_dict():
    op = _three_choice_op()
    assert op.choice_mask.dtype == torch.bool
    assert any(b is op.choice_mask for b in op.buffers())
    assert "choice_mask" in op.state_dict()


def test_choice_mask_moves_with_to_device():
    op = _three_choice_op().to("meta")
    assert op.choice_mask.device.type == "meta"


def test_choice_mask_is_created_on_cpu_even_when_cuda_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    op = _three_choice_op()
    assert op.choice_mask.device.type == "cpu"


def test_export_updates_choice_mask_and_state_dict():
    op = _three_choice_op()
    op.export(["b"])
    assert op.choice_mask.tolist() == [False, True, False]
    assert op.state_dict()["choice_mask"].tolist() == [False, True, False]


# ---------------------------------------------------------------- defect 6: inputs after export


def _abc_edge(cls=DifferentiableEdge):
    edge = cls({"a": Scale(1.0), "b": Scale(10.0), "c": Scale(100.0)}, "e6", with_arch_param=True)
    edge.bind_arch_param(torch.tensor([0.1, 0.2, 0.3]))
    return edge


def _abc_inputs():
    return [torch.full((2,), 1.0), torch.full((2,), 2.0), torch.full((2,), 3.0)]


@pytest.mark.parametrize("cls", [DifferentiableEdge, GumbelEdge])
def test_exported_edge_applies_remaining_choice_to_its_original_input(cls):
    edge = _abc_edge(cls)
    edge.export(["c"])
    xa, xb, xc = _abc_inputs()
    assert torch.equal(edge([xa, xb, xc]), xc * 100.0)  # 300, not c(x_a) = 100


@pytest.mark.parametrize("cls", [DifferentiableEdge, GumbelEdge])
def test_exported_edge_with_two_kept_sums_each_on_its_own_input(cls):
    edge = _abc_edge(cls)
    edge.export(["a", "c"])
    xa, xb, xc = _abc_inputs()
    assert torch.equal(edge([xa, xb, xc]), xa * 1.0 + xc * 100.0)  # 301


def test_exported_edge_still_needs_one_input_per_original_choice():
    edge = _abc_edge()
    edge.export(["c"])
    xa, _, xc = _abc_inputs()
    with pytest.raises(ValueError, match="e6"):
        edge([xc])
    with pytest.raises(ValueError, match="e6"):
        edge([xa, xc])


# ---------------------------------------------------------------- exported modules


@pytest.mark.parametrize("cls", [DifferentiableOP, GumbelOP])
def test_exported_op_runs_only_chosen_without_binding(cls, x):
    op = cls(counters(1.0, 2.0, 3.0), "exp_op")
    a, b, c = op.choice_modules
    op.export(["b"])
    assert torch.equal(op(x), x * 2.0)
    assert (a.calls, b.calls, c.calls) == (0, 1, 0)


def test_exported_op_ignores_a_previously_bound_alpha(x):
    op = DifferentiableOP(counters(1.0, 2.0, 3.0), "exp_op")
    op.bind_arch_param(torch.tensor([5.0, -1.0, 0.0]))
    op.export(["b", "c"])
    assert torch.equal(op(x), x * 2.0 + x * 3.0)  # unweighted


def test_exported_edge_runs_only_chosen_without_binding(x):
    edge = DifferentiableEdge(counters(1.0, 2.0, 3.0), "exp_edge", with_arch_param=True)
    a, b, c = edge.choice_modules
    edge.export(["a", "c"])
    edge([x, x, x])
    assert (a.calls, b.calls, c.calls) == (1, 0, 1)


def test_export_removes_unchosen_modules():
    op = _three_choice_op()
    op.export(["c", "a"])
    assert set(op.choice_names) == {"a", "c"}
    assert op.num_choices == 2


# ---------------------------------------------------------------- bad construction / use

BAD_CONSTRUCTIONS = {
    "empty choices": lambda: DifferentiableOP({}, "bad_sid"),
    "num_chosen 0": lambda: DifferentiableOP({"a": Scale(1.0)}, "bad_sid", num_chosen=0),
    "num_chosen > n": lambda: DifferentiableEdge(
        {"a": Scale(1.0), "b": Scale(1.0)}, "bad_sid", with_arch_param=False, num_chosen=3
    ),
    "non-module choice": lambda: DifferentiableOP({"a": Scale(1.0), "b": lambda t: t}, "bad_sid"),
}


@pytest.mark.parametrize("build", BAD_CONSTRUCTIONS.values(), ids=BAD_CONSTRUCTIONS.keys())
def test_bad_construction_raises_value_error_naming_space_id(build):
    with pytest.raises(ValueError, match="bad_sid"):
        build()


def test_space_id_with_dot_raises_value_error_naming_it():
    with pytest.raises(ValueError, match=r"cell\.edge"):
        DifferentiableOP({"a": Scale(1.0)}, "cell.edge")


@pytest.mark.parametrize("n_inputs", [2, 4])
def test_edge_with_wrong_number_of_inputs_raises_naming_space_id(n_inputs, x):
    edge = DifferentiableEdge(counters(1.0, 2.0, 3.0), "inputs_sid", with_arch_param=False)
    with pytest.raises(ValueError, match="inputs_sid"):
        edge([x] * n_inputs)


@pytest.mark.parametrize("chosen", [["zzz"], ["a", "zzz"], []])
def test_bad_export_raises_naming_space_id_and_keeps_choices(chosen):
    op = DifferentiableOP(counters(1.0, 2.0), "export_sid")
    with pytest.raises(ValueError, match="export_sid"):
        op.export(chosen)
    assert op.choice_names == ["a", "b"]


def test_alpha_of_wrong_shape_raises_naming_space_id(x):
    op = DifferentiableOP(counters(1.0, 2.0, 3.0), "shape_sid")
    with pytest.raises(ValueError, match="shape_sid"):
        op(x, arch_param=torch.zeros(2))


@pytest.mark.parametrize("kind", ["op", "edge"])
def test_alpha_on_other_device_than_input_raises_naming_space_id(kind, x):
    if kind == "op":
        mutable = DifferentiableOP(counters(1.0, 2.0), "device_sid")
        run = lambda: mutable(x)  # noqa: E731
    else:
        mutable = DifferentiableEdge(counters(1.0, 2.0), "device_sid", with_arch_param=True)
        run = lambda: mutable([x, x])  # noqa: E731
    mutable.bind_arch_param(torch.zeros(2, device="meta"))
    with pytest.raises(ValueError, match="device_sid"):
        run()


# ---------------------------------------------------------------- OneShotOP


def test_one_shot_op_forward_before_set_active_raises_naming_space_id(x):
    op = OneShotOP(counters(1.0, 2.0), "spos")
    with pytest.raises(RuntimeError, match="spos"):
        op(x)


def test_one_shot_op_set_active_unknown_raises_naming_space_id():
    op = OneShotOP(counters(1.0, 2.0), "spos")
    with pytest.raises(ValueError, match="spos"):
        op.set_active("zzz")


def test_one_shot_op_runs_only_the_active_choice(x):
    op = OneShotOP(counters(1.0, 2.0, 3.0), "spos")
    op.set_active("c")
    assert torch.equal(op(x), x * 3.0)
    assert calls(op) == [0, 0, 1]


# ---------------------------------------------------------------- CUDA (skipped without a GPU)

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda_only
def test_choice_mask_stays_on_cpu_on_a_cuda_machine_and_moves_with_module():
    op = _three_choice_op()
    assert op.choice_mask.device.type == "cpu"
    assert op.cuda().choice_mask.device.type == "cuda"


@cuda_only
def test_hard_gumbel_op_runs_on_cuda_with_cuda_alpha():
    op = GumbelOP(counters(1.0, 2.0, 3.0), "cuda_op", hard=True).cuda()
    op.bind_arch_param(torch.zeros(3, device="cuda"))
    x = torch.ones(2, 3, device="cuda")
    y = op(x)
    assert sum(calls(op)) == 1
    assert y.device.type == "cuda"
