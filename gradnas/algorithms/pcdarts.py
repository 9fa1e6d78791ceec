"""PC-DARTS (Xu et al., "PC-DARTS: Partial Channel Connections for
Memory-Efficient Architecture Search", ICLR 2020).

The method lives mostly in the search space: partial channel connections
(``DartsSearchNetwork(partial_channels=4)``) and edge normalisation
(``edge_alpha=True``), derived by ``DartsMutator`` with each op's weight
multiplied by softmax(edge alpha). The search step is first-order DARTS,
except that the architecture is frozen during a warm-up: for the first
``warmup_epochs`` epochs only the weights train, so the alphas are not
fitted to untrained ops (the release's ``train_search.py`` runs
``architect.step`` only ``if epoch >= 15``, of 50 epochs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..mutators import DiffMutator
from .base import accuracy
from .contract import NO_CHANGE, SINGLE, DataParallel, EpochChange
from .darts import Darts

Batch = tuple[torch.Tensor, torch.Tensor]

# PC-DARTS' CIFAR-10 search: alphas frozen for 15 of 50 epochs (train_search.py).
PUBLISHED_WARMUP_EPOCHS = 15


class PCDarts(Darts):
    """First-order DARTS with the architecture frozen for ``warmup_epochs`` epochs.

    During warm-up ``step`` is a weight step on the training batch only (the
    validation batch is not used and the metrics have no ``val_*`` entries);
    afterwards it is :meth:`Darts.step`: an architecture step on the
    validation batch, then a weight step on the training batch.
    ``on_epoch_start(epoch, num_epochs)`` sets the epoch; the counter is the
    algorithm's ``state_dict``, so a resumed search keeps its schedule.

    Args:
        warmup_epochs: epochs without architecture steps (PC-DARTS: 15 of
            50; scale it when searching for fewer epochs).
        weight_optimizer: as for :class:`Darts` (PC-DARTS: SGD lr 0.1, momentum 0.9,
            weight decay 3e-4).
        arch_optimizer: as for :class:`Darts` (PC-DARTS: Adam lr 6e-4, betas (0.5, 0.999),
            weight decay 1e-3).
        criterion: as for :class:`Darts`.
        grad_clip: as for :class:`Darts`.
    """

    def __init__(
        self,
        supernet: nn.Module,
        mutator: DiffMutator,
        weight_optimizer: torch.optim.Optimizer,
        arch_optimizer: torch.optim.Optimizer,
        warmup_epochs: int = PUBLISHED_WARMUP_EPOCHS,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        grad_clip: float | None = 5.0,
        data_parallel: DataParallel = SINGLE,
    ) -> None:
        if (
            isinstance(warmup_epochs, bool)
            or not isinstance(warmup_epochs, int)
            or warmup_epochs < 0
        ):
            raise ValueError(f"warmup_epochs must be an int >= 0, got {warmup_epochs!r}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
        super().__init__(
            supernet,
            mutator,
            weight_optimizer,
            arch_optimizer,
            unrolled=False,
            criterion=criterion,
            grad_clip=grad_clip,
            data_parallel=data_parallel,
        )
        self.warmup_epochs = warmup_epochs
        self.epoch = 0

    @property
    def in_warmup(self) -> bool:
        """Whether the current epoch leaves the alphas frozen."""
        return self.epoch < self.warmup_epochs

    def step(self, train_batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        """A weight step during warm-up; a first-order DARTS step afterwards."""
        if not self.in_warmup:
            return super().step(train_batch, val_batch)
        logits, loss = self.weight_step(train_batch)
        return {"train_loss": loss.item(), "train_acc": accuracy(logits, train_batch[1]).item()}

    # -- schedule ------------------------------------------------------------
    def on_epoch_start(self, epoch: int, num_epochs: int) -> EpochChange:
        """Track the epoch; a warm-up covering the whole search is an error,
        since the alphas would never train."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < num_epochs:
            raise ValueError(f"epoch must be an int in 0..{num_epochs - 1}, got {epoch!r}")
        if self.warmup_epochs >= num_epochs:
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) leaves no architecture epoch in a "
                f"{num_epochs}-epoch search; lower it (PC-DARTS: 15 of 50 epochs)"
            )
        self.epoch = epoch
        return NO_CHANGE

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> EpochChange:
        if set(state) != {"epoch"}:
            raise ValueError(f"PCDarts state needs exactly the key 'epoch', got {sorted(state)}")
        epoch = state["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"PCDarts state: epoch must be an int >= 0, got {epoch!r}")
        self.epoch = epoch
        return NO_CHANGE
