"""How the architecture weights moved during a search: the softmax weight of
every op on every edge, epoch by epoch, one small panel per edge.

The input is the content of a run folder's ``alphas.json`` (written by
``gradnas.engine.search``): ``{"choices": {space_id: [op names]}, "history":
[{"epoch": e, "probs": {space_id: [weights]}}, ...]}``. Op decisions have
space ids ``<cell>_node<i>_input<j>`` (the op on the edge from state j into
node i); other decisions, such as PC-DARTS' edge weights ``<cell>_node<i>``,
are not drawn here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ..genotype import Genotype
from ._figure import new_figure, plot_style, save_figure
from .cells import CELL_TYPES, state_name

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RGBA = tuple[float, float, float, float]


class LineStyle(TypedDict):
    """Keyword arguments of a matplotlib line."""

    color: str
    lw: float
    ls: str


OP_SPACE_ID = re.compile(r"^(normal|reduce)_node(\d+)_input(\d+)$")
DERIVED_LW, OTHER_LW = 2.8, 1.2  # line widths: the op the genotype keeps stands out
UNIFORM_STYLE: LineStyle = {
    "color": "0.4",
    "lw": 1.0,
    "ls": ":",
}  # reference line at the weight every op starts from
KEPT_MARK = "\u2605"  # a star before the title of a panel whose edge the genotype keeps


@dataclass(frozen=True)
class AlphaHistory:
    """Checked ``alphas.json`` content: the epochs, and per op decision its choices and weights per epoch."""

    epochs: tuple[float, ...]
    choices: dict[str, tuple[str, ...]]
    probs: dict[str, tuple[tuple[float, ...], ...]]  # space id -> per epoch, one weight per choice

    @classmethod
    def from_json(cls, alphas: Mapping[str, Any]) -> AlphaHistory:
        """Check the structure and lengths of ``alphas``; every problem is one ValueError naming it."""
        if not isinstance(alphas, Mapping) or "choices" not in alphas or "history" not in alphas:
            raise ValueError("alphas: expected a dict with keys 'choices' and 'history'")
        choices, history = alphas["choices"], alphas["history"]
        if not isinstance(choices, Mapping) or not all(
            isinstance(c, Sequence) for c in choices.values()
        ):
            raise ValueError("alphas: 'choices' must map each space id to a list of choice names")
        if not isinstance(history, Sequence) or not history:
            raise ValueError(
                "alphas: 'history' must be a non-empty list of {'epoch', 'probs'} entries"
            )
        epochs: list[float] = []
        probs: dict[str, list[tuple[float, ...]]] = {sid: [] for sid in choices}
        for n, entry in enumerate(history):
            if (
                not isinstance(entry, Mapping)
                or "epoch" not in entry
                or not isinstance(entry.get("probs"), Mapping)
            ):
                raise ValueError(f"alphas: history[{n}] must be a dict with 'epoch' and 'probs'")
            epochs.append(_number(entry["epoch"], f"history[{n}].epoch"))
            for sid, names in choices.items():
                weights = entry["probs"].get(sid)
                if not isinstance(weights, Sequence) or len(weights) != len(names):
                    raise ValueError(
                        f"alphas: history[{n}] (epoch {entry['epoch']}): {sid!r} needs "
                        f"{len(names)} weights, one per choice, got {weights!r}"
                    )
                probs[sid].append(
                    tuple(_number(w, f"history[{n}].probs[{sid!r}]") for w in weights)
                )
        return cls(
            tuple(epochs),
            {sid: tuple(names) for sid, names in choices.items()},
            {sid: tuple(rows) for sid, rows in probs.items()},
        )


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"alphas: {where} must be a number, got {value!r}")
    return float(value)


def op_edges(history: AlphaHistory, cell_type: str) -> dict[tuple[int, int], str]:
    """(node, input state) -> space id of every op decision of one cell type."""
    edges: dict[tuple[int, int], str] = {}
    for sid in history.choices:
        match = OP_SPACE_ID.match(sid)
        if match and match[1] == cell_type:
            edges[int(match[2]), int(match[3])] = sid
    return edges


def kept_ops(
    genotype: Genotype | None,
    cell_type: str,
    edges: Mapping[tuple[int, int], str],
    history: AlphaHistory,
) -> dict[tuple[int, int], str]:
    """(node, input state) -> op for every edge the genotype keeps; each must be a drawn edge and choice."""
    if genotype is None:
        return {}
    kept: dict[tuple[int, int], str] = {}
    for i, node in enumerate(getattr(genotype, cell_type)):
        for op, j in node:
            sid = edges.get((i, j))
            if sid is None or op not in history.choices[sid]:
                raise ValueError(
                    f"genotype {cell_type} cell keeps ({op!r}, {j}) into node {i}, "
                    f"which has no weights in alphas ({cell_type}_node{i}_input{j})"
                )
            kept[i, j] = op
    return kept


def alphas_figure(history: AlphaHistory, genotype: Genotype | None, cell_type: str) -> Figure:
    """One cell type's figure: a panel per edge (row: node, column: input state), a line per op."""
    edges = op_edges(history, cell_type)
    if not edges:
        raise ValueError(
            f"alphas: no op decisions of the {cell_type} cell ({cell_type}_node<i>_input<j>)"
        )
    kept = kept_ops(genotype, cell_type, edges, history)
    rows, cols = max(i for i, _ in edges) + 1, max(j for _, j in edges) + 1
    ops = list(dict.fromkeys(op for sid in edges.values() for op in history.choices[sid]))
    palette = "tab10" if len(ops) <= 10 else "tab20"
    from matplotlib import colormaps

    colors = {op: colormaps[palette](k) for k, op in enumerate(ops)}
    # With 3+ nodes the legend fits the empty top-right panels (node 0 reads only two states), else
    # it goes right.
    legend_inside = cols >= 4 and (0, cols - 1) not in edges and (0, cols - 2) not in edges
    fig = new_figure(
        figsize=(2.6 * cols + (0 if legend_inside else 2.0), 1.9 * rows + 1.1), layout="constrained"
    )
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for i in range(rows):
        for j in range(cols):
            if (i, j) in edges:
                _panel(
                    axes[i, j],
                    history,
                    edges[i, j],
                    i,
                    j,
                    kept.get((i, j)),
                    genotype is not None,
                    colors,
                )
            else:
                axes[i, j].set_axis_off()  # node i reads only states 0..i+1
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    # Shared limits that fit the data, not 0..1: early in a search every weight sits near uniform.
    weights = [w for sid in edges.values() for row in history.probs[sid] for w in row]
    pad = 0.06 * (max(weights) - min(weights)) or 0.01
    axes[0, 0].set_ylim(max(min(weights) - pad, 0.0), min(max(weights) + pad, 1.0))
    axes[0, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = [Line2D([], [], color=colors[op], lw=2) for op in ops] + [
        Line2D([], [], **UNIFORM_STYLE)
    ]
    labels = [*list(ops), "uniform (1 / number of ops)"]
    if genotype is not None:  # explain the marks in the legend, which has room for them
        handles += [
            Line2D([], [], color="black", lw=DERIVED_LW),
            Line2D([], [], ls="", marker=f"${KEPT_MARK}$", color="black", ms=10),
        ]
        labels += ["op the genotype keeps", "edge the genotype keeps"]
    if legend_inside:  # anchored to the empty top-right panel, evaluated after the layout moved it
        fig.legend(
            handles,
            labels,
            loc="upper right",
            bbox_to_anchor=(1, 1),
            bbox_transform=axes[0, cols - 1].transAxes,
            ncols=2,
            frameon=False,
        )
    else:
        fig.legend(handles, labels, loc="outside right upper", frameon=False)
    fig.supxlabel("epoch (0: before the first epoch)")
    fig.supylabel("softmax weight")
    fig.suptitle(f"{cell_type} cell: softmax weight of each op, per edge")
    return fig


def _panel(
    ax: Axes,
    history: AlphaHistory,
    sid: str,
    i: int,
    j: int,
    kept_op: str | None,
    marking: bool,
    colors: Mapping[str, RGBA],
) -> None:
    """One edge's panel: a line per op over the epochs. When ``marking`` (a genotype is given), a kept
    edge gets a star, a bold title and frame, and a dropped edge a grey title."""
    few = len(history.epochs) <= 20  # mark the points while they are few enough to see
    for k, op in enumerate(history.choices[sid]):
        derived = kept_op == op
        ax.plot(
            history.epochs,
            [row[k] for row in history.probs[sid]],
            color=colors[op],
            label=op,
            lw=DERIVED_LW if derived else OTHER_LW,
            alpha=1.0 if derived else 0.8,
            zorder=3 if derived else 2,
            marker="o" if few else None,
            ms=3,
        )
    source = f"${state_name(j)}$" if j < 2 else f"node {j - 2}"
    title = f"node {i} \u2190 {source}"
    if kept_op is not None:
        ax.set_title(f"{KEPT_MARK} {title}", fontweight="bold")
        for spine in ax.spines.values():
            spine.set_linewidth(1.8)
    else:
        ax.set_title(title, color="0.35" if marking else "black")
    ax.axhline(1 / len(history.choices[sid]), **UNIFORM_STYLE)
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=True)  # shared x, but every panel's epochs stay readable


def plot_alphas(
    alphas: Mapping[str, Any], genotype: Genotype | None, out_prefix: Path
) -> list[Path]:
    """Draw ``<out_prefix>_normal.png/.svg`` and ``<out_prefix>_reduce.png/.svg`` from ``alphas.json``
    content, marking the edges and ops ``genotype`` keeps (if given); returns the paths written.
    A cell type without op decisions in ``alphas`` is skipped."""
    history = AlphaHistory.from_json(alphas)
    present = [c for c in CELL_TYPES if op_edges(history, c)]
    if not present:
        raise ValueError("alphas: no op decisions (space ids like 'normal_node0_input1')")
    paths: list[Path] = []
    with plot_style():
        # Both figures first, so a genotype that does not fit the alphas leaves no file behind.
        figures = {cell_type: alphas_figure(history, genotype, cell_type) for cell_type in present}
        for cell_type, fig in figures.items():
            paths += save_figure(fig, Path(f"{out_prefix}_{cell_type}"))
    return paths
