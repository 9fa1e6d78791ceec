"""The network-level trellis of Auto-DeepLab: which resolutions each layer has and how they connect.

Liu et al., "Auto-DeepLab: Hierarchical Neural Architecture Search for
Semantic Image Segmentation", CVPR 2019, Section 3.2 and Figure 1: after a
stem that brings the image to 1/4 of its resolution, each of ``L`` layers has
a cell at every downsampling rate ``s`` in {4, 8, 16, 32} it can reach, and a
cell at layer ``l`` and rate ``s`` reads the output of layer ``l - 1`` at rate
``s / 2`` (downsampled), ``s`` (kept) or ``2 s`` (upsampled). A rate is
written here as its *level* ``k``: ``s = 4 * 2**k``, so levels 0..3.

Layer 0 reads the stem (level 0), so it has levels 0 and 1; layer ``l`` has
levels ``0..min(l + 1, 3)``. A network-level architecture is a *path*: one
level per layer, each within one level of the one before (the first one
within one level of the stem's).
"""

from __future__ import annotations

from collections.abc import Sequence

# Downsampling rates 4, 8, 16, 32 (the paper's s), as levels 0..3.
NUM_LEVELS = 4
# The stem's output is at level 0 (rate 4); the level of the stem's earlier
# output (rate 2, the first cell's second input) is written as -1.
STEM_LEVEL = 0
STEM_HALF_LEVEL = -1
# Each transition is named by how it changes the resolution of its input.
DOWN, SAME, UP = "down", "same", "up"
# The source level of a transition into level k is k - 1, k or k + 1.
TRANSITION_OFFSETS = {DOWN: -1, SAME: 0, UP: 1}


def rate(level: int) -> int:
    """The downsampling rate ``s`` of a level (4, 8, 16, 32)."""
    return 4 << level  # 4 * 2**level, typed as an int


def levels(layer: int) -> list[int]:
    """The levels that layer ``layer`` (0-based) has; layer -1 is the stem."""
    if layer < 0:
        return [STEM_LEVEL]
    return list(range(min(layer + 2, NUM_LEVELS)))


def incoming(layer: int, level: int) -> list[tuple[str, int]]:
    """The transitions into the cell at (layer, level): (name, source level), in
    the order down, same, up (the choices of its network-level decision)."""
    sources = levels(layer - 1)
    return [
        (name, level + offset)
        for name, offset in TRANSITION_OFFSETS.items()
        if level + offset in sources
    ]


def prev_prev_level(layer: int, level: int) -> int:
    """The level of the second input (h^{l-2}) of the supernet's cell at (layer, level).

    It is the output of layer ``layer - 2`` at the same level where that
    layer has it, else at that layer's nearest (highest) level; the stem's
    half-resolution output for layer 0, the stem's output for layer 1.
    """
    if layer == 0:
        return STEM_HALF_LEVEL
    return min(level, max(levels(layer - 2)))


def check_path(path: Sequence[int]) -> list[int]:
    """``path`` as a list after checking it is a network-level path; a ValueError says why not."""
    checked = list(path)
    if not checked:
        raise ValueError("a path needs at least one layer")
    previous = STEM_LEVEL
    for layer, level in enumerate(checked):
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValueError(f"path[{layer}] must be an int level, got {level!r}")
        if not 0 <= level < NUM_LEVELS:
            raise ValueError(
                f"path[{layer}] = {level}: a level must be in 0..{NUM_LEVELS - 1} "
                f"(rates 4, 8, 16, 32)"
            )
        if abs(level - previous) > 1:
            raise ValueError(
                f"path[{layer}] = {level} follows level {previous}: a layer moves at most one "
                f"level (rate x2 or /2)"
            )
        previous = level
    return checked


def transition_name(source: int, target: int) -> str:
    """The name of the transition from level ``source`` into level ``target``."""
    for name, offset in TRANSITION_OFFSETS.items():
        if target + offset == source:
            return name
    raise ValueError(f"no transition from level {source} to level {target}")
