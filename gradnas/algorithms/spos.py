"""SPOS (Guo et al., "Single Path One-Shot Neural Architecture Search with
Uniform Sampling", ECCV 2020) in the DARTS cell space.

Two decoupled stages:

1. **Supernet training** (:class:`Spos`): every step draws one path
   uniformly, a DARTS genotype (2 distinct inputs per node, one op on each,
   never ``none``), and takes one weight step on it. There is no
   architecture parameter; only the path's weights run and get a gradient.
2. **Evolutionary search** (:func:`evolution_search`) over genotypes, each
   scored with the shared weights (:func:`path_accuracy`, optionally after
   re-estimating BatchNorm statistics for the path).

:func:`spos_supernet` builds the supernet and :func:`subnet_from_genotype`
turns a genotype into the path dict a :class:`OneShotMutator` sets.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from ..genotype import Genotype
from ..mutables import DifferentiableEdge, OneShotOP
from ..mutables.one_shot_edge import OneShotEdge
from ..mutators.one_shot_mutator import OneShotMutator, Subnet
from ..spaces.darts.search_network import (
    CELL_TYPES,
    DartsSearchNetwork,
    edge_space_id,
    op_space_id,
)
from .base import accuracy, optimizer_params
from .contract import NO_CHANGE, SINGLE, DataParallel, EpochChange, FinalStage

Batch = tuple[torch.Tensor, torch.Tensor]
G = TypeVar("G", bound=Hashable)


# ---------------------------------------------------------------- the supernet and its paths


def spos_supernet(**kwargs: Any) -> DartsSearchNetwork:
    """``DartsSearchNetwork(op_mutable=OneShotOP, **kwargs)`` whose node edges
    are :class:`OneShotEdge` s over the same choices, space ids and ``num_chosen``.

    The search network builds every node as a summing ``DifferentiableEdge``;
    this swaps each for a one-shot edge, so a forward runs one path only.
    """
    fixed = sorted(key for key in ("op_mutable", "edge_alpha") if key in kwargs)
    if fixed:
        raise ValueError(
            f"spos_supernet sets {fixed} itself (one-shot ops, no edge alpha); do not pass them"
        )
    net = DartsSearchNetwork(op_mutable=OneShotOP, **kwargs)
    for cell in net.cells:
        # nn.Module attributes type as Tensor | Module; a search cell's nodes are a
        # ModuleList of DifferentiableEdges (build_cell), which these asserts narrow to.
        nodes = cell.nodes
        assert isinstance(nodes, nn.ModuleList)
        for i, edge in enumerate(nodes):
            assert isinstance(edge, DifferentiableEdge)
            nodes[i] = OneShotEdge(dict(edge.choices), edge.space_id, num_chosen=edge.num_chosen)
    return net


def subnet_from_genotype(genotype: Genotype) -> Subnet:
    """The path of ``genotype`` in the subnet format of ``DartsMutator.search_subnet()``.

    The inverse of ``DartsSearchNetwork.to_genotype``: node i of a cell type
    keeps ``input{j}`` for each of its edges, in the genotype's order, and
    ``{cell_type}_node{i}_input{j}`` chooses that edge's op. Ops of inputs the
    node does not keep are left out. A node naming one input twice is an
    error, since a path keeps distinct inputs.
    """
    subnet: Subnet = {}
    for cell_type in CELL_TYPES:
        for i, node in enumerate(getattr(genotype, cell_type)):
            inputs = [j for _, j in node]
            if len(set(inputs)) != len(inputs):
                raise ValueError(
                    f"{cell_type} cell, node {i}: input(s) used twice in {list(node)}; "
                    f"a path keeps distinct inputs"
                )
            subnet[edge_space_id(cell_type, i)] = {"chosen": [f"input{j}" for j in inputs]}
            for op, j in node:
                subnet[op_space_id(cell_type, i, j)] = {"chosen": [op]}
    return subnet


# ---------------------------------------------------------------- stage 1: supernet training


@dataclass(frozen=True)
class Evolution:
    """SPOS' second stage: the evolutionary search's sizes (the release's
    search script: population 50, 20 generations, top 10 parents, mutation
    0.1) and how many training batches re-estimate BatchNorm per path (0: off)."""

    population: int = 50
    generations: int = 20
    parents: int = 10
    mutation_prob: float = 0.1
    bn_batches: int = 0


class Spos:
    """Single-path supernet training with uniform sampling.

    ``step`` draws a path with ``mutator.sample_subnet(generator)``, sets it
    and takes one (clipped) step of the weight optimizer on the training
    batch. Gradients are zeroed to ``None`` first, so the weights off the
    path keep ``grad is None`` and ``torch.optim.SGD`` skips them entirely:
    neither momentum nor weight decay moves a weight that did not run.

    Args:
        supernet: from :func:`spos_supernet` (or any supernet of one-shot mutables).
        mutator: a :class:`OneShotMutator` prepared on ``supernet``.
        weight_optimizer: over the supernet's weights (SPOS on ImageNet:
            SGD momentum 0.9, weight decay 4e-5, lr 0.5 decayed linearly).
        criterion: the loss (default cross entropy).
        grad_clip: max norm of the weight gradient (5, as the DARTS-space
            methods here); None to skip.
        generator: draws the paths; its state is this object's state, so a
            resumed search draws the same paths. None uses torch's global RNG.
        evolution: the second stage's sizes (:meth:`final_architecture`).
        data_parallel: under ``torchrun``, the DDP wrapper of the forward.
    """

    reads_val_batch = False  # the supernet trains on the training data only
    trains_supernet = True
    arch_optimizer = None  # no architecture parameter

    def __init__(
        self,
        supernet: nn.Module,
        mutator: OneShotMutator,
        weight_optimizer: torch.optim.Optimizer,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        grad_clip: float | None = 5.0,
        generator: torch.Generator | None = None,
        evolution: Evolution = Evolution(),
        data_parallel: DataParallel = SINGLE,
    ) -> None:
        if not mutator.search_spaces:
            raise ValueError(
                "the mutator knows no decision; call mutator.prepare_from_supernet(supernet) first"
            )
        self.supernet = supernet
        self.mutator = mutator
        self.weight_optimizer = weight_optimizer
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.grad_clip = grad_clip
        self.generator = generator
        self.weights = optimizer_params(weight_optimizer)
        self.evolution = evolution
        # Only the path's weights run: DDP must not wait for the others' gradients.
        self.model: nn.Module = data_parallel.wrap(supernet, find_unused=True)
        self.replicas = data_parallel.replicas

    def sample_path(self) -> Subnet:
        """Draw a uniform path, set it on the supernet and return it."""
        subnet = self.mutator.sample_subnet(self.generator)
        self.mutator.set_subnet(subnet)
        return subnet

    def step(self, train_batch: Batch, val_batch: Batch | None = None) -> dict[str, float]:
        """One weight step on ``train_batch`` along a fresh uniform path.

        ``val_batch`` is unused: SPOS trains the supernet on the training
        data only and searches afterwards.
        """
        self.sample_path()
        self.supernet.train()
        x, y = train_batch
        self.weight_optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        loss = self.criterion(logits, y)
        loss.backward(inputs=self.weights)
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
        self.weight_optimizer.step()
        return {"train_loss": loss.item(), "train_acc": accuracy(logits.detach(), y).item()}

    def on_epoch_start(self, epoch: int, num_epochs: int) -> EpochChange:
        """SPOS has no schedule of its own (the weight LR schedule is the engine's)."""
        return NO_CHANGE

    def logged(self) -> dict[str, float]:
        return {}

    def final_architecture(self, stage: FinalStage) -> Any:
        """SPOS' second stage: evolve paths of the trained supernet, each scored
        by the validation accuracy of the shared weights (BatchNorm re-estimated
        per path when ``evolution.bn_batches`` > 0); the best path is the
        architecture."""
        ev, paths = self.evolution, stage.paths

        def score(arch: Any) -> float:
            accuracy = subnet_accuracy(
                self.supernet,
                self.mutator,
                paths.to_subnet(arch),
                stage.val_loader,
                recalibrate_bn_batches=ev.bn_batches,
                bn_loader=stage.train_loader,
            )
            # Data-parallel, each rank scored its shard of the validation half: combine them.
            size = len(stage.val_loader.dataset)  # type: ignore[attr-defined]
            right, total = stage.replicas.sum_([accuracy * size, size])
            return right / total

        start = time.perf_counter()
        best, best_score, history = evolution_search(
            score,
            paths.sample,
            paths.mutate,
            paths.crossover,
            population=ev.population,
            generations=ev.generations,
            parents=ev.parents,
            mutation_prob=ev.mutation_prob,
            seed=stage.seed,
        )
        stage.log(
            f"evolution: {ev.generations} generations of {ev.population} paths in "
            f"{time.perf_counter() - start:.0f}s; best path val_acc {best_score:.4f} "
            f"(first generation {history[0]:.4f})"
        )
        return best

    def state_dict(self) -> dict[str, Any]:
        """The path generator's state (a uint8 tensor), or nothing without a generator."""
        return {} if self.generator is None else {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> EpochChange:
        expected = set() if self.generator is None else {"generator"}
        if set(state) != expected:
            raise ValueError(f"Spos state must have keys {sorted(expected)}, got {sorted(state)}")
        if self.generator is not None:
            value = state["generator"]
            if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8:
                raise ValueError(
                    f"Spos state 'generator' must be a uint8 tensor from Generator.get_state(), "
                    f"got {type(value).__name__}"
                )
            self.generator.set_state(value)
        return NO_CHANGE


# ---------------------------------------------------------------- stage 2: scoring a path


def batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``module`` that keep running statistics."""
    return [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


def recalibrate_bn(model: nn.Module, batches: Iterable[Batch], num_batches: int) -> None:
    """Re-estimate every BatchNorm's running statistics on ``num_batches`` batches.

    Shared weights were trained with statistics mixed over many paths; SPOS
    re-estimates them for the path it scores (the SPOS release resets the
    statistics and runs 200 training batches in train mode before
    evaluating). Here the statistics are reset and ``momentum=None`` makes
    them the plain cumulative average of the batches, not an EMA weighted
    to the last ones. Runs in train mode without gradients; the BatchNorm
    layers are left with ``momentum=None``.
    """
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise ValueError(f"num_batches must be an int >= 1, got {num_batches!r}")
    for bn in batchnorms(model):
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    device = _device_of(model)
    seen = 0
    with torch.no_grad():
        for x, _ in batches:
            if seen == num_batches:
                break
            model(x.to(device))
            seen += 1
    if seen < num_batches:
        raise ValueError(
            f"BatchNorm recalibration needs {num_batches} batches, the loader gave only {seen}"
        )


def path_accuracy(
    supernet: nn.Module,
    mutator: OneShotMutator,
    genotype: Genotype,
    loader: Iterable[Batch],
    recalibrate_bn_batches: int = 0,
    bn_loader: Iterable[Batch] | None = None,
) -> float:
    """Top-1 accuracy over ``loader`` of the shared weights along ``genotype``'s path.

    With ``recalibrate_bn_batches = N > 0`` the BatchNorm statistics are first
    re-estimated for the path on N batches of ``bn_loader`` (training data,
    as in SPOS; see :func:`recalibrate_bn`). The supernet's BatchNorm
    statistics, momenta and train/eval mode are restored afterwards, so
    scoring a path leaves the supernet as it was; the path stays set.
    """
    if (
        isinstance(recalibrate_bn_batches, bool)
        or not isinstance(recalibrate_bn_batches, int)
        or recalibrate_bn_batches < 0
    ):
        raise ValueError(
            f"recalibrate_bn_batches must be an int >= 0, got {recalibrate_bn_batches!r}"
        )
    if recalibrate_bn_batches and bn_loader is None:
        raise ValueError(
            "recalibrate_bn_batches > 0 needs bn_loader (training batches to re-estimate BatchNorm on)"
        )
    return subnet_accuracy(
        supernet, mutator, subnet_from_genotype(genotype), loader, recalibrate_bn_batches, bn_loader
    )


def subnet_accuracy(
    supernet: nn.Module,
    mutator: OneShotMutator,
    subnet: Subnet,
    loader: Iterable[Batch],
    recalibrate_bn_batches: int = 0,
    bn_loader: Iterable[Batch] | None = None,
) -> float:
    """Top-1 accuracy over ``loader`` of the shared weights along the path ``subnet``
    (see :func:`path_accuracy`)."""
    mutator.set_subnet(subnet)
    was_training = supernet.training
    saved = [
        (bn, bn.momentum, {k: v.clone() for k, v in bn.state_dict().items()})
        for bn in batchnorms(supernet)
    ]
    try:
        if recalibrate_bn_batches:
            if bn_loader is None:
                raise ValueError(
                    "recalibrate_bn_batches > 0 needs bn_loader (training batches to re-estimate "
                    "BatchNorm on)"
                )
            recalibrate_bn(supernet, bn_loader, recalibrate_bn_batches)
        return eval_accuracy(supernet, loader)
    finally:
        for bn, momentum, state in saved:
            bn.load_state_dict(state)
            bn.momentum = momentum
        supernet.train(was_training)


def eval_accuracy(model: nn.Module, loader: Iterable[Batch]) -> float:
    """Top-1 accuracy of ``model`` in eval mode over every batch of ``loader``."""
    model.eval()
    device = _device_of(model)
    correct = torch.zeros((), dtype=torch.long, device=device)
    count = 0
    with torch.no_grad():
        for x, y in loader:
            y = y.to(device)
            correct += (model(x.to(device)).argmax(dim=1) == y).sum()
            count += len(y)
    if count == 0:
        raise ValueError("the evaluation loader yielded no samples")
    return correct.item() / count


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


# ---------------------------------------------------------------- stage 2: evolution


def evolution_search(
    score: Callable[[G], float],
    sample: Callable[[random.Random], G],
    mutate: Callable[[G, random.Random, float], G],
    crossover: Callable[[G, G, random.Random], G],
    population: int = 50,
    generations: int = 20,
    parents: int = 10,
    mutation_prob: float = 0.1,
    seed: int = 0,
) -> tuple[G, float, list[float]]:
    """SPOS' evolutionary architecture search; returns ``(best, best_score, history)``.

    Defaults are SPOS' (the release's search script,
    megvii-model/SinglePathOneShot ``src/Search/search.py``, as read in its
    forks: ``--population-num 50``, ``--max-epochs 20``, ``--select-num 10``,
    ``--m_prob 0.1``, 25 children by mutation and 25 by crossover; mmrazor's
    SPOS search config uses the same numbers).

    1. Draw ``population`` distinct genotypes with ``sample(rng)``.
    2. Each generation: score every new candidate once (``score`` is called
       once per distinct genotype), keep the ``parents`` best seen so far
       (ties: the earlier scored), and record the best score so far in
       ``history`` (non-decreasing, one entry per generation).
    3. The next candidates: ``population // 2`` by ``mutate(parent, rng,
       mutation_prob)`` of a random parent, ``population // 2`` by
       ``crossover(p1, p2, rng)`` of two random parents, the rest by
       ``sample(rng)``; each must be new (never scored, not drawn twice),
       with up to 10 tries per wanted child as in the release, so a small
       space yields fewer children rather than a hang.

    Everything random comes from ``random.Random(seed)``, so a seed (and a
    deterministic ``score``) fixes the result.
    """
    for name, value in (
        ("population", population),
        ("generations", generations),
        ("parents", parents),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if (
        isinstance(mutation_prob, bool)
        or not isinstance(mutation_prob, (int, float))
        or not 0.0 <= mutation_prob <= 1.0
    ):
        raise ValueError(f"mutation_prob must be a number in [0, 1], got {mutation_prob!r}")
    rng = random.Random(seed)
    scores: dict[G, float] = {}

    def new_candidates(make: Callable[[], G], wanted: int, taken: set[G]) -> list[G]:
        found: list[G] = []
        for _ in range(10 * wanted):
            if len(found) == wanted:
                break
            candidate = make()
            if candidate not in scores and candidate not in taken:
                taken.add(candidate)
                found.append(candidate)
        return found

    candidates = new_candidates(lambda: sample(rng), population, set())
    top: list[G] = []
    history: list[float] = []
    for generation in range(generations):
        for candidate in candidates:
            scored = float(score(candidate))
            if math.isnan(scored):
                raise ValueError(f"score returned NaN for {candidate}")
            scores[candidate] = scored
        # A stable sort: among equal scores the parents kept before stay ahead.
        top = sorted(top + candidates, key=lambda g: -scores[g])[:parents]
        history.append(scores[top[0]])
        if generation == generations - 1:
            break
        taken: set[G] = set()
        half = population // 2

        def mutant(top: list[G] = top) -> G:
            return mutate(rng.choice(top), rng, mutation_prob)

        def child(top: list[G] = top) -> G:
            return crossover(rng.choice(top), rng.choice(top), rng)

        candidates = new_candidates(mutant, half, taken)
        candidates += new_candidates(child, half, taken)
        candidates += new_candidates(lambda: sample(rng), population - len(candidates), taken)
    return top[0], scores[top[0]], history
