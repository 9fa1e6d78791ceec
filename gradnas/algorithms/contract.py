"""The ``Algorithm`` contract: everything the engine asks of a search method.

The engine never checks which method it runs. It asks:

- ``step(train_batch, val_batch)``: one search step; returns float metrics
  (``train_loss`` and ``train_acc`` at least). ``val_batch`` is None for a
  method whose ``reads_val_batch`` is False (SNAS, SPOS), so no validation
  batch is drawn or moved for it.
- ``on_epoch_start(epoch, num_epochs)``: schedules (temperature, warm-up,
  pruning). It *returns* what changed, an :class:`EpochChange`, instead of
  the engine comparing optimizer identities.
- ``state_dict()`` / ``load_state_dict(state)``: the schedule's state.
  Loaded once on a resume, before the supernet's and optimizers' state
  dicts, since it may rebuild what the schedule changed (DrNAS' pruned ops):
  it returns an :class:`EpochChange` too.
- ``logged()``: schedule values the metrics file shows (``tau``).
- ``final_architecture(stage)``: an architecture found after the supernet
  training (SPOS' evolution, random search's trials), or None to derive it
  from the mutator's decisions.
- ``trains_supernet``: False for a method that never trains the supernet
  (random search trains fixed networks in its final stage instead).

The data-parallel model and replicas are passed to a method at construction
(:class:`DataParallel`), never assigned from outside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ..parallel import SINGLE_PROCESS, Replicas
from ..path_ops import PathOps, Subnet

Batch = tuple[torch.Tensor, torch.Tensor]
__all__ = ["Algorithm", "Batch", "DataParallel", "EpochChange", "FinalStage", "PathOps", "Subnet"]


def _no_wrap(module: nn.Module, find_unused: bool = False) -> nn.Module:
    return module


@dataclass(frozen=True)
class DataParallel:
    """How a method runs under ``torchrun``: ``wrap`` puts a supernet into DDP
    (``find_unused`` for methods that run part of it per forward), and
    ``replicas`` averages the gradients DDP does not see (the alphas').
    Single-process, ``wrap`` returns the module itself."""

    replicas: Replicas = SINGLE_PROCESS
    wrap: Callable[..., nn.Module] = _no_wrap


SINGLE = DataParallel()


@dataclass
class EpochChange:
    """What a schedule replaced: new optimizers (over a pruned or widened
    supernet, their state carried over), which the engine then uses and moves
    its learning-rate schedule onto."""

    weight_optimizer: torch.optim.Optimizer | None = None
    arch_optimizer: torch.optim.Optimizer | None = None

    @property
    def changed(self) -> bool:
        return self.weight_optimizer is not None or self.arch_optimizer is not None


NO_CHANGE = EpochChange()


@dataclass
class FinalStage:
    """What a final architecture stage may use, handed over by the engine."""

    paths: PathOps
    train_loader: Iterable[Batch]
    val_loader: Iterable[Batch]
    replicas: Replicas
    seed: int
    log: Callable[[str], None]
    # Trains the fixed network of an architecture from scratch and returns
    # (validation accuracy, weight count); random search's trials.
    train_fixed: Callable[[Any, int], tuple[float, int]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Algorithm(Protocol):
    """A search method, as the engine sees it (see the module docstring)."""

    @property
    def reads_val_batch(self) -> bool:
        """Whether ``step`` reads the validation batch (else it gets None)."""
        ...

    @property
    def trains_supernet(self) -> bool:
        """False for a method that trains no supernet (random search)."""
        ...

    @property
    def weight_optimizer(self) -> torch.optim.Optimizer: ...

    @property
    def arch_optimizer(self) -> torch.optim.Optimizer | None: ...

    def step(self, train_batch: Batch, val_batch: Batch | None) -> dict[str, float]: ...

    def on_epoch_start(self, epoch: int, num_epochs: int) -> EpochChange: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> EpochChange: ...

    def logged(self) -> dict[str, float]: ...

    def final_architecture(self, stage: FinalStage) -> Any | None: ...
