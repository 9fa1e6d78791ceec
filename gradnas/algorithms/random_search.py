"""Random search: the baseline every NAS method must beat.

Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture
Search", UAI 2019: draw ``n`` architectures uniformly from the space, train
and evaluate each, keep the best. In the DARTS space the sampler is
:func:`gradnas.genotype_sampling.sample_genotype`; the caller's ``evaluate``
trains the derived network (for a few epochs) and returns its validation
accuracy. Draws are with replacement, as in the paper, so with a small
space the same genotype can be evaluated twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import torch

from ..genotype import Genotype
from .contract import NO_CHANGE, Batch, EpochChange, FinalStage


def random_search(
    sample: Callable[[random.Random], Genotype],
    evaluate: Callable[[Genotype], float],
    n: int,
    seed: int,
) -> tuple[Genotype, float, list[tuple[Genotype, float]]]:
    """Evaluate ``n`` genotypes drawn by ``sample(random.Random(seed))``.

    Returns ``(best_genotype, best_score, trials)``: ``trials`` lists every
    ``(genotype, score)`` in the order drawn, and the best is the highest
    score, the earliest trial among equals. The same seed draws the same
    genotypes. A NaN score is an error, since it cannot be ranked.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"random search needs n >= 1 trials, got {n!r}")
    rng = random.Random(seed)
    trials: list[tuple[Genotype, float]] = []
    best = 0
    for i in range(n):
        genotype = sample(rng)
        score = float(evaluate(genotype))
        if math.isnan(score):
            raise ValueError(f"trial {i}: evaluate returned NaN for {genotype}")
        trials.append((genotype, score))
        if score > trials[best][1]:
            best = i
    return trials[best][0], trials[best][1], trials


class RandomSearch:
    """Random search through the engine: no supernet training; the final
    stage trains ``trials`` architectures drawn uniformly from the space
    (``stage.paths.sample``) from scratch with ``stage.train_fixed`` and
    keeps the best on the validation half (:func:`random_search`).

    The supernet is built with one-path mutables only so that the space can
    name its decisions; its weights never train.
    """

    reads_val_batch = False
    trains_supernet = False
    arch_optimizer = None

    def __init__(self, weight_optimizer: torch.optim.Optimizer, trials: int) -> None:
        self.weight_optimizer = weight_optimizer  # unused: the supernet does not train
        self.trials = trials

    def step(self, train_batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        raise RuntimeError("random search trains no supernet; its trials run in the final stage")

    def on_epoch_start(self, epoch: int, num_epochs: int) -> EpochChange:
        return NO_CHANGE

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> EpochChange:
        if state:
            raise ValueError(f"RandomSearch keeps no state, got keys {sorted(state)}")
        return NO_CHANGE

    def logged(self) -> dict[str, float]:
        return {}

    def final_architecture(self, stage: FinalStage) -> Any:
        """Train ``trials`` drawn architectures and return the best (earliest among equals)."""
        train_fixed = stage.train_fixed
        if train_fixed is None:
            raise ValueError("random search needs the engine's train_fixed to train its trials")
        count = [0]

        def evaluate(arch: Any) -> float:
            count[0] += 1
            return train_fixed(arch, count[0])[0]

        best, _, _ = random_search(stage.paths.sample, evaluate, self.trials, stage.seed)
        return best
