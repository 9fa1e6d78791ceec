"""Tests for SPOS: the one-shot edge, uniform path sampling in the DARTS
space, single-path weight steps, scoring a path with the shared weights
(with BatchNorm recalibration) and the evolutionary search over genotypes.

Expected values come from independent computations in each test.
"""

from __future__ import annotations

import copy
import itertools
import random

import pytest
import torch
from torch import nn

from gradnas.algorithms.spos import (
    Spos,
    evolution_search,
    path_accuracy,
    recalibrate_bn,
    spos_supernet,
    subnet_from_genotype,
)
from gradnas.genotype import PRIMITIVES, Genotype, get_genotype
from gradnas.genotype_sampling import crossover_genotypes, mutate_genotype, sample_genotype
from gradnas.mutables import OneShotOP
from gradnas.mutables.one_shot_edge import OneShotEdge
from gradnas.mutators.one_shot_mutator import OneShotMutator
from gradnas.spaces.darts import DartsSearchNetwork, op_space_id

ALLOWED = [op for op in PRIMITIVES if op != "none"]
STEPS = 4


class Counter(nn.Module):
    """Multiplies by a constant and counts its calls."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * self.c


def small_supernet(seed: int = 0) -> tuple[DartsSearchNetwork, OneShotMutator]:
    torch.manual_seed(seed)
    net = spos_supernet(C=4, layers=3, steps=STEPS, multiplier=STEPS, in_channels=1, num_classes=3)
    mutator = OneShotMutator()
    mutator.prepare_from_supernet(net)
    return net, mutator


def edge_ids(net: DartsSearchNetwork) -> list[str]:
    return sorted({m.space_id for m in net.modules() if isinstance(m, OneShotEdge)})


def op_ids(net: DartsSearchNetwork) -> list[str]:
    return sorted({m.space_id for m in net.modules() if isinstance(m, OneShotOP)})


# ---------------------------------------------------------------- OneShotEdge


def three_input_edge() -> OneShotEdge:
    return OneShotEdge(
        {"input0": Counter(1.0), "input1": Counter(2.0), "input2": Counter(3.0)}, "e", num_chosen=2
    )


def test_one_shot_edge_runs_and_sums_only_its_active_inputs():
    edge = three_input_edge()
    xs = [torch.full((2,), float(10**i)) for i in range(3)]
    edge.set_active(["input0", "input2"])
    assert torch.equal(edge(xs), 1.0 * xs[0] + 3.0 * xs[2])
    assert [c.calls for c in edge.choices.values()] == [1, 0, 1]


def test_one_shot_edge_forward_before_a_choice_raises_naming_the_space_id():
    with pytest.raises(RuntimeError, match="In e: no active inputs"):
        three_input_edge()([torch.ones(1)] * 3)


@pytest.mark.parametrize(
    "names", [["input0"], ["input0", "input0"], ["input0", "input9"], "input0"]
)
def test_one_shot_edge_rejects_an_active_set_that_is_not_num_chosen_distinct_inputs(names):
    with pytest.raises(ValueError, match="In e:"):
        three_input_edge().set_active(names)


def test_one_shot_edge_wants_one_input_per_original_choice():
    edge = three_input_edge()
    edge.set_active(["input0", "input1"])
    with pytest.raises(ValueError, match="got 2 inputs"):
        edge([torch.ones(1)] * 2)


def test_exported_one_shot_edge_sums_the_kept_inputs():
    edge = three_input_edge()
    edge.export(["input1", "input2"])
    xs = [torch.full((1,), float(10**i)) for i in range(3)]
    assert torch.equal(edge(xs), 2.0 * xs[1] + 3.0 * xs[2])


# ---------------------------------------------------------------- the supernet


def test_spos_supernet_replaces_every_node_edge_by_a_one_shot_edge_over_the_same_choices():
    net, _ = small_supernet()
    reference = DartsSearchNetwork(
        C=4, layers=3, steps=STEPS, multiplier=STEPS, in_channels=1, num_classes=3
    )
    for cell, ref_cell in zip(net.cells, reference.cells):
        for node, ref_node in zip(cell.nodes, ref_cell.nodes):
            assert type(node) is OneShotEdge
            assert (node.space_id, node.full_choice_names, node.num_chosen) == (
                ref_node.space_id,
                ref_node.full_choice_names,
                ref_node.num_chosen,
            )
            assert all(isinstance(op, OneShotOP) for op in node.choices.values())
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )


@pytest.mark.parametrize("key", ["op_mutable", "edge_alpha"])
def test_spos_supernet_refuses_arguments_it_sets_itself(key):
    with pytest.raises(ValueError, match=key):
        spos_supernet(C=4, layers=3, **{key: None})


# ---------------------------------------------------------------- sampling paths


@pytest.fixture(scope="module")
def draws() -> tuple[DartsSearchNetwork, list[dict]]:
    net, mutator = small_supernet()
    gen = torch.Generator().manual_seed(0)
    return net, [mutator.sample_subnet(gen) for _ in range(500)]


def test_sample_subnet_is_reproducible_with_a_seeded_generator():
    _, mutator = small_supernet()
    runs = [
        [mutator.sample_subnet(torch.Generator().manual_seed(7)) for _ in range(3)]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert runs[0][0] != mutator.sample_subnet(torch.Generator().manual_seed(8))


def test_sample_subnet_never_picks_none(draws):
    _, subnets = draws
    assert all(entry["chosen"] != ["none"] for subnet in subnets for entry in subnet.values())


def test_sample_subnet_keeps_two_distinct_inputs_per_node_in_input_order(draws):
    net, subnets = draws
    for subnet in subnets:
        for space_id in edge_ids(net):
            chosen = subnet[space_id]["chosen"]
            assert len(chosen) == 2 and chosen == sorted(
                set(chosen), key=lambda name: int(name[5:])
            )


def test_sample_subnet_covers_every_allowed_op_and_every_input_pair(draws):
    net, subnets = draws
    for space_id in op_ids(net):
        assert {s[space_id]["chosen"][0] for s in subnets} == set(ALLOWED), space_id
    for space_id in edge_ids(net):
        node = int(space_id.split("node")[1])
        pairs = {tuple(s[space_id]["chosen"]) for s in subnets}
        assert pairs == {
            (f"input{a}", f"input{b}") for a, b in itertools.combinations(range(2 + node), 2)
        }


def test_sample_subnet_draws_none_when_nothing_is_excluded():
    net, _ = small_supernet()
    mutator = OneShotMutator(exclude=())
    mutator.prepare_from_supernet(net)
    gen = torch.Generator().manual_seed(0)
    assert any(
        entry["chosen"] == ["none"]
        for _ in range(20)
        for entry in mutator.sample_subnet(gen).values()
    )


def test_mutator_rejects_an_exclusion_of_every_choice():
    net = nn.ModuleList([OneShotOP({"none": Counter(0.0)}, "only_none")])
    with pytest.raises(ValueError, match="only_none"):
        OneShotMutator().prepare_from_supernet(net)


def test_mutator_rejects_a_string_as_exclude():
    with pytest.raises(ValueError, match="exclude"):
        OneShotMutator(exclude="none")


# ---------------------------------------------------------------- setting paths


def test_a_sampled_path_runs_exactly_the_ops_of_its_genotype():
    net, mutator = small_supernet()
    subnet = mutator.sample_subnet(torch.Generator().manual_seed(3))
    mutator.set_subnet(subnet)
    genotype = net.to_genotype(subnet)
    ran = set()
    for c, cell in enumerate(net.cells):
        for op in (m for m in cell.modules() if isinstance(m, OneShotOP)):
            for name, module in op.choices.items():
                module.register_forward_hook(lambda *_, key=(c, op.space_id, name): ran.add(key))
    net(torch.randn(2, 1, 8, 8))
    expected = set()
    for c, cell in enumerate(net.cells):
        cell_type = "reduce" if cell.reduction else "normal"
        for i, node in enumerate(getattr(genotype, cell_type)):
            expected |= {(c, op_space_id(cell_type, i, j), op) for op, j in node}
    assert ran == expected
    assert len(expected) == 3 * STEPS * 2


def test_sampled_subnet_round_trips_through_a_genotype():
    net, mutator = small_supernet()
    subnet = mutator.sample_subnet(torch.Generator().manual_seed(1))
    back = subnet_from_genotype(net.to_genotype(subnet))
    # The genotype keeps the ops of kept inputs only; everything it keeps is the sample's.
    assert back == {sid: entry for sid, entry in subnet.items() if sid in back}
    assert set(edge_ids(net)) <= set(back)
    assert len(back) == len(edge_ids(net)) + 2 * 2 * STEPS


def test_published_genotype_round_trips_through_a_subnet():
    net, mutator = small_supernet()
    darts_v2 = get_genotype("DARTS_V2")
    subnet = subnet_from_genotype(darts_v2)
    mutator.set_subnet(subnet)
    assert net.to_genotype(subnet) == darts_v2
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_set_subnet_clears_the_ops_of_dropped_inputs():
    net, mutator = small_supernet()
    mutator.set_subnet(mutator.sample_subnet(torch.Generator().manual_seed(0)))
    genotype = sample_genotype(random.Random(0))
    mutator.set_subnet(subnet_from_genotype(genotype))
    kept = set(subnet_from_genotype(genotype))
    for op in (m for m in net.modules() if isinstance(m, OneShotOP)):
        assert (op.active is None) == (op.space_id not in kept), op.space_id


def test_set_subnet_missing_the_op_of_a_kept_input_raises_naming_it():
    _, mutator = small_supernet()
    subnet = subnet_from_genotype(get_genotype("DARTS_V2"))
    del subnet["normal_node0_input1"]
    with pytest.raises(ValueError, match="normal_node0_input1"):
        mutator.set_subnet(subnet)


def test_set_subnet_rejects_an_unknown_space_id():
    _, mutator = small_supernet()
    subnet = subnet_from_genotype(get_genotype("DARTS_V2"))
    subnet["normal_node9"] = {"chosen": ["input0", "input1"]}
    with pytest.raises(ValueError, match="normal_node9"):
        mutator.set_subnet(subnet)


def test_set_subnet_rejects_a_node_with_one_input_and_changes_nothing():
    net, mutator = small_supernet()
    good = mutator.sample_subnet(torch.Generator().manual_seed(0))
    mutator.set_subnet(good)
    before = [
        (m.space_id, m.active) for m in net.modules() if isinstance(m, (OneShotOP, OneShotEdge))
    ]
    bad = copy.deepcopy(good)
    bad["reduce_node2"] = {"chosen": ["input0"]}
    bad["normal_node0_input0"] = {"chosen": ["skip_connect"]}
    with pytest.raises(ValueError, match="reduce_node2"):
        mutator.set_subnet(bad)
    assert before == [
        (m.space_id, m.active) for m in net.modules() if isinstance(m, (OneShotOP, OneShotEdge))
    ]


def test_subnet_from_genotype_rejects_an_input_used_twice():
    twice = Genotype(
        normal=[[("skip_connect", 0), ("sep_conv_3x3", 0)]],
        normal_concat=[2],
        reduce=[[("skip_connect", 0), ("sep_conv_3x3", 1)]],
        reduce_concat=[2],
    )
    with pytest.raises(ValueError, match="normal cell, node 0"):
        subnet_from_genotype(twice)


# ---------------------------------------------------------------- Spos.step


def batch(seed: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=gen), torch.randint(3, (n,), generator=gen)


def path_parameters(net: DartsSearchNetwork) -> tuple[set[int], set[int]]:
    """Ids of the op parameters on the active path and off it, read from the mutables."""
    on, off = set(), set()
    for cell in net.cells:
        for edge in cell.nodes:
            for name, op in edge.choices.items():
                for choice, module in op.choices.items():
                    active = name in edge.active and choice == op.active
                    (on if active else off).update(id(p) for p in module.parameters())
    return on, off


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 3e-4)])
def test_spos_step_changes_only_the_weights_on_the_sampled_path(momentum, weight_decay):
    net, mutator = small_supernet()
    optimizer = torch.optim.SGD(
        net.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay
    )
    spos = Spos(net, mutator, optimizer, generator=torch.Generator().manual_seed(0))
    spos.step(batch(0), batch(1))  # a first step leaves momentum buffers behind
    before = {id(p): p.detach().clone() for p in net.parameters()}
    spos.step(batch(2), batch(3))
    on, off = path_parameters(net)
    params = {id(p): p for p in net.parameters()}
    assert off and all(params[i].grad is None and torch.equal(params[i], before[i]) for i in off)
    assert on and any(not torch.equal(params[i], before[i]) for i in on)
    shared = list(net.classifier.parameters()) + list(net.stem.parameters())
    assert all(not torch.equal(p, before[id(p)]) for p in shared)


def test_spos_step_returns_the_training_metrics_of_the_batch():
    net, mutator = small_supernet()
    spos = Spos(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.0),
        generator=torch.Generator().manual_seed(0),
    )
    x, y = batch(0)
    metrics = spos.step((x, y), batch(1))
    # lr 0 leaves the weights as they were and the path stays set; train-mode
    # BatchNorm normalises by the batch, so a second forward gives the same logits.
    with torch.no_grad():
        logits = copy.deepcopy(net).train()(x)
    assert set(metrics) == {"train_loss", "train_acc"}
    assert metrics["train_loss"] == pytest.approx(
        nn.functional.cross_entropy(logits, y).item(), rel=1e-5
    )
    assert metrics["train_acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_spos_is_reproducible_and_resumes_the_same_paths_from_its_state():
    def run(steps: int, state: dict | None = None) -> tuple[list[dict], dict]:
        net, mutator = small_supernet()
        spos = Spos(
            net,
            mutator,
            torch.optim.SGD(net.parameters(), lr=0.01),
            generator=torch.Generator().manual_seed(5),
        )
        if state is not None:
            spos.load_state_dict(state)
        paths = []
        for _ in range(steps):
            spos.step(batch(0), batch(1))
            paths.append(
                {
                    m.space_id: m.active
                    for m in net.modules()
                    if isinstance(m, (OneShotEdge, OneShotOP))
                }
            )
        return paths, spos.state_dict()

    full, _ = run(3)
    assert full == run(3)[0]
    first, state = run(1)
    assert isinstance(state["generator"], torch.Tensor)
    rest, _ = run(2, state)
    assert first + rest == full
    assert full[0] != full[1] or full[1] != full[2]


def test_spos_without_a_generator_keeps_no_state():
    net, mutator = small_supernet()
    spos = Spos(net, mutator, torch.optim.SGD(net.parameters(), lr=0.01))
    assert spos.state_dict() == {}
    with pytest.raises(ValueError, match="generator"):
        spos.load_state_dict({"generator": torch.Generator().get_state()})


def test_spos_rejects_a_state_that_is_not_a_generator_state():
    net, mutator = small_supernet()
    spos = Spos(
        net, mutator, torch.optim.SGD(net.parameters(), lr=0.01), generator=torch.Generator()
    )
    with pytest.raises(ValueError, match="uint8 tensor"):
        spos.load_state_dict({"generator": 3})


def test_spos_needs_a_prepared_mutator():
    net, _ = small_supernet()
    with pytest.raises(ValueError, match="prepare_from_supernet"):
        Spos(net, OneShotMutator(), torch.optim.SGD(net.parameters(), lr=0.01))


# ---------------------------------------------------------------- scoring a path


def images(seed: int, n: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2.0 + shift


def trained_supernet() -> tuple[DartsSearchNetwork, OneShotMutator]:
    """A supernet whose BatchNorm statistics are mixed over a few paths."""
    net, mutator = small_supernet()
    spos = Spos(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.05),
        generator=torch.Generator().manual_seed(0),
    )
    for i in range(3):
        spos.step(batch(i), None)
    return net, mutator


def test_recalibrate_bn_sets_running_stats_to_the_average_of_the_batch_statistics():
    net, mutator = small_supernet()
    mutator.set_subnet(subnet_from_genotype(get_genotype("DARTS_V2")))
    batches = [(images(i, 5, shift=1.0), torch.zeros(5, dtype=torch.long)) for i in range(3)]
    conv = net.stem[0]
    with torch.no_grad():
        means = [conv(x).mean(dim=(0, 2, 3)) for x, _ in batches]
    recalibrate_bn(net, batches, 3)
    torch.testing.assert_close(net.stem[1].running_mean, torch.stack(means).mean(0))
    assert int(net.stem[1].num_batches_tracked) == 3


def test_recalibrate_bn_raises_when_the_loader_is_too_short():
    net, mutator = small_supernet()
    mutator.set_subnet(subnet_from_genotype(get_genotype("DARTS_V2")))
    with pytest.raises(ValueError, match="needs 3 batches.*only 2"):
        recalibrate_bn(net, [(images(i, 2), None) for i in range(2)], 3)


def test_path_accuracy_with_bn_recalibration_equals_an_independent_computation():
    net, mutator = trained_supernet()
    genotype = get_genotype("DARTS_V2")
    bn_batches = [
        (images(10 + i, 6, shift=1.5), torch.zeros(6, dtype=torch.long)) for i in range(3)
    ]
    x_val = images(20, 12)
    # Independently: a copy with the path set, statistics reset to a cumulative average of 3
    # batches, then eval.
    ref_net, ref_mutator = copy.deepcopy((net, mutator))
    ref_mutator.set_subnet(subnet_from_genotype(genotype))
    for m in ref_net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    ref_net.train()
    with torch.no_grad():
        for x, _ in bn_batches:
            ref_net(x)
        ref_net.eval()
        y_val = ref_net(x_val).argmax(1)  # labels the recalibrated path gets all right
    loader = [(x_val[:6], y_val[:6]), (x_val[6:], y_val[6:])]
    assert (
        path_accuracy(
            net, mutator, genotype, loader, recalibrate_bn_batches=3, bn_loader=bn_batches
        )
        == 1.0
    )
    # Without recalibration the stale statistics give other predictions: the check above has power.
    assert path_accuracy(net, mutator, genotype, loader) < 1.0


def test_path_accuracy_without_recalibration_is_the_eval_accuracy_of_the_path():
    net, mutator = trained_supernet()
    genotype = sample_genotype(random.Random(1))
    x, y = images(30, 10), torch.arange(10) % 3
    ref_net, ref_mutator = copy.deepcopy((net, mutator))
    ref_mutator.set_subnet(subnet_from_genotype(genotype))
    ref_net.eval()
    with torch.no_grad():
        expected = (ref_net(x).argmax(1) == y).float().mean().item()
    assert path_accuracy(net, mutator, genotype, [(x[:4], y[:4]), (x[4:], y[4:])]) == pytest.approx(
        expected
    )


def test_path_accuracy_restores_batchnorm_statistics_and_train_mode():
    net, mutator = trained_supernet()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    momenta = [m.momentum for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_batches = [(images(i, 4, shift=3.0), None) for i in range(2)]
    path_accuracy(
        net,
        mutator,
        get_genotype("DARTS_V2"),
        [(images(9, 4), torch.zeros(4, dtype=torch.long))],
        recalibrate_bn_batches=2,
        bn_loader=bn_batches,
    )
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert momenta == [m.momentum for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert net.training


def test_path_accuracy_needs_a_bn_loader_to_recalibrate():
    net, mutator = small_supernet()
    with pytest.raises(ValueError, match="bn_loader"):
        path_accuracy(net, mutator, get_genotype("DARTS_V2"), [], recalibrate_bn_batches=2)


# ---------------------------------------------------------------- evolution


def sep_conv_count(genotype: Genotype) -> float:
    return float(
        sum(
            op == "sep_conv_3x3"
            for cell in (genotype.normal, genotype.reduce)
            for node in cell
            for op, _ in node
        )
    )


def evolve(seed: int = 0, **kwargs):
    return evolution_search(
        sep_conv_count, sample_genotype, mutate_genotype, crossover_genotypes, seed=seed, **kwargs
    )


def test_evolution_best_so_far_never_decreases_and_beats_the_initial_population():
    best, best_score, history = evolve()
    assert len(history) == 20
    assert all(a <= b for a, b in itertools.pairwise(history))
    # history[0] is the best of the initial random population.
    assert best_score > history[0]
    assert best_score == history[-1] == sep_conv_count(best)
    best.validate(steps=STEPS)


def test_evolution_is_deterministic_for_a_seed():
    assert evolve(seed=3) == evolve(seed=3)
    assert evolve(seed=3)[2] != evolve(seed=4)[2] or evolve(seed=3)[0] != evolve(seed=4)[0]


def test_evolution_scores_each_genotype_once_and_at_most_population_per_generation():
    calls = []

    def score(genotype: Genotype) -> float:
        calls.append(genotype)
        return sep_conv_count(genotype)

    evolution_search(
        score,
        sample_genotype,
        mutate_genotype,
        crossover_genotypes,
        population=10,
        generations=5,
        parents=3,
        seed=0,
    )
    assert len(calls) == len(set(calls))
    assert 10 < len(calls) <= 10 * 5


def test_evolution_ends_in_a_space_smaller_than_the_population():
    def sample(rng: random.Random) -> Genotype:
        return sample_genotype(rng, steps=1, primitives=("sep_conv_3x3", "skip_connect"))

    def mutate(g: Genotype, rng: random.Random, prob: float) -> Genotype:
        return mutate_genotype(g, rng, prob, primitives=("sep_conv_3x3", "skip_connect"))

    # One node with inputs {0, 1} and 2 ops per edge: 4 genotypes per cell, 16 in all.
    _, best_score, history = evolution_search(
        sep_conv_count,
        sample,
        mutate,
        crossover_genotypes,
        population=50,
        generations=5,
        parents=5,
        mutation_prob=0.5,
    )
    assert best_score == 4.0 and history[-1] == 4.0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"population": 0}, "population"),
        ({"generations": 0}, "generations"),
        ({"parents": 0}, "parents"),
        ({"mutation_prob": 1.5}, "mutation_prob"),
    ],
)
def test_evolution_rejects_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        evolve(**kwargs)


def test_evolution_rejects_a_nan_score():
    with pytest.raises(ValueError, match="NaN"):
        evolution_search(
            lambda g: float("nan"), sample_genotype, mutate_genotype, crossover_genotypes
        )


def test_evolution_operators_keep_valid_genotypes():
    rng = random.Random(0)
    a, b = sample_genotype(rng), sample_genotype(rng)
    for child in (mutate_genotype(a, rng, 1.0), crossover_genotypes(a, b, rng)):
        child.validate(steps=STEPS)
        assert all(len({j for _, j in node}) == 2 for node in child.normal + child.reduce)
