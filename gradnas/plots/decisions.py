"""Alpha panels of any search space: one panel per decision, a line per choice.

The DARTS panels (:mod:`.alphas`) lay edges out by node and input; a custom
space has no such layout, so each decision of ``alphas.json`` gets its own
panel in space-id order, the chosen names drawn bold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._figure import new_figure, plot_style, save_figure
from .alphas import DERIVED_LW, OTHER_LW, UNIFORM_STYLE, AlphaHistory


def plot_alphas_per_decision(
    alphas: Mapping[str, Any],
    chosen: Mapping[str, Mapping[str, Sequence[str]]] | None,
    out_prefix: Path,
) -> list[Path]:
    """Draw ``<out_prefix>.png/.svg``: the softmax weight of every choice of
    every decision over the epochs; ``chosen`` (``{space_id: {"chosen": [...]}}``)
    marks the derived choices. Returns the paths written."""
    history = AlphaHistory.from_json(alphas)
    ids = sorted(history.choices)
    if not ids:
        raise ValueError("alphas: no decisions to draw")
    cols = min(4, len(ids))
    rows = math.ceil(len(ids) / cols)
    with plot_style():
        fig = new_figure(figsize=(3.0 * cols, 2.2 * rows + 0.8), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        for k, sid in enumerate(ids):
            ax = axes[k // cols, k % cols]
            kept = set((chosen or {}).get(sid, {}).get("chosen", ()))
            for c, name in enumerate(history.choices[sid]):
                ax.plot(
                    history.epochs,
                    [row[c] for row in history.probs[sid]],
                    label=name,
                    lw=DERIVED_LW if name in kept else OTHER_LW,
                )
            ax.axhline(1 / len(history.choices[sid]), **UNIFORM_STYLE)
            ax.set_title(sid, fontsize=9)
            ax.legend(fontsize=6, frameon=False)
            ax.grid(alpha=0.3)
        for k in range(len(ids), rows * cols):
            axes[k // cols, k % cols].set_axis_off()
        fig.supxlabel("epoch (0: before the first epoch)")
        fig.supylabel("softmax weight")
        return save_figure(fig, Path(out_prefix))
