"""Training curves of a search: loss and accuracy on the training and
validation halves per epoch, and the Gumbel temperature when the run logs one.

The input is the rows of a run folder's ``metrics.csv`` (``csv.DictReader``
rows, values as text, or dicts of numbers): columns ``epoch``,
``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, and optionally
``tau``; other columns are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._figure import new_figure, plot_style, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REQUIRED_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")
TRAIN_COLOR, VAL_COLOR, TAU_COLOR = "tab:blue", "tab:orange", "tab:purple"


def _value(row: Mapping[str, object], column: str, n: int) -> float:
    value = row.get(column)
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(
            f"metrics row {n + 1}: column {column!r} must be a number, got {value!r}"
        ) from None


def metric_columns(rows: Sequence[Mapping[str, object]]) -> dict[str, list[float]]:
    """The required columns (and ``tau`` where every row has one) as lists of floats, checked."""
    if not rows:
        raise ValueError("metrics: no rows to plot")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(
            f"metrics: missing column(s) {', '.join(missing)}; expected {list(REQUIRED_COLUMNS)}"
        )
    columns = {c: [_value(row, c, n) for n, row in enumerate(rows)] for c in REQUIRED_COLUMNS}
    # A tau column left empty (a run without a temperature schedule) draws no panel.
    if any(row.get("tau") not in (None, "") for row in rows):
        columns["tau"] = [_value(row, "tau", n) for n, row in enumerate(rows)]
    return columns


def curves_figure(columns: Mapping[str, Sequence[float]]) -> Figure:
    """Loss and accuracy panels (train and validation), plus a temperature panel when ``tau`` is given."""
    from matplotlib.ticker import MaxNLocator

    panels = 3 if "tau" in columns else 2
    fig = new_figure(figsize=(4.6 * panels, 3.8), layout="constrained")
    axes = fig.subplots(1, panels, sharex=True)
    epochs = columns["epoch"]
    marker = "o" if len(epochs) <= 30 else None  # single points stay visible in short runs
    for ax, what in zip(axes, ("loss", "acc")):
        ax.plot(
            epochs, columns[f"train_{what}"], color=TRAIN_COLOR, marker=marker, ms=4, label="train"
        )
        ax.plot(
            epochs, columns[f"val_{what}"], color=VAL_COLOR, marker=marker, ms=4, label="validation"
        )
        ax.set_ylabel("cross-entropy loss" if what == "loss" else "accuracy")
        ax.set_title("loss" if what == "loss" else "accuracy")
        ax.legend()
    if panels == 3:
        axes[2].plot(epochs, columns["tau"], color=TAU_COLOR, marker=marker, ms=4)
        axes[2].set_ylabel(r"temperature $\tau$")
        axes[2].set_title("Gumbel-softmax temperature")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("search curves")
    return fig


def plot_curves(metrics_rows: Sequence[Mapping[str, object]], out_prefix: Path) -> list[Path]:
    """Draw ``<out_prefix>.png`` and ``<out_prefix>.svg`` from ``metrics.csv`` rows; returns the
    paths written.
    """
    columns = metric_columns(list(metrics_rows))
    with plot_style():
        return save_figure(curves_figure(columns), Path(out_prefix))
