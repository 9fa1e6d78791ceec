"""Tests for SNAS: the single-level step against its closed form with fixed
noise, the resource penalty's gradient, the temperature schedule, and the
argmax derivation with any number of inputs per node."""

import copy

import pytest
import torch
from torch import nn

from gradnas.algorithms.snas import Snas, linear_temperature, snas_op_mutable
from gradnas.genotype import Genotype
from gradnas.mutables import DifferentiableOP, GumbelOP
from gradnas.mutators import DartsMutator
from gradnas.mutators.snas_mutator import SnasMutator
from gradnas.spaces.darts import DartsSearchNetwork

TAU = 0.7
NAMES = ("a", "b", "c")


class ToySupernet(nn.Module):
    """logits = sum_i w_i * Linear_i(x) with soft Gumbel weights w."""

    def __init__(self) -> None:
        super().__init__()
        self.op = GumbelOP({name: nn.Linear(4, 3) for name in NAMES}, "op", tau=TAU, hard=False)

    def forward(self, x):
        return self.op(x)


def toy(noise: torch.Tensor, **kwargs):
    torch.manual_seed(0)
    net = ToySupernet()
    net.op.gumbel_noise = lambda alpha: noise  # a fixed sample
    mutator = SnasMutator()
    mutator.prepare_from_supernet(net)
    with torch.no_grad():
        mutator.arch_params["op"].copy_(torch.tensor([0.3, -0.2, 0.5]))
    # Plain SGD with lr 1 on the alphas: their change is minus their gradient.
    algo = Snas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.SGD(mutator.arch_parameters(), lr=1.0),
        tau_start=TAU,
        tau_end=TAU,
        grad_clip=None,
        **kwargs,
    )
    return net, mutator, algo


