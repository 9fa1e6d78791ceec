"""A warning for the DARTS failure mode where the normal cell fills up with
parameter-free ops.

DARTS searches drift towards skip connections and pooling as they run longer
(Zela et al., "Understanding and Robustifying Differentiable Architecture
Search", ICLR 2020; Chen et al., "Progressive DARTS", ICCV 2019). Such a
normal cell has few learnable weights and retrains poorly. P-DARTS' search
space regularisation keeps at most M = 2 skip connections, in the normal cell
only ("restrict skipconnect (normal cell only)" in its train_search.py), so
more than two parameter-free ops is where we warn. The reduction cell is not
counted: pooling there is expected (DARTS_V2's own reduce cell is made of
max-pools and skips).
"""

from __future__ import annotations

from collections import Counter

from ..genotype import Genotype

PARAMETER_FREE_OPS: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect")
MAX_PARAMETER_FREE = 2  # P-DARTS' M = 2 (Chen et al. 2019)


def collapse_warning(genotype: Genotype) -> str | None:
    """One-line warning when the normal cell holds more than two parameter-free ops, else ``None``.

    >>> from gradnas.genotype import DARTS_V2
    >>> collapse_warning(DARTS_V2) is None  # two skip_connects, no pooling
    True
    """
    if not isinstance(genotype, Genotype):
        raise ValueError(f"collapse_warning expects a Genotype, got {type(genotype).__name__}")
    edges = [op for node in genotype.normal for op, _ in node]
    free = Counter(op for op in edges if op in PARAMETER_FREE_OPS)
    count = sum(free.values())
    if count <= MAX_PARAMETER_FREE:
        return None
    which = ", ".join(
        f"{op} x{n}" for op, n in sorted(free.items(), key=lambda item: (-item[1], item[0]))
    )
    return (
        f"warning: the normal cell holds {count} parameter-free ops of {len(edges)} edges ({which}); "
        f"this looks like the DARTS skip-connection collapse (Zela et al. 2020, P-DARTS), "
        f"and such a cell usually retrains poorly"
    )
