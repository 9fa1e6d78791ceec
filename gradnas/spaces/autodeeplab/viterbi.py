"""Decoding the network-level path: the most probable path through the trellis (Viterbi).

Auto-DeepLab (Liu et al., CVPR 2019, Section 4.2, "Decoding discrete
architectures") reads its betas as the transition probabilities of a Markov
chain over (layer, level) and keeps the path of maximum probability, found by
the Viterbi algorithm. The score of a path here is the product, over its
layers, of the weight of the transition the path takes into each of its
cells: ``weights[(layer, level)]`` lists one weight per transition of
:func:`~.layout.incoming` ``(layer, level)``, in that order.

The paper normalises each node's betas over its *outgoing* transitions
(its eq. 7); gradnas' network-level decisions are ``DifferentiableEdge``
mutables, whose softmax runs over a node's *incoming* transitions, so the
weights decoded here are softmax(beta) over the inputs of each cell. The
decoding rule (maximum product along the path) is the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .layout import STEM_LEVEL, incoming, levels

Weights = Mapping[tuple[int, int], Sequence[float]]


def _log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf


def _check_weights(weights: Weights, num_layers: int) -> None:
    for layer in range(num_layers):
        for level in levels(layer):
            given = weights.get((layer, level))
            expected = incoming(layer, level)
            if given is None or len(given) != len(expected):
                raise ValueError(
                    f"weights[({layer}, {level})] must list one weight per incoming transition "
                    f"{[name for name, _ in expected]}, got {given!r}"
                )


def path_score(weights: Weights, path: Sequence[int]) -> float:
    """The product of the weights of the transitions ``path`` takes (1.0 for none)."""
    score, previous = 1.0, STEM_LEVEL
    for layer, level in enumerate(path):
        sources = [source for _, source in incoming(layer, level)]
        if previous not in sources:
            raise ValueError(f"no transition into ({layer}, {level}) from level {previous}")
        score *= float(weights[(layer, level)][sources.index(previous)])
        previous = level
    return score


def viterbi_path(weights: Weights, num_layers: int) -> tuple[list[int], float]:
    """The path of maximum :func:`path_score` over ``num_layers`` layers, and its score.

    Max-product dynamic programming in log space: ``best[level]`` is the
    log score of the best path ending at ``level`` of the current layer and
    ``back[layer][level]`` the level it came from. Ties go to the lowest
    source level, then to the lowest final level, so the result is the same
    on every run.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    _check_weights(weights, num_layers)
    best = {STEM_LEVEL: 0.0}
    back: list[dict[int, int]] = []
    for layer in range(num_layers):
        scores, came_from = {}, {}
        for level in levels(layer):
            candidates = [
                (best[source] + _log(float(w)), source)
                for (_, source), w in zip(incoming(layer, level), weights[(layer, level)])
            ]
            # max by score, the lowest source level among equal scores
            score, source = max(candidates, key=lambda c: (c[0], -c[1]))
            scores[level], came_from[level] = score, source
        best = scores
        back.append(came_from)
    end = max(best, key=lambda level: (best[level], -level))
    path = [end]
    for layer in range(num_layers - 1, 0, -1):
        path.append(back[layer][path[-1]])
    path.reverse()
    return path, math.exp(best[end])