def data(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(5, 4, generator=gen), torch.randint(0, 3, (5,), generator=gen)


NOISE = [0.4, -1.1, 0.2]


@torch.no_grad()
def closed_form_grads(net: ToySupernet, alpha: torch.Tensor, noise: torch.Tensor, x, y):
    """Cross-entropy gradients worked out by hand (no autograd):
    w = softmax((alpha + g) / tau), z = sum_i w_i o_i, dL/dz = (softmax(z) - onehot(y)) / N,
    dL/dw_i = <dL/dz, o_i>, dL/dalpha_j = sum_i dL/dw_i w_i (delta_ij - w_j) / tau,
    dL/dW_i = w_i dz^T x, dL/db_i = w_i sum_n dz_n."""
    logits = (alpha + noise) / TAU
    w = logits.exp() / logits.exp().sum()
    layers = [net.op.choices[name] for name in NAMES]
    outs = [x @ layer.weight.T + layer.bias for layer in layers]
    z = sum(wi * o for wi, o in zip(w, outs))
    dz = (z.exp() / z.exp().sum(1, keepdim=True) - nn.functional.one_hot(y, 3)) / len(y)
    dw = torch.stack([(dz * o).sum() for o in outs])
    d_alpha = (
        torch.stack(
            [sum(dw[i] * w[i] * (float(i == j) - w[j]) for i in range(3)) for j in range(3)]
        )
        / TAU
    )
    d_weight = [w[i] * dz.T @ x for i in range(3)]
    d_bias = [w[i] * dz.sum(0) for i in range(3)]
    return d_alpha, d_weight, d_bias


def test_alpha_step_follows_the_closed_form_gradient_of_the_training_loss(float64):
    noise = torch.tensor(NOISE)
    net, mutator, algo = toy(noise)
    alpha = mutator.arch_params["op"].detach().clone()
    x, y = data()
    d_alpha, _, _ = closed_form_grads(net, alpha, noise, x, y)
    algo.step((x, y), None)
    assert torch.allclose(alpha - mutator.arch_params["op"].detach(), d_alpha, atol=1e-12)


def test_weight_step_uses_the_same_training_loss(float64):
    noise = torch.tensor(NOISE)
    net, mutator, algo = toy(noise)
    before = copy.deepcopy(net)
    x, y = data()
    _, d_weight, d_bias = closed_form_grads(before, mutator.arch_params["op"].detach(), noise, x, y)
    algo.step((x, y), None)
    for i, name in enumerate(NAMES):
        layer, old = net.op.choices[name], before.op.choices[name]
        assert torch.allclose(old.weight - layer.weight, 0.1 * d_weight[i], atol=1e-12)
        assert torch.allclose(old.bias - layer.bias, 0.1 * d_bias[i], atol=1e-12)


def test_step_ignores_the_validation_batch(float64):
    noise = torch.tensor(NOISE)
    results = []
    for val_seed in (1, 2):
        _, mutator, algo = toy(noise)
        algo.step(data(0), data(val_seed))
        results.append(mutator.arch_params["op"].detach().clone())
    assert torch.equal(results[0], results[1])


# -- resource penalty ------------------------------------------------------------

COSTS = {"a": 1.0, "b": 5.0, "c": 20.0}


def test_expected_cost_is_the_softmax_weighted_cost(float64):
    _, _mutator, algo = toy(torch.tensor(NOISE), resource_penalty=0.5, resource_costs=COSTS)
    p = torch.softmax(torch.tensor([0.3, -0.2, 0.5]), 0)
    assert algo.expected_cost().item() == pytest.approx(
        float(p @ torch.tensor([1.0, 5.0, 20.0])), abs=1e-12
    )


def test_resource_penalty_adds_its_closed_form_gradient_to_the_alpha_step(float64):
    lam = 0.5
    noise = torch.tensor(NOISE)
    _, plain_mutator, plain = toy(noise)
    _, mutator, algo = toy(noise, resource_penalty=lam, resource_costs=COSTS)
    plain.step(data(), None)
    metrics = algo.step(data(), None)
    # d/dalpha_j (lam * sum_i p_i c_i) = lam * p_j * (c_j - sum_i p_i c_i), p = softmax(alpha).
    p = torch.softmax(torch.tensor([0.3, -0.2, 0.5]), 0)
    c = torch.tensor([1.0, 5.0, 20.0])
    expected = lam * p * (c - p @ c)
    extra = plain_mutator.arch_params["op"].detach() - mutator.arch_params["op"].detach()
    assert torch.allclose(extra, expected, atol=1e-12)
    assert metrics["expected_cost"] == pytest.approx(float(p @ c), abs=1e-12)


class NoWeights(nn.Module):
    def forward(self, x):
        return x


def test_default_cost_is_each_ops_weight_count_summed_over_shared_mutables():
    def op():
        return GumbelOP(
            {"a": nn.Linear(4, 3), "b": nn.Linear(4, 3, bias=False), "none": NoWeights()},
            "op",
            hard=False,
        )

    net = nn.ModuleList([op(), op()])  # one decision in two places
    mutator = SnasMutator()
    mutator.prepare_from_supernet(net)
    algo = Snas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.SGD(mutator.arch_parameters(), lr=1.0),
        resource_penalty=1.0,
    )
    # Linear(4, 3): 12 weights + 3 biases = 15, without bias 12; two mutables each.
    assert algo.costs["op"].tolist() == [30.0, 24.0, 0.0]


def test_given_costs_count_once_per_mutable_of_the_decision():
    def op():
        return GumbelOP({"a": nn.Linear(4, 3), "b": nn.Linear(4, 3)}, "op", hard=False)

    net = nn.ModuleList([op(), op(), op()])  # e.g. the same edge in three normal cells
    mutator = SnasMutator()
    mutator.prepare_from_supernet(net)
    algo = Snas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.SGD(mutator.arch_parameters(), lr=1.0),
        resource_penalty=1.0,
        resource_costs={"a": 2.0, "b": 7.0},
    )
    assert algo.costs["op"].tolist() == [6.0, 21.0]


