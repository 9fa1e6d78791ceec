"""The end-of-search numbers: how decided the alphas are."""

import pytest

from gradnas.engine.summary import decisiveness

CHOICES = {"e1": ["none", "a", "b"], "e2": ["none", "a", "b"]}
START = {"e1": [0.2, 0.5, 0.3], "e2": [0.2, 0.5, 0.3]}
END = {"e1": [0.1, 0.6, 0.3], "e2": [0.2, 0.2, 0.6]}
SUBNET = {"e1": {"chosen": ["a"]}, "e2": {"chosen": ["b"]}}


def test_mean_weight_of_the_derived_ops_against_uniform_and_changed_decisions():
    d = decisiveness(CHOICES, START, END, SUBNET)
    assert d["derived_mean_weight"] == pytest.approx((0.6 + 0.6) / 2)
    assert d["times_uniform"] == pytest.approx(0.6 * 3)
    assert (d["decisions"], d["changed"]) == (2, 1)  # e2's strongest op went from a to b


def test_uniform_counts_the_choices_left_after_pruning():
    # Seven ops, three pruned (listed with weight 0): uniform is 1/4, not 1/7.
    names = [f"op{i}" for i in range(7)]
    end = {"e": [0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0]}
    start = {"e": [1 / 7] * 6 + [1 / 7 + 0.01]}
    d = decisiveness({"e": names}, start, end, {"e": {"chosen": ["op0"]}}, remaining={"e": 4})
    assert d["times_uniform"] == pytest.approx(0.4 * 4)
    assert decisiveness({"e": names}, start, end, {"e": {"chosen": ["op0"]}})[
        "times_uniform"
    ] == pytest.approx(0.4 * 7)
