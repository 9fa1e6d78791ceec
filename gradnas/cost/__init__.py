"""Costs and budgets: what each choice of a supernet costs, the expected cost
of a supernet under its architecture distribution, and derivation of the
strongest architecture within a budget."""

from .budget import BudgetedSubnet, BudgetError, derive_within_budget
from .expected import (
    FBNET_ALPHA,
    FBNET_BETA,
    expected_cost,
    fbnet_loss,
    hinge_cost_term,
    linear_cost_term,
    softmax_probs,
)
from .table import METRICS, Cost, CostTable, Decision, StandaloneChoices, build_cost_table

__all__ = [
    "FBNET_ALPHA",
    "FBNET_BETA",
    "METRICS",
    "BudgetError",
    "BudgetedSubnet",
    "Cost",
    "CostTable",
    "Decision",
    "StandaloneChoices",
    "build_cost_table",
    "derive_within_budget",
    "expected_cost",
    "fbnet_loss",
    "hinge_cost_term",
    "linear_cost_term",
    "softmax_probs",
]
