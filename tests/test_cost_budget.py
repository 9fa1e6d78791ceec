"""Budget-bounded derivation: exact against brute force, the DARTS rule without a budget."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from gradnas.cost import BudgetError, build_cost_table, derive_within_budget
from gradnas.errors import GradnasError
from gradnas.inspect import count_macs
from gradnas.mutables import KernelConv2d, WidthConv2d
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import DartsSearchNetwork
from gradnas.spaces.darts.network import NetworkCIFAR
from gradnas.spaces.darts.search_network import edge_space_id, op_space_id
from gradnas.spaces.nb201 import NB201Network, NB201SearchNetwork

PRIMITIVES = ("none", "skip_connect", "sep_conv_3x3", "max_pool_3x3")


@pytest.fixture(scope="module")
def space():
    torch.manual_seed(3)
    supernet = DartsSearchNetwork(
        C=4, layers=3, steps=2, multiplier=2, in_channels=1, primitives=PRIMITIVES
    )
    mutator = DartsMutator()
    mutator.prepare_from_supernet(supernet)
    with torch.no_grad():
        for alpha in mutator.arch_parameters():
            alpha.normal_()
    return supernet, mutator, build_cost_table(supernet, (1, 8, 8))


def all_subnets(steps: int = 2):
    """Every architecture of the 2-node cell space: 2 inputs per node, an op
    other than none on each, for both cell types."""
    per_cell = []
    for cell_type in ("normal", "reduce"):
        per_node = []
        for i in range(steps):
            options = []
            for inputs in itertools.combinations(range(2 + i), 2):
                for ops in itertools.product(PRIMITIVES[1:], repeat=2):
                    options.append((cell_type, i, inputs, ops))
            per_node.append(options)
        per_cell.extend(per_node)
    for combo in itertools.product(*per_cell):
        subnet = {}
        for cell_type, i, inputs, ops in combo:
            subnet[edge_space_id(cell_type, i)] = {"chosen": [f"input{j}" for j in inputs]}
            for j, op in zip(inputs, ops):
                subnet[op_space_id(cell_type, i, j)] = {"chosen": [op]}
        yield subnet


def score_of(subnet, probs) -> float:
    total = 0.0
    for space_id, entry in subnet.items():
        if "_input" in space_id:
            names = list(PRIMITIVES)
            total += probs[space_id][names.index(entry["chosen"][0])].item()
    return total


@pytest.fixture(scope="module")
def brute(space):
    _, mutator, table = space
    probs = mutator.arch_probs()
    return [(table.subnet_cost(s, "macs"), score_of(s, probs)) for s in all_subnets()]


def test_budgeted_derivation_is_the_brute_force_optimum(space, brute):
    _, mutator, table = space
    probs = mutator.arch_probs()
    costs = sorted({cost for cost, _ in brute})
    assert len(brute) == (9 * 27) ** 2
    # budgets from the cheapest to the dearest architecture, several in between
    for budget in [costs[0], *costs[1 :: len(costs) // 7], costs[-1]]:
        best = max(score for cost, score in brute if cost <= budget)
        found = derive_within_budget(table, probs, budget)
        assert found.cost <= budget
        assert found.cost == table.subnet_cost(found.subnet, "macs")
        assert found.score == pytest.approx(best, abs=1e-12)
        assert score_of(found.subnet, probs) == pytest.approx(best, abs=1e-12)


def test_without_a_binding_budget_it_is_the_darts_rule(space):
    _, mutator, table = space
    found = derive_within_budget(table, mutator.arch_probs(), float("inf"))
    assert found.subnet == mutator.search_subnet()  # inputs listed strongest first too


def test_a_budget_below_the_cheapest_is_one_clear_error(space, brute):
    _, mutator, table = space
    cheapest = min(cost for cost, _ in brute)
    with pytest.raises(BudgetError, match=f"the cheapest costs {cheapest:,.0f} ") as err:
        derive_within_budget(table, mutator.arch_probs(), cheapest - 1)
    assert isinstance(err.value, GradnasError) and isinstance(err.value, ValueError)
    assert "macs budget of" in str(err.value)
    with pytest.raises(BudgetError, match="fixed part"):
        derive_within_budget(table, mutator.arch_probs(), table.fixed.macs - 1)


def test_weights_budget_on_width_and_kernel_choices():
    """Top-level op decisions (no edges): brute force over widths x kernels."""
    torch.manual_seed(0)
    net = nn.Sequential(
        WidthConv2d(2, (4, 8, 12), 3, "width", padding=1),
        KernelConv2d(12, 6, "kernel"),
    )
    mutator = DartsMutator(ignore_choices=())
    mutator.prepare_from_supernet(net)
    with torch.no_grad():
        for alpha in mutator.arch_parameters():
            alpha.normal_()
    table = build_cost_table(net, (2, 6, 6))
    probs = mutator.arch_probs()
    every = []
    for w, k in itertools.product(
        table.decisions["width"].choices, table.decisions["kernel"].choices
    ):
        subnet = {"width": {"chosen": [w]}, "kernel": {"chosen": [k]}}
        score = (
            probs["width"][list(table.decisions["width"].choices).index(w)].item()
            + probs["kernel"][list(table.decisions["kernel"].choices).index(k)].item()
        )
        every.append((table.subnet_cost(subnet, "weights"), score, subnet))
    for budget in sorted({c for c, _, _ in every}):
        best = max(s for c, s, _ in every if c <= budget)
        found = derive_within_budget(table, probs, budget, metric="weights", ignore_choices=())
        assert found.score == pytest.approx(best, abs=1e-12)
        assert found.cost <= budget


def test_scores_must_fit_the_table(space):
    _, _, table = space
    with pytest.raises(ValueError, match="2 scores for 4 choices"):
        derive_within_budget(table, {"normal_node0_input0": [0.5, 0.5]}, 1e12)


def test_the_readme_example_runs_as_written():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Costs and budgets, library only so far\n")
    (block,) = re.findall(r"```py\n(.*?)```", readme[start : readme.index("\n## ", start)], re.S)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    found = namespace["found"]
    assert found.cost <= 0.9 * namespace["unbounded"]
    assert found.cost == namespace["table"].subnet_cost(found.subnet, "macs")
    assert namespace["macs"].requires_grad


def test_nb201_budgeted_network_measures_what_the_table_says():
    """NAS-Bench-201 (every edge one op decision, ``none`` allowed): at each of
    several budgets the derived fixed network, built and counted independently,
    has exactly the MACs the derivation reports, within the budget."""
    torch.manual_seed(6)
    supernet = NB201SearchNetwork(C=4, N=1, in_channels=1)
    mutator = DartsMutator(ignore_choices=())
    mutator.prepare_from_supernet(supernet)
    with torch.no_grad():
        for alpha in mutator.arch_parameters():
            alpha.normal_()
    table = build_cost_table(supernet, (1, 8, 8))
    free = derive_within_budget(table, mutator.arch_probs(), float("inf"), ignore_choices=())
    assert free.subnet == mutator.search_subnet()
    for budget in (free.cost, 0.5 * (free.cost + table.fixed.macs), table.fixed.macs):
        found = derive_within_budget(table, mutator.arch_probs(), budget, ignore_choices=())
        network = NB201Network(supernet.to_arch(found.subnet), C=4, N=1, in_channels=1)
        assert count_macs(network, (1, 8, 8)) == found.cost <= budget


def test_darts_budgeted_network_measures_what_the_table_says(space, brute):
    """The budgeted genotype rebuilt as a fixed NetworkCIFAR of the supernet's
    size has exactly the MACs the derivation reports."""
    supernet, mutator, table = space
    costs = sorted({cost for cost, _ in brute})
    for budget in (costs[0], costs[len(costs) // 3], costs[-1]):
        found = derive_within_budget(table, mutator.arch_probs(), budget)
        genotype = supernet.to_genotype(found.subnet)
        network = NetworkCIFAR(genotype, C=4, num_classes=10, layers=3, in_channels=1)
        assert count_macs(network, (1, 8, 8)) == found.cost <= budget
