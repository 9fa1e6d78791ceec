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

Progressive schedule (``stages``), as in the release's DARTS-space search
(``DARTS-space/train_search.py``, ``model_search.py``, ``utils.prune``):
the supernet starts with the 7 DARTS ops without ``none`` and partial
channels K = 6; the search runs in stages (two of 25 epochs), each starting
with a warm-up without architecture steps (10 epochs). Before each later
stage every edge keeps its ``num_ops`` strongest ops (4) by the Dirichlet's
mean (the same ranking as the alphas' and their softmax's; the kept ops keep
their alphas) and the partial-channel ops widen to the stage's K (4),
keeping their trained weights (``DartsSearchNetwork.widen_partial_channels``).
The release masks the pruned ops (alphas kept, op weights set to 0 after
sampling the full Dirichlet and renormalising, which is a sample of the
Dirichlet over the kept ops); gradnas removes them, with their weights and
alphas. Both optimizers are rebuilt over the new parameters with their state
carried over: the release rebuilds SGD with its momentum buffers grown the
way the weights were and keeps Adam (whose state is per entry, so the kept
entries' state is what gradnas carries).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from torch import nn
from torch.distributions import Dirichlet, kl_divergence

from ..mutables.dirichlet_op import DirichletOP, dirichlet_concentration
from ..mutators import DiffMutator
from .base import accuracy, check_disjoint, optimizer_params
from .contract import NO_CHANGE, SINGLE, DataParallel, EpochChange, FinalStage
from .darts import needs_val_batch
from .optimizer_state import Successor, rebuild_optimizer

Batch = tuple[torch.Tensor, torch.Tensor]
REGULARIZERS = ("l2", "kl")


@dataclass(frozen=True)
class ProgressiveStage:
    """One stage of DrNAS' progressive search."""

    epochs: int
    warmup_epochs: int  # at the stage's start: weight steps only, the alphas stay as they are
    partial_channels: int  # PC-DARTS' K during the stage
    num_ops: int  # candidate ops per edge during the stage


# xiangning-chen/DrNAS, DARTS-space/train_search.py: train_epochs = [25, 25], architecture steps
# `if epoch >= 10` with the epoch counted within the stage, ks = [6, 4], num_keeps = [7, 4].
PUBLISHED_STAGES = (
    ProgressiveStage(epochs=25, warmup_epochs=10, partial_channels=6, num_ops=7),
    ProgressiveStage(epochs=25, warmup_epochs=10, partial_channels=4, num_ops=4),
)


def check_stages(stages: Sequence[ProgressiveStage]) -> None:
    """Stages that can follow each other: K and the op count never grow."""
    for i, stage in enumerate(stages):
        values = (stage.epochs, stage.warmup_epochs, stage.partial_channels, stage.num_ops)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError(f"stage {i}: every field must be an int, got {stage}")
        if stage.epochs < 1 or not 0 <= stage.warmup_epochs < stage.epochs:
            raise ValueError(
                f"stage {i}: needs epochs >= 1 and 0 <= warmup_epochs < epochs, got {stage}"
            )
        if stage.partial_channels < 2 or stage.num_ops < 1:
            raise ValueError(
                f"stage {i}: needs partial_channels >= 2 and num_ops >= 1, got {stage}"
            )
    for i, (a, b) in enumerate(itertools.pairwise(stages)):
        if b.partial_channels > a.partial_channels or b.num_ops > a.num_ops:
            raise ValueError(
                f"stage {i + 1}: K and num_ops may only shrink from stage to stage, "
                f"got {a} then {b}"
            )


def top_ops(mean_probs: torch.Tensor, names: Sequence[str], num_ops: int) -> list[str]:
    """The ``num_ops`` ops of largest Dirichlet mean, in their built order; ties go to the earlier op."""
    probs = mean_probs.tolist()
    strongest = sorted(range(len(names)), key=lambda i: -probs[i])[:num_ops]
    return [names[i] for i in sorted(strongest)]


class _Widenable(Protocol):
    """A supernet whose partial channels grow in place (``DartsSearchNetwork``)."""

    partial_channels: int

    def widen_partial_channels(
        self, k: int
    ) -> list[tuple[nn.Parameter, nn.Parameter, Callable[[torch.Tensor], torch.Tensor]]]: ...


def _select(index: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``t -> t[index]``, ``index`` moved to ``t``'s device: a pruned alpha's
    kept entries, and its optimizer state's."""
    return lambda t: t[index.to(t.device)]


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
        stages: the progressive schedule (:data:`PUBLISHED_STAGES` is the
            release's); empty for none. It needs a ``DartsSearchNetwork``
            with ``partial_channels`` equal to the first stage's K and
            decisions with the first stage's number of ops, and a search
            whose epochs are the stages' sum.
        data_parallel: under ``torchrun``, how the weight step's forward is
            wrapped in DDP (again after a stage rebuilt the supernet) and the
            alpha gradients averaged.
    """

    reads_val_batch = True
    trains_supernet = True

    def __init__(
        self,
        supernet: nn.Module,
        mutator: DiffMutator,
        weight_optimizer: torch.optim.Optimizer,
        arch_optimizer: torch.optim.Optimizer,
        regularizer: str = "l2",
        kl_weight: float = 1e-3,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        grad_clip: float | None = 5.0,
        stages: Sequence[ProgressiveStage] = (),
        data_parallel: DataParallel = SINGLE,
    ) -> None:
        if regularizer not in REGULARIZERS:
            raise ValueError(
                f"regularizer must be one of {list(REGULARIZERS)}, got {regularizer!r}"
            )
        if (
            isinstance(kl_weight, bool)
            or not isinstance(kl_weight, (int, float))
            or not math.isfinite(kl_weight)
            or kl_weight < 0
        ):
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
        self.data_parallel = data_parallel
        self.model: nn.Module = data_parallel.wrap(supernet)  # DDP under torchrun
        self.replicas = data_parallel.replicas  # averages the alpha gradients
        self.dirichlet_decisions = [
            space_id
            for space_id, members in mutator.search_spaces.items()
            if isinstance(members[0], DirichletOP) and space_id in mutator.arch_params
        ]
        if not self.dirichlet_decisions:
            raise ValueError(
                "DrNAS found no DirichletOP decision with an alpha; build the supernet with "
                "op_mutable=DirichletOP and call mutator.prepare_from_supernet(supernet)"
            )
        self.stages = tuple(stages)
        check_stages(self.stages)
        if self.stages:
            self._check_first_stage()
        self.epoch = 0
        self.stage = 0
        self.kept: list[
            dict[str, list[str]]
        ] = []  # each pruning's kept ops per decision, for the state dict

    def _check_first_stage(self) -> None:
        first = self.stages[0]
        if getattr(self.supernet, "partial_channels", None) != first.partial_channels:
            raise ValueError(
                f"the first stage has K={first.partial_channels}, the supernet "
                f"partial_channels={getattr(self.supernet, 'partial_channels', None)}"
            )
        for space_id in self.dirichlet_decisions:
            count = len(self.mutator.search_spaces[space_id][0].full_choice_names)
            if count != first.num_ops:
                raise ValueError(
                    f"the first stage searches {first.num_ops} ops per edge, {space_id} has {count}"
                )

    def kl_term(self) -> torch.Tensor:
        """Sum over the Dirichlet decisions of KL(Dir(elu(alpha) + 1) || Dir(1))."""
        total = sum(
            dirichlet_kl_to_uniform(self.mutator.arch_params[space_id])
            for space_id in self.dirichlet_decisions
        )
        # __init__ rejects a supernet without Dirichlet decisions, so the sum has a
        # tensor term and is a tensor, never sum's start value 0.
        assert isinstance(total, torch.Tensor)
        return total

    def step(self, train_batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        """One architecture step on ``val_batch``, then one weight step on
        ``train_batch``; during a stage's warm-up the weight step only."""
        self.supernet.train()
        if self.in_warmup:
            logits, loss = self.weight_step(train_batch)
            return {"train_loss": loss.item(), "train_acc": accuracy(logits, train_batch[1]).item()}
        x_val, y_val = needs_val_batch(self, val_batch)
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

        logits, loss = self.weight_step(train_batch)
        return {
            "train_loss": loss.item(),
            "train_acc": accuracy(logits, train_batch[1]).item(),
            "val_loss": val_loss.item(),
            "val_acc": accuracy(val_logits, y_val).item(),
            **metrics,
        }

    def weight_step(self, train_batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the weights on the training loss; the logits and the loss."""
        x_train, y_train = train_batch
        self.weight_optimizer.zero_grad(set_to_none=True)
        logits = self.model(x_train)
        loss = self.criterion(logits, y_train)
        loss.backward(inputs=self.weights)
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
        self.weight_optimizer.step()
        return logits, loss

    # -- schedule ------------------------------------------------------------
    def stage_start(self, stage: int) -> int:
        """The first epoch of ``stage``."""
        return sum(s.epochs for s in self.stages[:stage])

    @property
    def in_warmup(self) -> bool:
        """Whether the current epoch is in its stage's warm-up (no architecture steps)."""
        return (
            bool(self.stages)
            and self.epoch - self.stage_start(self.stage) < self.stages[self.stage].warmup_epochs
        )

    def on_epoch_start(self, epoch: int, num_epochs: int) -> EpochChange:
        """Track the epoch; entering a later stage prunes the ops and widens the
        partial channels (:meth:`enter_stage`), and returns the rebuilt optimizers."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < num_epochs:
            raise ValueError(f"epoch must be an int in 0..{num_epochs - 1}, got {epoch!r}")
        if not self.stages:
            self.epoch = epoch
            return NO_CHANGE
        total = self.stage_start(len(self.stages))
        if total != num_epochs:
            raise ValueError(
                f"the progressive stages cover {total} epochs, the search runs {num_epochs}"
            )
        stage = max(i for i in range(len(self.stages)) if self.stage_start(i) <= epoch)
        if stage < self.stage:
            raise ValueError(
                f"epoch {epoch} is in stage {stage}, before the current stage {self.stage}"
            )
        change = NO_CHANGE
        while self.stage < stage:
            nxt = self.stages[self.stage + 1]
            self.enter_stage(self.strongest_ops(nxt.num_ops), nxt.partial_channels)
            change = self._rebuilt()
        self.epoch = epoch
        return change

    def _rebuilt(self) -> EpochChange:
        return EpochChange(self.weight_optimizer, self.arch_optimizer)

    def logged(self) -> dict[str, float]:
        """Schedule values for the metrics file: none."""
        return {}

    def final_architecture(self, stage: FinalStage) -> None:
        """The architecture is derived from the alphas."""
        return None

    def strongest_ops(self, num_ops: int) -> dict[str, list[str]]:
        """Each decision's ``num_ops`` ops of largest Dirichlet mean, as the release's
        ``prune`` keeps the top alphas (the same ops: elu(a) + 1 grows with a)."""
        kept = {}
        for space_id in self.dirichlet_decisions:
            names = self.mutator.search_spaces[space_id][0].full_choice_names
            mean = DirichletOP.mean_probs(self.mutator.arch_params[space_id].detach())
            kept[space_id] = top_ops(mean, names, num_ops)
        return kept

    def enter_stage(self, kept: dict[str, list[str]], partial_channels: int) -> None:
        """Go to the next stage: prune every decision to its ``kept`` ops (their
        alphas keep their values), widen the partial channels to
        ``partial_channels``, and rebuild both optimizers over the new
        parameters with their state carried over."""
        if self.stage + 1 >= len(self.stages):
            raise ValueError(f"the schedule has no stage after stage {self.stage}")
        if sorted(kept) != sorted(self.dirichlet_decisions):
            raise ValueError(
                f"pruning needs the kept ops of every decision {sorted(self.dirichlet_decisions)}, "
                f"got {sorted(kept)}"
            )
        alpha_successors: dict[nn.Parameter, Successor] = {}
        for space_id, names in kept.items():
            old = self.mutator.arch_params[space_id]
            index = self.mutator.prune_choices(space_id, names)
            alpha_successors[old] = (self.mutator.arch_params[space_id], _select(index))
        weight_successors: dict[nn.Parameter, Successor] = {}
        # nn.Module's attributes type as Tensor | Module. Progressive stages need a
        # supernet that widens (DartsSearchNetwork; __init__ checked partial_channels);
        # the cast does nothing at run time, so any other module fails as it did.
        widenable = cast(_Widenable, self.supernet)
        if partial_channels != widenable.partial_channels:
            for old, new, grow in widenable.widen_partial_channels(partial_channels):
                weight_successors[old] = (new, grow)
        alive = set(self.supernet.parameters())
        for param in self.weights:
            if param not in weight_successors and param not in alive:
                weight_successors[param] = None  # a pruned op's weight
        self.weight_optimizer = rebuild_optimizer(self.weight_optimizer, weight_successors)
        self.arch_optimizer = rebuild_optimizer(self.arch_optimizer, alpha_successors)
        self.weights = optimizer_params(self.weight_optimizer)
        self.alphas = optimizer_params(self.arch_optimizer)
        # DDP knows the parameters it was built with: wrap the changed supernet again.
        self.model = self.data_parallel.wrap(self.supernet)
        self.kept.append({space_id: list(names) for space_id, names in kept.items()})
        self.stage += 1

    def state_dict(self) -> dict[str, Any]:
        """Empty without stages; else the epoch, the stage and each pruning's kept ops,
        from which :meth:`load_state_dict` rebuilds the pruned, widened supernet."""
        if not self.stages:
            return {}
        return {"epoch": self.epoch, "stage": self.stage, "kept": [dict(k) for k in self.kept]}

    def load_state_dict(self, state: dict[str, Any]) -> EpochChange:
        """Restore the schedule, bringing the supernet and optimizers to the saved
        stage first: load this before the supernet's, mutator's and optimizers'
        state dicts, whose shapes are those of that stage."""
        if not self.stages:
            if state:
                raise ValueError(
                    f"DrNas keeps no state without progressive stages, got keys {sorted(state)}"
                )
            return NO_CHANGE
        if set(state) != {"epoch", "stage", "kept"}:
            raise ValueError(
                f"DrNas state needs exactly the keys 'epoch', 'stage', 'kept', got {sorted(state)}"
            )
        epoch, stage, kept = state["epoch"], state["stage"], state["kept"]
        if (
            isinstance(epoch, bool)
            or not isinstance(epoch, int)
            or epoch < 0
            or isinstance(stage, bool)
            or not isinstance(stage, int)
            or not 0 <= stage < len(self.stages)
            or not isinstance(kept, list)
            or len(kept) != stage
        ):
            raise ValueError(
                f"DrNas state: need an epoch >= 0, a stage in 0..{len(self.stages) - 1} and one "
                f"kept-ops entry per stage entered, got epoch={epoch!r}, stage={stage!r}, "
                f"{len(kept) if isinstance(kept, list) else kept!r} kept entries"
            )
        if stage < self.stage or kept[: self.stage] != self.kept:
            raise ValueError(
                f"DrNas state is at stage {stage} with other pruning than this search "
                f"(at stage {self.stage}); load it into a freshly built one"
            )
        change = NO_CHANGE
        while self.stage < stage:
            self.enter_stage(kept[self.stage], self.stages[self.stage + 1].partial_channels)
            change = self._rebuilt()
        self.epoch = epoch
        return change
