"""SNAS (Xie et al., "SNAS: Stochastic Neural Architecture Search", ICLR 2019).

Single-level search: every op is a soft Gumbel-softmax sample
``softmax((alpha + g) / tau)`` (``GumbelOP(hard=False)``), and one backward
of the *training* loss gives the gradients of both the weights and the
alphas; both optimizers then step. The temperature is annealed from
``tau_start`` to ``tau_end`` over the search.

Temperature schedule: linear. The SNAS release (SNAS-Series/SNAS-Series,
``SNAS/utils.py``, ``Temp_Scheduler``) anneals
``tau = (1 - epoch / total) * (tau0 - tau_min) + tau_min`` with the defaults
``--temp 1`` and ``--temp_min 0.03`` of ``SNAS/train_search.py``; here the
first epoch runs at ``tau_start`` and the last one at ``tau_end``. (The paper
text itself was not checked for an exponential variant.)

Resource constraint: ``resource_penalty * E[cost]`` is added to the loss,
with ``E[cost] = sum over every mixed op in the supernet of
sum_k softmax(alpha)_k * cost(op k)``, the expected cost of the derived
network under the categorical distribution the alphas define. With
``p = softmax(alpha)`` and ``c`` the decision's costs (each choice's cost
summed over the mutables sharing the decision), its gradient to that alpha
is ``resource_penalty * p * (c - p . c)``. The cost of an op is its number
of weights unless ``resource_costs`` maps op names to costs (e.g. FLOPs).
SNAS' own penalty has further forms (policy gradient, discrete, log); this
is its expectation form with a fixed cost table.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ..mutables import DifferentiableEdge, GumbelOP
from ..mutators import DiffMutator
from .base import accuracy, check_disjoint, optimizer_params
from .contract import NO_CHANGE, SINGLE, DataParallel, EpochChange, FinalStage

Batch = tuple[torch.Tensor, torch.Tensor]

# SNAS release defaults (SNAS/train_search.py): --temp 1, --temp_min 0.03.
TAU_START, TAU_END = 1.0, 0.03

# Builds SNAS' mixed op for DartsSearchNetwork(op_mutable=snas_op_mutable).
snas_op_mutable = functools.partial(GumbelOP, hard=False, tau=TAU_START)


def linear_temperature(epoch: int, num_epochs: int, tau_start: float, tau_end: float) -> float:
    """``tau_start`` at epoch 0, ``tau_end`` at epoch ``num_epochs - 1``, linear between."""
    if num_epochs <= 1:
        return tau_start
    return tau_start + (tau_end - tau_start) * epoch / (num_epochs - 1)


def _positive(value: float, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class Snas:
    """One SNAS step: a single backward of the training loss into weights and alphas.

    ``step(train_batch, val_batch)`` uses only ``train_batch``; ``val_batch``
    is accepted for the common step signature and ignored (SNAS trains both
    parameter sets on the training data).

    Args:
        supernet: a supernet whose op decisions are ``GumbelOP(hard=False)``
            (build it with ``op_mutable=snas_op_mutable``).
        mutator: owns the alphas bound to ``supernet``; ``SnasMutator``
            derives by SNAS' argmax rule.
        weight_optimizer: over exactly the weights (SNAS release: SGD lr
            0.025, momentum 0.9, weight decay 3e-4).
        arch_optimizer: over exactly the alphas (SNAS release: lr 3e-4).
        tau_start: the temperature at the first epoch.
        tau_end: the temperature at the last epoch.
        resource_penalty: weight of the expected cost in the loss; 0 turns it off.
        resource_costs: cost per op name; None counts each op's weights.
        grad_clip: max norm of the weight gradient; None to skip.
        data_parallel: under ``torchrun``, the DDP wrapper and the replicas
            that average the alpha gradients.
    """

    reads_val_batch = False  # single-level: both parameter sets learn on the training batch
    trains_supernet = True

    def __init__(
        self,
        supernet: nn.Module,
        mutator: DiffMutator,
        weight_optimizer: torch.optim.Optimizer,
        arch_optimizer: torch.optim.Optimizer,
        tau_start: float = TAU_START,
        tau_end: float = TAU_END,
        resource_penalty: float = 0.0,
        resource_costs: Mapping[str, float] | None = None,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        grad_clip: float | None = 5.0,
        data_parallel: DataParallel = SINGLE,
    ) -> None:
        self.tau_start = _positive(tau_start, "tau_start")
        self.tau_end = _positive(tau_end, "tau_end")
        if (
            isinstance(resource_penalty, bool)
            or not isinstance(resource_penalty, (int, float))
            or not math.isfinite(resource_penalty)
            or resource_penalty < 0
        ):
            raise ValueError(
                f"resource_penalty must be a finite number >= 0, got {resource_penalty!r}"
            )
        if grad_clip is not None:
            _positive(grad_clip, "grad_clip")
        self.resource_penalty = float(resource_penalty)
        self.supernet = supernet
        self.mutator = mutator
        self.weight_optimizer = weight_optimizer
        self.arch_optimizer = arch_optimizer
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.grad_clip = grad_clip
        self.weights = optimizer_params(weight_optimizer)
        self.alphas = optimizer_params(arch_optimizer)
        check_disjoint(self.weights, self.alphas)
        self.model: nn.Module = data_parallel.wrap(supernet)  # DDP under torchrun
        self.replicas = data_parallel.replicas  # averages the alpha gradients
        self.op_decisions = self._op_decisions()
        self.costs = self._cost_table(resource_costs)
        self.epoch = 0
        self.tau = self.tau_start
        mutator.set_temperature(self.tau)

    def _op_decisions(self) -> list[str]:
        """Space ids of the op decisions; each must be a soft Gumbel op."""
        ops, wrong = [], []
        for space_id, members in self.mutator.search_spaces.items():
            if isinstance(members[0], DifferentiableEdge):
                continue
            if (
                not isinstance(members[0], GumbelOP)
                or members[0].hard
                or space_id not in self.mutator.arch_params
            ):
                wrong.append(space_id)
            ops.append(space_id)
        if wrong:
            raise ValueError(
                f"SNAS needs every op decision to be GumbelOP(hard=False) with an alpha "
                f"(op_mutable=snas_op_mutable); these are not: {wrong}"
            )
        if not ops:
            raise ValueError(
                "SNAS found no op decision in the mutator; call mutator.prepare_from_supernet first"
            )
        return ops

    def _cost_table(self, resource_costs: Mapping[str, float] | None) -> dict[str, torch.Tensor]:
        """Per op decision, the cost of each choice summed over the mutables sharing it."""
        names = {
            name
            for sid in self.op_decisions
            for name in self.mutator.search_spaces[sid][0].full_choice_names
        }
        if resource_costs is not None:
            missing = sorted(names - set(resource_costs))
            unknown = sorted(set(resource_costs) - names)
            if missing or unknown:
                raise ValueError(
                    f"resource_costs must give a cost for exactly the ops of the space; "
                    f"missing: {missing}, unknown: {unknown}"
                )
            for name, cost in resource_costs.items():
                if (
                    isinstance(cost, bool)
                    or not isinstance(cost, (int, float))
                    or not math.isfinite(cost)
                ):
                    raise ValueError(
                        f"resource_costs[{name!r}] must be a finite number, got {cost!r}"
                    )
        table = {}
        for space_id in self.op_decisions:
            members = self.mutator.search_spaces[space_id]
            costs = []
            for name in members[0].full_choice_names:
                if resource_costs is not None:
                    costs.append(float(resource_costs[name]) * len(members))
                else:
                    costs.append(
                        float(sum(p.numel() for m in members for p in m.choices[name].parameters()))
                    )
            alpha = self.mutator.arch_params[space_id]
            table[space_id] = torch.tensor(costs, dtype=alpha.dtype, device=alpha.device)
        return table

    def expected_cost(self) -> torch.Tensor:
        """``sum_decisions softmax(alpha) . cost``, differentiable in the alphas."""
        total: torch.Tensor | None = None
        for space_id in self.op_decisions:
            alpha = self.mutator.arch_params[space_id]
            term = torch.softmax(alpha, dim=-1) @ self.costs[space_id].to(alpha.device, alpha.dtype)
            total = term if total is None else total + term
        # __init__ rejects a supernet without op decisions (_op_decisions), so the loop ran.
        assert total is not None
        return total

    def step(self, train_batch: Batch, val_batch: Batch | None = None) -> dict[str, float]:
        """One backward of the training loss (plus the resource term), then both optimizers step."""
        del val_batch  # single-level: SNAS never reads the validation split during search
        self.supernet.train()
        x, y = train_batch
        self.weight_optimizer.zero_grad(set_to_none=True)
        self.arch_optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        loss = self.criterion(logits, y)
        total = loss
        metrics = {}
        if self.resource_penalty:
            cost = self.expected_cost()
            total = loss + self.resource_penalty * cost
            metrics["expected_cost"] = cost.item()
        total.backward(inputs=self.weights + self.alphas)
        self.replicas.average_grads_(self.alphas)
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
        self.weight_optimizer.step()
        self.arch_optimizer.step()
        return {
            "train_loss": loss.item(),
            "train_acc": accuracy(logits, y).item(),
            "tau": self.tau,
            **metrics,
        }

    # -- schedule ------------------------------------------------------------
    def on_epoch_start(self, epoch: int, num_epochs: int) -> EpochChange:
        """Set the temperature of this epoch on every Gumbel mutable."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < num_epochs:
            raise ValueError(f"epoch must be an int in 0..{num_epochs - 1}, got {epoch!r}")
        self.epoch = epoch
        self.tau = linear_temperature(epoch, num_epochs, self.tau_start, self.tau_end)
        self.mutator.set_temperature(self.tau)
        return NO_CHANGE

    def logged(self) -> dict[str, float]:
        """The temperature of the current epoch."""
        return {"tau": self.tau}

    def final_architecture(self, stage: FinalStage) -> None:
        """The architecture is derived from the alphas (SNAS' argmax rule)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "tau": self.tau}

    def load_state_dict(self, state: dict[str, Any]) -> EpochChange:
        if set(state) != {"epoch", "tau"}:
            raise ValueError(
                f"Snas state needs exactly the keys 'epoch' and 'tau', got {sorted(state)}"
            )
        epoch = state["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"Snas state: epoch must be an int >= 0, got {epoch!r}")
        self.tau = _positive(state["tau"], "Snas state: tau")
        self.epoch = epoch
        self.mutator.set_temperature(self.tau)
        return NO_CHANGE
