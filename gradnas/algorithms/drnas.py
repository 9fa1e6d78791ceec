"""DrNAS (Chen et al., "DrNAS: Dirichlet Neural Architecture Search", ICLR 2021).

The architecture is a Dirichlet distribution per decision,
Dirichlet(elu(alpha) + 1), and the supernet's ops (``DirichletOP``) weigh
their candidates by a reparameterised sample of it. The search step is
first-order bilevel: the alphas take one step on the validation loss (the
sample's pathwise gradient), then the weights one step on the training loss.

Regularisation of the concentration, as in the release
(xiangning-chen/DrNAS, ``architect.py`` and ``model_search.py``):

- ``'l2'`` (the default there, ``reg_type='l2'``, ``reg_scale=1e-3``): the
  architecture optimizer's weight decay, Adam(lr 6e-4, betas (0.5, 0.999),
  weight_decay 1e-3). Nothing is added to the loss; build the
  arch optimizer with that weight decay.
- ``'kl'``: ``kl_weight * sum_decisions KL(Dir(elu(alpha) + 1) || Dir(1))`` is
  added to the validation loss (the release then sets the Adam weight decay
  to 0).

Not included: the release's progressive schedule (partial channels K = 6
then 4 with the ops pruned from 7 to 4 per edge between two 25-epoch
stages), and its 10 warm-up epochs per stage without architecture steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Dirichlet, kl_divergence

from ..mutables.dirichlet_op import DirichletOP, dirichlet_concentration
from ..mutators import DiffMutator
from ..parallel import SINGLE_PROCESS
from .base import accuracy, check_disjoint, optimizer_params

Batch = tuple[torch.Tensor, torch.Tensor]
REGULARIZERS = ("l2", "kl")


def dirichlet_kl_to_uniform(arch_param: torch.Tensor) -> torch.Tensor:
    """KL(Dirichlet(elu(alpha) + 1) || Dirichlet(1, ..., 1)), DrNAS' anchor prior."""
    concentration = dirichlet_concentration(arch_param)
    return kl_divergence(Dirichlet(concentration), Dirichlet(torch.ones_like(concentration)))


class DrNas:
    """One first-order DrNAS step: an architecture step on the validation
    batch (plus the KL term when ``regularizer='kl'``), then a weight step on
    the training batch.

    Args:
        supernet: a supernet whose op decisions are ``DirichletOP``
            (``DartsSearchNetwork(op_mutable=DirichletOP)``).
        mutator: owns the alphas bound to ``supernet`` (``DartsMutator``
            derives with softmax(alpha), as the DrNAS release does).
        weight_optimizer: over exactly the weights (release: SGD lr 0.1,
            momentum 0.9, weight decay 3e-4).
        arch_optimizer: over exactly the alphas (release: Adam lr 6e-4,
            betas (0.5, 0.999), weight decay 1e-3 for ``'l2'``, 0 for ``'kl'``).
        regularizer: ``'l2'`` or ``'kl'``.
        kl_weight: the KL term's weight (release: ``reg_scale`` 1e-3); used by ``'kl'`` only.
        grad_clip: max norm of the weight gradient (release: 5); None to skip.
    """

    def __init__(self, supernet: nn.Module, mutator: DiffMutator, weight_optimizer: torch.optim.Optimizer,
                 arch_optimizer: torch.optim.Optimizer, regularizer: str = "l2", kl_weight: float = 1e-3,
                 criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 grad_clip: float | None = 5.0) -> None:
        if regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {list(REGULARIZERS)}, got {regularizer!r}")
        if (isinstance(kl_weight, bool) or not isinstance(kl_weight, (int, float))
                or not math.isfinite(kl_weight) or kl_weight < 0):
            raise ValueError(f"kl_weight must be a finite number >= 0, got {kl_weight!r}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
        self.supernet = supernet
        self.mutator = mutator
        self.weight_optimizer = weight_optimizer
        self.arch_optimizer = arch_optimizer
        self.regularizer = regularizer
        self.kl_weight = float(kl_weight)
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.grad_clip = grad_clip
        self.weights = optimizer_params(weight_optimizer)
        self.alphas = optimizer_params(arch_optimizer)
        check_disjoint(self.weights, self.alphas)
        self.model: nn.Module = supernet  # the weight step's forward; a DDP wrapper under torchrun
        self.replicas = SINGLE_PROCESS  # averages the alpha gradients (gradnas.algorithms.base)
        self.dirichlet_decisions = [space_id for space_id, members in mutator.search_spaces.items()
                                    if isinstance(members[0], DirichletOP) and space_id in mutator.arch_params]
        if not self.dirichlet_decisions:
            raise ValueError("DrNAS found no DirichletOP decision with an alpha; build the supernet with "
                             "op_mutable=DirichletOP and call mutator.prepare_from_supernet(supernet)")

    def kl_term(self) -> torch.Tensor:
        """Sum over the Dirichlet decisions of KL(Dir(elu(alpha) + 1) || Dir(1))."""
        return sum(dirichlet_kl_to_uniform(self.mutator.arch_params[space_id])
                   for space_id in self.dirichlet_decisions)

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """One architecture step on ``val_batch``, then one weight step on ``train_batch``."""
        self.supernet.train()
        x_val, y_val = val_batch
        x_train, y_train = train_batch
        metrics = {}

        self.arch_optimizer.zero_grad(set_to_none=True)
        val_logits = self.supernet(x_val)
        val_loss = self.criterion(val_logits, y_val)
        arch_loss = val_loss
        if self.regularizer == "kl":
            kl = self.kl_term()
            arch_loss = val_loss + self.kl_weight * kl
            metrics["kl"] = kl.item()
        arch_loss.backward(inputs=self.alphas)
        self.replicas.average_grads_(self.alphas)
        self.arch_optimizer.step()

        self.weight_optimizer.zero_grad(set_to_none=True)
        logits = self.model(x_train)
        loss = self.criterion(logits, y_train)
        loss.backward(inputs=self.weights)
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
        self.weight_optimizer.step()

        return {"train_loss": loss.item(), "train_acc": accuracy(logits, y_train).item(),
                "val_loss": val_loss.item(), "val_acc": accuracy(val_logits, y_val).item(), **metrics}

    # -- schedule ------------------------------------------------------------
    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """DrNAS without its progressive schedule has no schedule of its own."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < num_epochs:
            raise ValueError(f"epoch must be an int in 0..{num_epochs - 1}, got {epoch!r}")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"DrNas keeps no state, got keys {sorted(state)}")