def test_resource_costs_must_name_exactly_the_ops():
    net = ToySupernet()
    mutator = SnasMutator()
    mutator.prepare_from_supernet(net)
    with pytest.raises(ValueError, match=r"missing: \['c'\], unknown: \['d'\]"):
        Snas(
            net,
            mutator,
            torch.optim.SGD(net.parameters(), lr=0.1),
            torch.optim.SGD(mutator.arch_parameters(), lr=1),
            resource_penalty=1.0,
            resource_costs={"a": 1.0, "b": 2.0, "d": 3.0},
        )


# -- temperature schedule ----------------------------------------------------------


def test_temperature_anneals_linearly_from_start_to_end():
    # SNAS release (SNAS/utils.py Temp_Scheduler, train_search.py --temp 1 --temp_min 0.03): linear.
    taus = [linear_temperature(e, 5, 1.0, 0.03) for e in range(5)]
    assert taus == pytest.approx([1.0, 0.7575, 0.515, 0.2725, 0.03])


def test_on_epoch_start_sets_the_temperature_of_every_gumbel_op():
    net = ToySupernet()
    mutator = SnasMutator()
    mutator.prepare_from_supernet(net)
    algo = Snas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.SGD(mutator.arch_parameters(), lr=1),
    )
    assert net.op.tau == 1.0  # tau_start from the constructor on
    algo.on_epoch_start(4, 5)
    assert net.op.tau == pytest.approx(0.03)


def test_state_dict_restores_the_temperature():
    net = ToySupernet()
    mutator = SnasMutator()
    mutator.prepare_from_supernet(net)
    algo = Snas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.SGD(mutator.arch_parameters(), lr=1),
    )
    algo.on_epoch_start(2, 5)
    state = algo.state_dict()
    net2, mutator2 = copy.deepcopy((net, mutator))
    net2.op.set_temperature(1.0)
    restored = Snas(
        net2,
        mutator2,
        torch.optim.SGD(net2.parameters(), lr=0.1),
        torch.optim.SGD(mutator2.arch_parameters(), lr=1),
    )
    restored.load_state_dict(state)
    assert restored.epoch == 2 and net2.op.tau == pytest.approx(0.515)


# -- bad input --------------------------------------------------------------------------


def make(net, **kwargs):
    mutator = SnasMutator()
    mutator.prepare_from_supernet(net)
    return Snas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.SGD(mutator.arch_parameters(), lr=1),
        **kwargs,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tau_start": 0.0}, "tau_start must be a positive finite number"),
        ({"tau_end": -1.0}, "tau_end must be a positive finite number"),
        ({"resource_penalty": -0.1}, "resource_penalty must be a finite number >= 0"),
        ({"grad_clip": 0.0}, "grad_clip must be a positive finite number"),
    ],
)
def test_bad_constructor_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(ToySupernet(), **kwargs)


def test_snas_refuses_non_gumbel_ops():
    net = nn.Sequential(DifferentiableOP({"a": nn.Linear(4, 3), "b": nn.Linear(4, 3)}, "op"))
    with pytest.raises(ValueError, match=r"GumbelOP\(hard=False\).*\['op'\]"):
        make(net)


def test_snas_refuses_hard_gumbel_ops():
    net = nn.Sequential(GumbelOP({"a": nn.Linear(4, 3), "b": nn.Linear(4, 3)}, "op", hard=True))
    with pytest.raises(ValueError, match=r"GumbelOP\(hard=False\)"):
        make(net)


# -- argmax derivation with any in-degree ---------------------------------------------------

PRIMS = ("none", "skip_connect", "max_pool_3x3")


def snas_network():
    torch.manual_seed(0)
    net = DartsSearchNetwork(
        C=4,
        layers=3,
        steps=3,
        multiplier=3,
        in_channels=1,
        num_classes=3,
        primitives=PRIMS,
        op_mutable=snas_op_mutable,
    )
    mutator = SnasMutator()
    mutator.prepare_from_supernet(net)
    return net, mutator


