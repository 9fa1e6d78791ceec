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

from ..genotype import Genotype


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
