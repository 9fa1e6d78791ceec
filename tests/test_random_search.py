"""Tests for the random-search baseline and the genotype sampler it draws from.

Uniformity is checked against exact expected counts with a fixed seed and a
tolerance of about 3.5 standard deviations, so a biased sampler (one that
draws ``none``, repeats an input, or skips a pair) fails.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from gradnas.algorithms.random_search import random_search
from gradnas.genotype import PRIMITIVES, Genotype
from gradnas.genotype_sampling import crossover_genotypes, mutate_genotype, sample_genotype

ALLOWED = [op for op in PRIMITIVES if op != "none"]


@pytest.fixture(scope="module")
def samples() -> list[Genotype]:
    rng = random.Random(0)
    return [sample_genotype(rng) for _ in range(500)]


def edges(genotype: Genotype):
    return [edge for cell in (genotype.normal, genotype.reduce) for node in cell for edge in node]


# ---------------------------------------------------------------- sample_genotype


def test_sampled_genotypes_validate_in_the_darts_space(samples):
    for genotype in samples:
        assert genotype.validate(steps=4) is genotype
        assert genotype.normal_concat == genotype.reduce_concat == (2, 3, 4, 5)


def test_sampled_nodes_keep_two_distinct_inputs_in_input_order(samples):
    for genotype in samples:
        for node in genotype.normal + genotype.reduce:
            inputs = [j for _, j in node]
            assert len(inputs) == 2 and inputs[0] < inputs[1]


def test_sampled_ops_are_uniform_over_the_primitives_but_none(samples):
    counts = Counter(op for genotype in samples for op, _ in edges(genotype))
    assert set(counts) == set(ALLOWED)
    expected = 500 * 16 / len(ALLOWED)  # 16 edges per genotype; std ~ 31
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values()), counts


def test_sampled_input_pairs_are_uniform(samples):
    # Node 3 chooses 2 of 5 states: 10 pairs, each with probability 1/10.
    counts = Counter(tuple(j for _, j in g.normal[3]) for g in samples)
    counts.update(tuple(j for _, j in g.reduce[3]) for g in samples)
    assert set(counts) == set(itertools.combinations(range(5), 2))
    expected = 2 * 500 / 10  # std ~ 9.5
    assert all(abs(n - expected) < 0.33 * expected for n in counts.values()), counts


def test_sample_genotype_is_reproducible_for_a_seed():
    def draw(seed):
        return [sample_genotype(random.Random(seed)) for _ in range(3)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_sample_genotype_follows_steps_inputs_and_concat():
    rng = random.Random(0)
    one = sample_genotype(rng, steps=2, inputs_per_node=1, concat=[3])
    assert [len(node) for node in one.normal + one.reduce] == [1, 1, 1, 1]
    assert one.normal_concat == one.reduce_concat == (3,)
    three = sample_genotype(rng, steps=3, inputs_per_node=3)
    # Node i sees 2 + i states, so node 0 keeps at most 2.
    assert [len(node) for node in three.normal] == [2, 3, 3]
    three.validate(steps=3)


def test_sample_genotype_can_include_none_when_asked():
    rng = random.Random(0)
    ops = {op for _ in range(50) for op, _ in edges(sample_genotype(rng, exclude=()))}
    assert ops == set(PRIMITIVES)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0}, "steps"),
        ({"inputs_per_node": 0}, "inputs_per_node"),
        ({"exclude": PRIMITIVES}, "no op left"),
        ({"primitives": "none"}, "not strings"),
    ],
)
def test_sample_genotype_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_genotype(random.Random(0), **kwargs)


# ---------------------------------------------------------------- mutation and crossover


def test_mutation_with_probability_zero_returns_the_same_genotype():
    genotype = sample_genotype(random.Random(0))
    assert mutate_genotype(genotype, random.Random(1), 0.0) == genotype


def test_mutation_with_probability_one_redraws_edges_and_keeps_nodes_valid():
    rng = random.Random(0)
    genotype = sample_genotype(rng)
    children = [mutate_genotype(genotype, rng, 1.0) for _ in range(20)]
    assert any(child != genotype for child in children)
    for child in children:
        child.validate(steps=4)
        assert all(len({j for _, j in node}) == 2 for node in child.normal + child.reduce)
        assert all(op != "none" for op, _ in edges(child))


def test_mutation_rejects_a_probability_outside_zero_one():
    with pytest.raises(ValueError, match="prob"):
        mutate_genotype(sample_genotype(random.Random(0)), random.Random(0), 1.5)


def test_crossover_takes_every_node_from_one_parent_and_uses_both():
    rng = random.Random(0)
    a, b = sample_genotype(rng), sample_genotype(rng)
    from_a = from_b = 0
    for _ in range(20):
        child = crossover_genotypes(a, b, rng)
        for cell in ("normal", "reduce"):
            for node, node_a, node_b in zip(
                getattr(child, cell), getattr(a, cell), getattr(b, cell)
            ):
                assert node in (node_a, node_b)
                from_a += node == node_a and node != node_b
                from_b += node == node_b and node != node_a
    assert from_a > 0 and from_b > 0


def test_crossover_rejects_parents_of_different_shapes():
    rng = random.Random(0)
    with pytest.raises(ValueError, match="normal cells have 4 and 3 nodes"):
        crossover_genotypes(sample_genotype(rng), sample_genotype(rng, steps=3), rng)


# ---------------------------------------------------------------- random_search


def sep_conv_count(genotype: Genotype) -> float:
    return float(sum(op == "sep_conv_3x3" for op, _ in edges(genotype)))


def test_random_search_returns_the_best_trial_and_keeps_every_trial_in_order():
    best, best_score, trials = random_search(sample_genotype, sep_conv_count, n=30, seed=0)
    rng = random.Random(0)
    expected = [sample_genotype(rng) for _ in range(30)]
    assert [g for g, _ in trials] == expected
    assert [s for _, s in trials] == [sep_conv_count(g) for g in expected]
    assert best_score == max(s for _, s in trials)
    assert best == next(g for g, s in trials if s == best_score)


def test_random_search_breaks_ties_for_the_earliest_trial():
    best, best_score, trials = random_search(sample_genotype, lambda g: 1.0, n=5, seed=0)
    assert best == trials[0][0] and best_score == 1.0
    assert len({g for g, _ in trials}) == 5


def test_random_search_is_deterministic_for_a_seed():
    assert random_search(sample_genotype, sep_conv_count, 10, 4) == random_search(
        sample_genotype, sep_conv_count, 10, 4
    )


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_random_search_rejects_a_bad_trial_count(n):
    with pytest.raises(ValueError, match="n >= 1"):
        random_search(sample_genotype, sep_conv_count, n, 0)


def test_random_search_rejects_a_nan_score():
    with pytest.raises(ValueError, match="trial 0.*NaN"):
        random_search(sample_genotype, lambda g: float("nan"), 3, 0)