def set_probs(mutator, space_id, probs):
    with torch.no_grad():
        mutator.arch_params[space_id].copy_(torch.tensor(probs).log())


def hand_set(mutator):
    #                                 none skip  max
    for space_id in mutator.arch_params:
        set_probs(mutator, space_id, [0.6, 0.2, 0.2])  # everything 'none' unless set below
    set_probs(mutator, "normal_node0_input1", [0.2, 0.5, 0.3])
    set_probs(mutator, "normal_node2_input0", [0.1, 0.2, 0.7])
    set_probs(mutator, "normal_node2_input2", [0.3, 0.4, 0.3])
    set_probs(mutator, "normal_node2_input3", [0.3, 0.3, 0.4])
    set_probs(mutator, "reduce_node1_input2", [0.2, 0.5, 0.3])
    set_probs(mutator, "reduce_node1_input0", [0.2, 0.3, 0.5])
    set_probs(mutator, "reduce_node2_input1", [0.2, 0.4, 0.4])  # tie: the earlier op wins


# normal: node0 keeps 1 input, node1 none, node2 three of four (more than DARTS' 2).
EXPECTED = Genotype(
    normal=[
        [("skip_connect", 1)],
        [],
        [("max_pool_3x3", 0), ("skip_connect", 2), ("max_pool_3x3", 3)],
    ],
    normal_concat=[2, 3, 4],
    reduce=[[], [("max_pool_3x3", 0), ("skip_connect", 2)], [("skip_connect", 1)]],
    reduce_concat=[2, 3, 4],
)


def test_argmax_subnet_keeps_the_inputs_whose_op_is_not_none():
    _, mutator = snas_network()
    hand_set(mutator)
    subnet = mutator.search_subnet()
    assert subnet["normal_node0"] == {"chosen": ["input1"]}
    assert subnet["normal_node1"] == {"chosen": []}
    assert subnet["normal_node2"] == {"chosen": ["input0", "input2", "input3"]}
    assert subnet["normal_node2_input3"] == {"chosen": ["max_pool_3x3"]}
    assert "normal_node0_input0" not in subnet  # ops of dropped edges are left out


def test_to_genotype_handles_any_in_degree():
    net, mutator = snas_network()
    hand_set(mutator)
    genotype = net.to_genotype(mutator.search_subnet())
    assert genotype == EXPECTED
    assert genotype.validate(PRIMS, steps=3) is genotype


def test_variable_in_degree_genotype_round_trips_through_json():
    assert Genotype.from_json(EXPECTED.to_json()) == EXPECTED
    assert Genotype.parse(str(EXPECTED)) == EXPECTED


def test_darts_rule_would_keep_two_inputs_where_snas_keeps_three():
    # The same alphas under DARTS' rule: node2 keeps exactly num_chosen = 2 inputs.
    net, mutator = snas_network()
    hand_set(mutator)
    darts = DartsMutator()
    darts.prepare_from_supernet(net)
    darts.load_state_dict(mutator.state_dict())
    assert len(darts.search_subnet()["normal_node2"]["chosen"]) == 2


def test_snas_step_trains_a_darts_space_supernet():
    net, mutator = snas_network()
    algo = Snas(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4),
        torch.optim.Adam(mutator.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3),
        resource_penalty=1e-5,
    )
    alphas = [a.detach().clone() for a in mutator.arch_parameters()]
    algo.on_epoch_start(0, 3)
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(4, 1, 4, 4, generator=gen), torch.randint(0, 3, (4,), generator=gen))
    metrics = algo.step(batch, batch)
    assert all(not torch.equal(a, b) for a, b in zip(alphas, mutator.arch_parameters()))
    assert metrics["tau"] == 1.0 and metrics["expected_cost"] > 0
    net.to_genotype(mutator.search_subnet()).validate(PRIMS, steps=3)
