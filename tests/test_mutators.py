"""Tests for gradnas.mutators: binding alphas to a supernet, the DARTS
derivation rule, deploying a subnet, and one-shot sampling.

Expected values and derived architectures are worked out by hand in the tests.
"""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
from torch import nn

from gradnas.mutables import (
    DifferentiableEdge,
    DifferentiableOP,
    GumbelEdge,
    GumbelOP,
    MutableModule,
    OneShotOP,
)
from gradnas.mutators import DartsMutator, DiffMutator, OneShotMutator, deploy_subnet


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


def set_probs(mutator: DiffMutator, space_id: str, probs: list[float]) -> None:
    """Set alpha = log(probs), so softmax(alpha) == probs (they sum to 1)."""
    with torch.no_grad():
        mutator.arch_params[space_id].copy_(torch.tensor([math.log(p) for p in probs]))


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- a small supernet


class SmallNet(nn.Module):
    """op1 and op2 share the decision 'shared', op3 is 'solo'; the edge has no alpha."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.op1 = DifferentiableOP(
            {"a": Scale(1.0), "b": Scale(2.0), "lin": nn.Linear(3, 3)}, "shared"
        )
        self.op2 = DifferentiableOP(
            {"a": Scale(-1.0), "b": Scale(0.5), "lin": nn.Linear(3, 3)}, "shared"
        )
        self.op3 = DifferentiableOP({"p": Scale(3.0), "q": nn.Linear(3, 3)}, "solo")
        self.edge = DifferentiableEdge(
            {"from_op2": nn.Identity(), "from_op3": nn.Identity()},
            "join",
            with_arch_param=False,
            num_chosen=2,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.edge([self.op2(self.op1(x)), self.op3(x)])


def linear(lin: nn.Linear, t: torch.Tensor) -> torch.Tensor:
    return t @ lin.weight.T + lin.bias


def small_net_expected(net: SmallNet, mutator: DiffMutator, x: torch.Tensor) -> torch.Tensor:
    ws = manual_softmax(mutator.arch_params["shared"].detach())
    wo = manual_softmax(mutator.arch_params["solo"].detach())
    h1 = ws[0] * x + ws[1] * 2.0 * x + ws[2] * linear(net.op1.choices["lin"], x)
    h2 = ws[0] * -h1 + ws[1] * 0.5 * h1 + ws[2] * linear(net.op2.choices["lin"], h1)
    h3 = wo[0] * 3.0 * x + wo[1] * linear(net.op3.choices["q"], x)
    return h2 + h3


@pytest.fixture
def bound() -> tuple[SmallNet, DiffMutator]:
    net = SmallNet()
    mutator = DiffMutator()
    mutator.prepare_from_supernet(net)
    with torch.no_grad():  # well away from uniform, so every term matters
        mutator.arch_params["shared"].copy_(torch.tensor([0.4, -0.3, 0.9]))
        mutator.arch_params["solo"].copy_(torch.tensor([0.2, -0.5]))
    return net, mutator


# ---------------------------------------------------------------- DiffMutator: ownership


def test_one_alpha_per_decision_with_an_arch_param(bound):
    _, mutator = bound
    assert set(mutator.arch_params.keys()) == {"shared", "solo"}


def test_mutables_sharing_a_space_id_are_bound_to_the_same_parameter(bound):
    net, mutator = bound
    assert net.op1.arch_param is mutator.arch_params["shared"]
    assert net.op2.arch_param is mutator.arch_params["shared"]
    assert net.op3.arch_param is mutator.arch_params["solo"]


def test_arch_parameters_are_exactly_the_parameter_dict_values(bound):
    _, mutator = bound
    got = [id(p) for p in mutator.arch_parameters()]
    assert len(got) == 2
    assert set(got) == {id(p) for p in mutator.arch_params.values()}


def test_no_alpha_among_supernet_parameters(bound):
    net, mutator = bound
    alpha_ids = {id(p) for p in mutator.arch_params.values()}
    assert not alpha_ids & {id(p) for p in net.parameters()}
    assert len(list(net.parameters())) == 6  # three Linear(3, 3): weight + bias each


def test_supernet_state_dict_holds_no_alpha(bound):
    net, mutator = bound
    state = net.state_dict()
    expected_keys = {n for n, _ in net.named_parameters()} | {n for n, _ in net.named_buffers()}
    assert set(state) == expected_keys
    alpha_ptrs = {p.data_ptr() for p in mutator.arch_params.values()}
    assert not alpha_ptrs & {t.data_ptr() for t in state.values()}


def test_mutator_state_dict_holds_exactly_the_alphas(bound):
    _, mutator = bound
    assert set(mutator.state_dict()) == {"arch_params.shared", "arch_params.solo"}


def test_mutables_sharing_space_id_with_different_choices_raise_naming_it():
    net = nn.ModuleList(
        [
            DifferentiableOP({"a": Scale(1.0), "b": Scale(2.0)}, "clash"),
            DifferentiableOP({"a": Scale(1.0), "c": Scale(2.0)}, "clash"),
        ]
    )
    with pytest.raises(ValueError, match="clash"):
        DiffMutator().prepare_from_supernet(net)


def test_supernet_without_mutables_raises():
    with pytest.raises(ValueError):
        DiffMutator().prepare_from_supernet(nn.Sequential(nn.Linear(3, 3)))


# ---------------------------------------------------------------- DiffMutator: forward and
# gradients


def test_plain_forward_uses_the_bound_alphas(bound, x):
    net, mutator = bound
    torch.testing.assert_close(net(x), small_net_expected(net, mutator, x))


def test_in_place_alpha_update_changes_plain_forward(bound, x):
    net, mutator = bound
    before = net(x)
    with torch.no_grad():
        mutator.arch_params["solo"].copy_(torch.tensor([4.0, -4.0]))
    after = net(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, small_net_expected(net, mutator, x))


def test_every_alpha_in_the_forward_gets_a_nonzero_gradient(bound, x):
    net, mutator = bound
    c = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
    (net(x) * c).sum().backward()
    for space_id, alpha in mutator.arch_params.items():
        assert alpha.grad is not None, space_id
        assert (alpha.grad != 0).all(), space_id


# ---------------------------------------------------------------- DiffMutator: copies and dtype

COPIERS = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda obj: pickle.loads(pickle.dumps(obj)),
}


@pytest.mark.parametrize("copier", COPIERS.values(), ids=COPIERS.keys())
def test_copied_supernet_is_bound_to_the_copied_alphas(copier, bound):
    net, mutator = bound
    net2, mutator2 = copier((net, mutator))
    for op, space_id in [(net2.op1, "shared"), (net2.op2, "shared"), (net2.op3, "solo")]:
        assert op.arch_param is mutator2.arch_params[space_id]
        assert op.arch_param is not mutator.arch_params[space_id]


@pytest.mark.parametrize("copier", COPIERS.values(), ids=COPIERS.keys())
def test_updating_copied_alphas_changes_only_the_copied_supernet(copier, bound, x):
    net, mutator = bound
    net2, mutator2 = copier((net, mutator))
    original_before, copy_before = net(x), net2(x)
    torch.testing.assert_close(copy_before, original_before)
    with torch.no_grad():
        mutator2.arch_params["solo"].copy_(torch.tensor([4.0, -4.0]))
        mutator2.arch_params["shared"].copy_(torch.tensor([-2.0, 3.0, 0.0]))
    assert not torch.allclose(net2(x), copy_before)
    torch.testing.assert_close(net2(x), small_net_expected(net2, mutator2, x))
    assert torch.equal(net(x), original_before)


def test_mutator_to_float64_keeps_the_binding(bound, x):
    net, mutator = bound
    mutator.to(torch.float64)
    net.to(torch.float64)
    for op, space_id in [(net.op1, "shared"), (net.op2, "shared"), (net.op3, "solo")]:
        assert op.arch_param is mutator.arch_params[space_id]
        assert op.arch_param.dtype == torch.float64
    assert net(x.double()).dtype == torch.float64


# ---------------------------------------------------------------- DiffMutator: temperature


def test_mutator_set_temperature_reaches_every_gumbel_mutable():
    net = nn.ModuleList(
        [
            GumbelOP({"a": Scale(1.0), "b": Scale(2.0)}, "g_shared"),
            GumbelOP({"a": Scale(1.0), "b": Scale(2.0)}, "g_shared"),
            GumbelEdge({"i": nn.Identity(), "j": nn.Identity()}, "g_edge"),
            DifferentiableOP({"a": Scale(1.0), "b": Scale(2.0)}, "plain"),  # has no temperature
        ]
    )
    mutator = DiffMutator()
    mutator.prepare_from_supernet(net)
    mutator.set_temperature(0.25)
    assert [m.tau for m in net[:3]] == [0.25, 0.25, 0.25]


# ---------------------------------------------------------------- DartsMutator: the DARTS rule

OP_SCALES = {"none": 0.0, "a": 2.0, "b": 3.0}


def mixed(space_id: str) -> DifferentiableOP:
    return DifferentiableOP({name: Counter(c) for name, c in OP_SCALES.items()}, space_id)


class ToyCell(nn.Module):
    """A DARTS-like cell: inputs s0, s1; node0 takes both; node1 takes s0, s1, node0.

    Every edge's choice is a mixed op over ['none', 'a', 'b'] with its own space id:
    node0: e00 (from s0), e01 (from s1); node1: e10 (from s0), e11 (from s1), e12 (from node0).
    """

    def __init__(self, node1_alpha: bool = False, node1_keep: int = 2) -> None:
        super().__init__()
        self.node0 = DifferentiableEdge(
            {"s0": mixed("e00"), "s1": mixed("e01")}, "node0", with_arch_param=False, num_chosen=2
        )
        self.node1 = DifferentiableEdge(
            {"s0": mixed("e10"), "s1": mixed("e11"), "n0": mixed("e12")},
            "node1",
            with_arch_param=node1_alpha,
            num_chosen=node1_keep,
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        n0 = self.node0([s0, s1])
        n1 = self.node1([s0, s1, n0])
        return n0 + n1


def darts_case(node1_alpha: bool = False, node1_keep: int = 2, ignore_choices=("none",)):
    cell = ToyCell(node1_alpha, node1_keep)
    mutator = DartsMutator(ignore_choices=ignore_choices)
    mutator.prepare_from_supernet(cell)
    return cell, mutator


def set_plain_darts_alphas(mutator: DartsMutator) -> None:
    #                       none  a     b
    set_probs(mutator, "e00", [0.6, 0.3, 0.1])  # none strongest, ignored -> a (0.3)
    set_probs(mutator, "e01", [0.2, 0.1, 0.7])  # -> b (0.7)
    set_probs(mutator, "e10", [0.1, 0.5, 0.4])  # -> a, strength 0.5
    set_probs(mutator, "e11", [0.7, 0.2, 0.1])  # -> a, strength 0.2 (none's 0.7 does not count)
    set_probs(mutator, "e12", [0.15, 0.05, 0.8])  # -> b, strength 0.8


# Kept inputs are listed strongest first, as DARTS genotypes list them.
# node0 keeps both its inputs (num_chosen = 2 of 2): s1 (0.7) before s0 (0.3).
# node1 strengths by best non-none weight: s0 0.5, s1 0.2, n0 0.8 -> keep n0, then s0;
# e11 sits on the dropped edge and is left out.
PLAIN_DARTS_EXPECTED = {
    "node0": {"chosen": ["s1", "s0"]},
    "e00": {"chosen": ["a"]},
    "e01": {"chosen": ["b"]},
    "node1": {"chosen": ["n0", "s0"]},
    "e10": {"chosen": ["a"]},
    "e12": {"chosen": ["b"]},
}


def test_darts_rule_on_hand_set_alphas():
    _, mutator = darts_case()
    set_plain_darts_alphas(mutator)
    assert mutator.search_subnet() == PLAIN_DARTS_EXPECTED


def test_darts_rule_ignores_none_even_when_strongest():
    _, mutator = darts_case()
    set_plain_darts_alphas(mutator)
    assert mutator.search_subnet()["e00"] == {"chosen": ["a"]}


def test_darts_rule_leaves_out_ops_on_dropped_edges():
    _, mutator = darts_case()
    set_plain_darts_alphas(mutator)
    assert "e11" not in mutator.search_subnet()


def set_pc_darts_alphas(mutator: DartsMutator) -> None:
    #                       none  a     b
    set_probs(mutator, "e00", [0.2, 0.5, 0.3])  # -> a
    set_probs(mutator, "e01", [0.2, 0.2, 0.6])  # -> b
    set_probs(mutator, "e10", [0.1, 0.5, 0.4])  # -> a, op strength 0.5
    set_probs(mutator, "e11", [0.1, 0.3, 0.6])  # -> b, op strength 0.6
    set_probs(mutator, "e12", [0.3, 0.4, 0.3])  # -> a, op strength 0.4
    set_probs(mutator, "node1", [0.2, 0.3, 0.5])


# Op strength alone: s0 0.5, s1 0.6, n0 0.4 -> would keep {s0, s1}.
# Times softmax(edge alpha) = [0.2, 0.3, 0.5]: s0 0.10, s1 0.18, n0 0.20 -> keep n0, s1.
# node0 (no edge alpha): s1 0.6, s0 0.5.
PC_DARTS_EXPECTED = {
    "node0": {"chosen": ["s1", "s0"]},
    "e00": {"chosen": ["a"]},
    "e01": {"chosen": ["b"]},
    "node1": {"chosen": ["n0", "s1"]},
    "e11": {"chosen": ["b"]},
    "e12": {"chosen": ["a"]},
}


def test_pc_darts_edge_alpha_weighs_op_strength():
    _, mutator = darts_case(node1_alpha=True)
    set_pc_darts_alphas(mutator)
    assert mutator.search_subnet() == PC_DARTS_EXPECTED


@pytest.mark.parametrize("keep,expected", [(1, ["n0"]), (2, ["n0", "s1"]), (3, ["n0", "s1", "s0"])])
def test_edge_with_alpha_keeps_num_chosen_inputs(keep, expected):
    _, mutator = darts_case(node1_alpha=True, node1_keep=keep)
    set_pc_darts_alphas(mutator)
    assert mutator.search_subnet()["node1"] == {"chosen": expected}


def test_edge_with_alpha_and_plain_modules_keeps_top_num_chosen_by_edge_alpha():
    edge = DifferentiableEdge(
        {"p": nn.Identity(), "q": nn.Identity(), "r": nn.Identity()},
        "plain_edge",
        with_arch_param=True,
        num_chosen=2,
    )
    mutator = DartsMutator()
    mutator.prepare_from_supernet(nn.ModuleList([edge]))
    set_probs(mutator, "plain_edge", [0.5, 0.2, 0.3])  # top-2: p (0.5), r (0.3)
    assert mutator.search_subnet() == {"plain_edge": {"chosen": ["p", "r"]}}


def test_darts_mutator_without_ignored_choices_picks_none_when_strongest():
    net = nn.ModuleList([mixed("lone")])
    for ignore, expected in [((), "none"), (("none",), "a")]:
        mutator = DartsMutator(ignore_choices=ignore)
        mutator.prepare_from_supernet(net)
        set_probs(mutator, "lone", [0.6, 0.3, 0.1])
        assert mutator.search_subnet() == {"lone": {"chosen": [expected]}}


# ---------------------------------------------------------------- deploy_subnet


def all_counters(cell: ToyCell) -> dict[tuple[str, str], Counter]:
    return {
        (m.space_id, name): c
        for m in cell.modules()
        if isinstance(m, DifferentiableOP)
        for name, c in m.choices.items()
    }


def choice_names(net: nn.Module) -> dict[str, list[str]]:
    return {m.space_id: m.choice_names for m in net.modules() if isinstance(m, MutableModule)}


@pytest.fixture
def deployed():
    cell, mutator = darts_case()
    set_plain_darts_alphas(mutator)
    counters = all_counters(cell)
    deploy_subnet(cell, mutator.search_subnet())
    for c in counters.values():
        c.calls = 0
    return cell, counters


def test_deployed_cell_runs_only_the_chosen_ops(deployed, x):
    cell, counters = deployed
    cell(x, x + 1.0)
    chosen = {("e00", "a"), ("e01", "b"), ("e10", "a"), ("e12", "b")}
    assert {key: c.calls for key, c in counters.items()} == {
        key: int(key in chosen) for key in counters
    }


def test_deployed_cell_drops_unchosen_edges_and_ops(deployed):
    cell, _ = deployed
    assert set(cell.node1.choice_names) == {"s0", "n0"}
    assert choice_names(cell) == {
        "node0": ["s0", "s1"],
        "e00": ["a"],
        "e01": ["b"],
        "node1": ["s0", "n0"],
        "e10": ["a"],
        "e12": ["b"],
    }


def test_deployed_cell_output_matches_hand_computation(deployed, x):
    cell, _ = deployed
    s0, s1 = x, x + 1.0
    n0 = 2.0 * s0 + 3.0 * s1  # e00 -> a (x2), e01 -> b (x3)
    n1 = 2.0 * s0 + 3.0 * n0  # e10 -> a on s0, e12 -> b on node0
    torch.testing.assert_close(cell(s0, s1), n0 + n1)


def test_deploy_with_unknown_choice_raises_naming_space_id_and_changes_nothing():
    cell, mutator = darts_case()
    set_plain_darts_alphas(mutator)
    subnet = mutator.search_subnet()
    subnet["e12"] = {"chosen": ["zzz"]}  # the last decision visited: all before it are valid
    before = choice_names(cell)
    with pytest.raises(ValueError, match="e12"):
        deploy_subnet(cell, subnet)
    assert choice_names(cell) == before
    assert not any(m.is_exported for m in cell.modules() if isinstance(m, MutableModule))


def test_deploy_with_missing_decision_raises_naming_it():
    cell, mutator = darts_case()
    set_plain_darts_alphas(mutator)
    subnet = mutator.search_subnet()
    del subnet["e01"]
    with pytest.raises(ValueError, match="e01"):
        deploy_subnet(cell, subnet)


# ---------------------------------------------------------------- OneShotMutator


def one_shot_net() -> nn.ModuleList:
    return nn.ModuleList(
        [
            OneShotOP({"a": Counter(1.0), "b": Counter(2.0), "c": Counter(3.0)}, "s1"),
            OneShotOP({"x": Counter(4.0), "y": Counter(5.0)}, "s2"),
            OneShotOP({"x": Counter(6.0), "y": Counter(7.0)}, "s2"),
        ]
    )


def test_one_shot_sample_is_reproducible_with_a_seeded_generator():
    mutator = OneShotMutator()
    mutator.prepare_from_supernet(one_shot_net())
    draws = [
        [mutator.sample_subnet(torch.Generator().manual_seed(seed)) for seed in range(10)]
        for _ in range(2)
    ]
    assert draws[0] == draws[1]


def test_one_shot_sample_covers_every_choice():
    mutator = OneShotMutator()
    mutator.prepare_from_supernet(one_shot_net())
    gen = torch.Generator().manual_seed(0)
    seen = {"s1": set(), "s2": set()}
    for _ in range(100):
        for space_id, entry in mutator.sample_subnet(gen).items():
            seen[space_id].update(entry["chosen"])
    assert seen == {"s1": {"a", "b", "c"}, "s2": {"x", "y"}}


def test_one_shot_set_subnet_makes_each_op_run_its_chosen_choice(x):
    net = one_shot_net()
    mutator = OneShotMutator()
    mutator.prepare_from_supernet(net)
    mutator.set_subnet({"s1": {"chosen": ["b"]}, "s2": {"chosen": ["y"]}})
    assert torch.equal(net[0](x), 2.0 * x)
    assert torch.equal(net[1](x), 5.0 * x)
    assert torch.equal(net[2](x), 7.0 * x)
    assert [[c.calls for c in op.choices.values()] for op in net] == [[0, 1, 0], [0, 1], [0, 1]]


def test_one_shot_mutator_rejects_a_differentiable_op():
    net = nn.ModuleList(
        [
            OneShotOP({"a": Scale(1.0)}, "ok"),
            DifferentiableOP({"a": Scale(1.0), "b": Scale(2.0)}, "diff_sid"),
        ]
    )
    with pytest.raises(ValueError, match="diff_sid"):
        OneShotMutator().prepare_from_supernet(net)
