"""Random DARTS genotypes and the genetic operators of an evolutionary search.

Plain Python over :class:`~gradnas.genotype.Genotype` values with a caller's
``random.Random``, so a seed fixes every draw and nothing touches torch.

- :func:`sample_genotype`: uniform over DARTS cells, the sampler of the
  random-search baseline (Li & Talwalkar, "Random Search and
  Reproducibility for Neural Architecture Search", UAI 2019: their
  ``sample_arch`` in liamcli/randomNAS_release draws each node's two inputs
  without replacement and each op uniformly).
- :func:`mutate_genotype` and :func:`crossover_genotypes`: the mutation and
  crossover of SPOS' evolutionary search (Guo et al., ECCV 2020), with one
  (op, input) edge as the gene and a whole node as the unit of crossover, so
  every child keeps distinct inputs per node.

Sampled and mutated nodes list their edges in input order; the order of a
node's edges does not change the network (a node sums its inputs).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from .genotype import PRIMITIVES, Genotype

CELL_TYPES = ("normal", "reduce")


def allowed_ops(primitives: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """The primitives a sampler may draw, in order; an empty list is an error."""
    if isinstance(primitives, str) or isinstance(exclude, str):
        raise ValueError("primitives and exclude must be sequences of op names, not strings")
    excluded = set(exclude)
    ops = [op for op in primitives if op not in excluded]
    if not ops:
        raise ValueError(
            f"no op left to sample: every primitive is excluded by exclude={sorted(excluded)}"
        )
    return ops


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def sample_node(
    rng: random.Random, node: int, ops: Sequence[str], inputs_per_node: int
) -> list[tuple[str, int]]:
    """Node ``node`` of a cell: ``min(inputs_per_node, 2 + node)`` distinct inputs
    among the ``2 + node`` earlier states, uniform over the subsets, each with
    an op uniform over ``ops``; edges in input order."""
    inputs = sorted(rng.sample(range(2 + node), min(inputs_per_node, 2 + node)))
    return [(rng.choice(ops), j) for j in inputs]


def sample_genotype(
    rng: random.Random,
    steps: int = 4,
    primitives: Sequence[str] = PRIMITIVES,
    exclude: Sequence[str] = ("none",),
    inputs_per_node: int = 2,
    concat: Sequence[int] | None = None,
) -> Genotype:
    """A genotype drawn uniformly from the DARTS cell space.

    Each of the ``steps`` nodes of the normal and the reduction cell keeps
    ``inputs_per_node`` distinct inputs (fewer where a node has fewer earlier
    states, as the supernet's edges do), each through an op uniform over
    ``primitives`` minus ``exclude`` (DARTS never derives ``none``). Both
    cells concatenate ``concat``, by default every intermediate node
    (DARTS' ``multiplier = steps``).
    """
    _positive_int(steps, "steps")
    _positive_int(inputs_per_node, "inputs_per_node")
    ops = allowed_ops(primitives, exclude)
    concat = list(range(2, 2 + steps)) if concat is None else list(concat)
    cells = {
        cell: [sample_node(rng, i, ops, inputs_per_node) for i in range(steps)]
        for cell in CELL_TYPES
    }
    return Genotype(
        normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat
    )


def mutate_genotype(
    genotype: Genotype,
    rng: random.Random,
    prob: float,
    primitives: Sequence[str] = PRIMITIVES,
    exclude: Sequence[str] = ("none",),
) -> Genotype:
    """Re-sample each (op, input) edge with probability ``prob``.

    A re-sampled edge of node i draws its input uniformly from the ``2 + i``
    earlier states not used by the node's other edges (its own old input
    included) and its op uniformly from ``primitives`` minus ``exclude``.
    A node with a changed edge is re-listed in input order; the others, and
    the concat lists, are kept as they are.
    """
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
        raise ValueError(f"mutation prob must be a number in [0, 1], got {prob!r}")
    ops = allowed_ops(primitives, exclude)
    cells = {}
    for cell in CELL_TYPES:
        nodes = []
        for i, node in enumerate(getattr(genotype, cell)):
            edges, changed = list(node), False
            for e in range(len(edges)):
                if rng.random() < prob:
                    taken = {j for k, (_, j) in enumerate(edges) if k != e}
                    free = [j for j in range(2 + i) if j not in taken]
                    if not free:
                        raise ValueError(
                            f"{cell} cell, node {i}: no free input to mutate edge {e} into; "
                            f"the node uses inputs {sorted(taken)} of 0..{i + 1}"
                        )
                    edges[e] = (rng.choice(ops), rng.choice(free))
                    changed = True
            nodes.append(sorted(edges, key=lambda edge: edge[1]) if changed else edges)
        cells[cell] = nodes
    return Genotype(
        normal=cells["normal"],
        normal_concat=genotype.normal_concat,
        reduce=cells["reduce"],
        reduce_concat=genotype.reduce_concat,
    )


def crossover_genotypes(a: Genotype, b: Genotype, rng: random.Random) -> Genotype:
    """A child taking each node of each cell from ``a`` or ``b`` with probability 1/2.

    The parents must have the same number of nodes per cell and the same
    concat lists (the child keeps them).
    """
    for cell in CELL_TYPES:
        if len(getattr(a, cell)) != len(getattr(b, cell)):
            raise ValueError(
                f"crossover needs parents of one shape: the {cell} cells have "
                f"{len(getattr(a, cell))} and {len(getattr(b, cell))} nodes"
            )
    if (a.normal_concat, a.reduce_concat) != (b.normal_concat, b.reduce_concat):
        raise ValueError(
            f"crossover needs parents with the same concat lists, got "
            f"{list(a.normal_concat)}/{list(a.reduce_concat)} and "
            f"{list(b.normal_concat)}/{list(b.reduce_concat)}"
        )
    cells = {
        cell: [x if rng.random() < 0.5 else y for x, y in zip(getattr(a, cell), getattr(b, cell))]
        for cell in CELL_TYPES
    }
    return Genotype(
        normal=cells["normal"],
        normal_concat=a.normal_concat,
        reduce=cells["reduce"],
        reduce_concat=a.reduce_concat,
    )
