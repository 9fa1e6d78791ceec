"""A derived cell drawn as a diagram, in the style of the DARTS paper's figures.

The diagram reads left to right: the cell inputs c_{k-2} and c_{k-1}, the
intermediate nodes 0..n-1, and the output c_{k}; each kept edge is an arrow
labelled with its op, and every node the cell concatenates has a plain arrow
into c_{k}. ``cell_dot_source`` writes it in Graphviz' DOT language (a pure
function); ``plot_cell`` renders that with Graphviz' ``dot`` when it is on
PATH, else draws the same diagram with matplotlib.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..genotype import Cell, Genotype
from ._figure import PNG_DPI, new_figure, plot_style, save_figure, write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CELL_TYPES = ("normal", "reduce")
OUTPUT = "c_{k}"
RENDERERS = ("auto", "graphviz", "matplotlib")
# Fill colours: cell inputs green, intermediate nodes blue, output yellow.
INPUT_COLOR, NODE_COLOR, OUTPUT_COLOR = "#cde8c8", "#c9def5", "#f4e8b0"


def state_name(index: int) -> str:
    """DARTS state index -> diagram name: 0 is c_{k-2}, 1 is c_{k-1}, 2 + m is node m."""
    return ("c_{k-2}", "c_{k-1}")[index] if index < 2 else str(index - 2)


def cell_of(genotype: Genotype, cell_type: str) -> tuple[Cell, tuple[int, ...]]:
    """The nodes and concat of one cell, checked so that every edge and concat index names a state
    that exists.
    """
    if not isinstance(genotype, Genotype):
        raise ValueError(f"expected a Genotype, got {type(genotype).__name__}")
    if cell_type not in CELL_TYPES:
        raise ValueError(f"unknown cell type {cell_type!r}; expected one of {list(CELL_TYPES)}")
    nodes: Cell = getattr(genotype, cell_type)
    concat: tuple[int, ...] = getattr(genotype, f"{cell_type}_concat")
    for m, node in enumerate(nodes):
        for op, j in node:
            # Node m sees the two cell inputs and the m nodes before it.
            if j > m + 1:
                raise ValueError(
                    f"{cell_type} cell, node {m}: edge ({op!r}, {j}) reads state {j}, "
                    f"but node {m} sees only states 0..{m + 1}"
                )
    if not concat:
        raise ValueError(f"{cell_type}_concat is empty: the cell would have no output")
    for j in concat:
        if j > len(nodes) + 1:
            raise ValueError(
                f"{cell_type}_concat: state {j} does not exist (the cell has states 0..{len(nodes) + 1})"
            )
    return nodes, concat


def _html_label(name: str) -> str:
    """'c_{k-2}' -> c<sub>k-2</sub> as a Graphviz HTML label; node numbers stay plain."""
    if name.startswith("c_{"):
        return f"<c<sub>{name[3:-1]}</sub>>"
    return f'"{name}"'


def cell_dot_source(genotype: Genotype, cell_type: str) -> str:
    """The DOT source of one cell's diagram: node ids are ``c_{k-2}``, ``c_{k-1}``,
    ``0``..``n-1`` and ``c_{k}``; op edges carry ``label="<op>"``, concat edges no label.

    >>> from gradnas.genotype import DARTS_V2
    >>> [line.strip() for line in cell_dot_source(DARTS_V2, "normal").splitlines() if "->" in line][
    ...     0
    ... ]
    '"c_{k-2}" -> "0" [label="sep_conv_3x3"];'
    """
    nodes, concat = cell_of(genotype, cell_type)
    states = [state_name(i) for i in range(len(nodes) + 2)]
    lines = [
        f"digraph cell_{cell_type} {{",
        "  rankdir=LR;",
        f'  label="{cell_type} cell"; labelloc=t; fontname="Helvetica"; fontsize=22;',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=20, penwidth=1.5];',
        '  edge [fontname="Helvetica", fontsize=16, penwidth=1.5];',
    ]
    for i, name in enumerate([*states, OUTPUT]):
        color = INPUT_COLOR if i < 2 else NODE_COLOR if i < len(states) else OUTPUT_COLOR
        lines.append(f'  "{name}" [label={_html_label(name)}, fillcolor="{color}"];')
    lines.append('  { rank=same; "c_{k-2}"; "c_{k-1}"; }')
    for m, node in enumerate(nodes):
        for op, j in node:
            lines.append(f'  "{states[j]}" -> "{states[m + 2]}" [label="{op}"];')
    for j in concat:
        lines.append(f'  "{states[j]}" -> "{OUTPUT}" [color="gray45"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot_cell(
    genotype: Genotype, cell_type: str, out_prefix: Path, renderer: str = "auto"
) -> list[Path]:
    """Draw one cell as ``<out_prefix>_<cell_type>.png`` and ``.svg``, and write its DOT source beside them.

    ``renderer``: ``"graphviz"`` (needs ``dot`` on PATH), ``"matplotlib"``, or
    ``"auto"`` (Graphviz when ``dot`` is found, else matplotlib).
    Returns the paths written: PNG, SVG, DOT.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}; expected one of {list(RENDERERS)}")
    source = cell_dot_source(genotype, cell_type)
    dot = shutil.which("dot")
    if renderer == "graphviz" and dot is None:
        raise ValueError(
            "renderer='graphviz' needs Graphviz' `dot` program on PATH (e.g. apt-get install graphviz)"
        )
    stem = Path(f"{out_prefix}_{cell_type}")
    if dot is not None and renderer != "matplotlib":
        paths = [_render_dot(dot, source, stem, fmt) for fmt in ("png", "svg")]
    else:
        with plot_style():
            paths = save_figure(cell_figure(genotype, cell_type), stem)
    dot_path = stem.with_suffix(".dot")
    write_bytes_atomic(dot_path, source.encode())
    return [*paths, dot_path]


def _render_dot(dot: str, source: str, stem: Path, fmt: str) -> Path:
    result = subprocess.run(
        [dot, f"-T{fmt}", f"-Gdpi={PNG_DPI}"],
        input=source.encode(),
        capture_output=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"Graphviz dot failed on {stem.name}: {result.stderr.decode(errors='replace').strip()}"
        )
    path = Path(f"{stem}.{fmt}")
    write_bytes_atomic(path, result.stdout)
    return path


# Matplotlib layout, in data units at INCH_PER_UNIT inches each: boxes BOX_W x BOX_H,
# columns COL_GAP apart (room for a 12-character op label), rows at least ROW_GAP apart.
BOX_W, BOX_H, COL_GAP, ROW_GAP, INCH_PER_UNIT = 1.1, 0.6, 4.2, 1.5, 0.7
COL_GAPS = tuple(COL_GAP * f for f in (1.0, 1.2, 1.4, 1.6, 1.8, 2.0))  # widths tried, in order
# Fractions along an arrow tried for its op label, best first; the first whose label clears the
# labels already placed and the boxes wins (off-centre first: symmetric arrows cross at the middle).
LABEL_AT = (0.6, 0.45, 0.7, 0.5, 0.4, 0.65, 0.55, 0.35, 0.75, 0.3, 0.8, 0.25, 0.2, 0.85, 0.15)
LABEL_PT = 9.5  # op label font size
BENDS = (
    0.0,
    0.12,
    -0.12,
    0.24,
    -0.24,
    0.36,
    -0.36,
    0.5,
    -0.5,
)  # arc3 curvatures tried, straightest first

Point = tuple[float, float]
State = int | str  # a state's index in the cell, or OUTPUT
Arrow = tuple[State, State, str | None]  # (source, target, op label or None)
# (box centres, output column, arrow ends, arrow bends, labels, deepest label overlap)
Arrangement = tuple[
    dict[State, Point],
    int,
    list[tuple[Point, Point]],
    list[float],
    list[tuple[str, Point, float]],
    float,
]


def _layout(nodes: Cell, col_gap: float = COL_GAP) -> tuple[dict[State, Point], int]:
    """Box centres of the states, and the output's column.

    Cell inputs sit in column 0 (c_{k-2} above c_{k-1}); a node sits one
    column right of its rightmost input, at the mean height of its inputs
    (the barycentre heuristic of layered graph drawing), pushed apart to
    ROW_GAP from its column neighbours."""
    column = [0, 0]
    for node in nodes:
        column.append(1 + max((column[j] for _, j in node), default=0))
    y: dict[int, float] = {0: ROW_GAP / 2, 1: -ROW_GAP / 2}
    for col in range(1, max(column) + 1):
        states = [s for s in range(2, len(column)) if column[s] == col]
        wish = {s: sum(y[j] for _, j in nodes[s - 2]) / max(len(nodes[s - 2]), 1) for s in states}
        states.sort(key=lambda s: (-wish[s], s))  # top to bottom
        placed = [wish[states[0]]]
        for s in states[1:]:
            placed.append(min(wish[s], placed[-1] - ROW_GAP))
        shift = (sum(wish.values()) - sum(placed)) / len(placed)  # keep the column's mean height
        for s, ys in zip(states, placed):
            y[s] = ys + shift
    pos: dict[State, Point] = {s: (column[s] * col_gap, y[s]) for s in range(len(column))}
    return pos, max(column) + 1


def cell_figure(genotype: Genotype, cell_type: str) -> Figure:
    """The matplotlib fallback diagram of one cell, as a ``Figure`` (op labels are its texts)."""
    nodes, concat = cell_of(genotype, cell_type)
    # (source, target, label) for every arrow; concat arrows carry no label.
    arrows: list[Arrow] = [(j, m + 2, op) for m, node in enumerate(nodes) for op, j in node]
    arrows += [(j, OUTPUT, None) for j in concat]
    col_gap, (pos, out_column, ends, bends, labels, _) = _arrangement(nodes, concat, arrows)

    ys = [p[1] for p in pos.values()]
    x_lo, x_hi = -BOX_W / 2 - 0.3, out_column * col_gap + BOX_W / 2 + 0.3
    y_lo, y_hi = min(ys) - BOX_H / 2 - 0.5, max(ys) + BOX_H / 2 + 0.5  # 0.5: room for curved arrows
    title_in = 0.5
    fig = new_figure(
        figsize=((x_hi - x_lo) * INCH_PER_UNIT, (y_hi - y_lo) * INCH_PER_UNIT + title_in)
    )
    ax = fig.add_axes((0, 0, 1, 1 - title_in / fig.get_figheight()))
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle(f"{cell_type} cell", y=1 - 0.1 / fig.get_figheight(), va="top")
    for state, (x, y) in pos.items():
        if isinstance(state, str):  # the only state named by a string is OUTPUT
            name, color = OUTPUT, OUTPUT_COLOR
        else:
            name, color = state_name(state), INPUT_COLOR if state < 2 else NODE_COLOR
        _box(ax, x, y, f"${name}$" if name.startswith("c_") else name, color)
    for (_, _, label), (start, end), bend in zip(arrows, ends, bends):
        _arrow(ax, start, end, bend, labelled=label is not None)
    for text, (x, y), angle in labels:
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=LABEL_PT,
            rotation=angle,
            rotation_mode="anchor",
            transform_rotates_text=True,
            parse_math=False,
            zorder=4,
            bbox={
                "boxstyle": "round,pad=0.15",
                "facecolor": "white",
                "edgecolor": "none",
                "alpha": 0.9,
            },
        )
    return fig


def _arrangement(
    nodes: Cell, concat: Sequence[int], arrows: Sequence[Arrow]
) -> tuple[float, Arrangement]:
    """The column gap and :func:`_arranged` layout the diagram uses.

    Where arrows fan out and cross, labels may find no clear spot: the columns widen (as Graphviz
    lengthens edges) until every label clears the boxes, the other labels and the arrows; where
    no width in COL_GAPS clears them all, the one with the least overlap is kept."""
    tried: list[tuple[float, Arrangement]] = []
    for col_gap in COL_GAPS:
        tried.append((col_gap, _arranged(nodes, concat, arrows, col_gap)))
        if tried[-1][1][-1] <= 0:
            break
    return min(tried, key=lambda g: g[1][-1])


def _arranged(
    nodes: Cell, concat: Sequence[int], arrows: Sequence[Arrow], col_gap: float
) -> Arrangement:
    """Box centres, output column, arrow ends and bends, and labels at ``col_gap``, with how deep
    the worst label overlaps something (0: every label is clear)."""
    pos, out_column = _layout(nodes, col_gap)
    pos[OUTPUT] = (out_column * col_gap, sum(pos[j][1] for j in concat) / len(concat))
    ends = _arrow_ends(arrows, pos)
    bends = [
        _clear_bend(start, end, [p for state, p in pos.items() if state not in (s, t)])
        for (s, t, _), (start, end) in zip(arrows, ends)
    ]
    labels, overlap = _place_labels(arrows, ends, bends, list(pos.values()))
    return pos, out_column, ends, bends, labels, overlap


def _arrow_ends(arrows: Sequence[Arrow], pos: Mapping[State, Point]) -> list[tuple[Point, Point]]:
    """Start (right side of the source box) and end (left side of the target box) of each arrow,
    spread over the box side in the order of the other ends, so arrows into one box do not share
    a head and arrows out of one box do not cross each other."""
    outgoing: defaultdict[State, list[int]] = defaultdict(list)
    incoming: defaultdict[State, list[int]] = defaultdict(list)
    for k, (source, target, _) in enumerate(arrows):
        outgoing[source].append(k)
        incoming[target].append(k)
    start_y: dict[int, float] = {}
    end_y: dict[int, float] = {}
    spread = BOX_H * 0.6
    # The other end of each arrow: its target for the source's side, its source for the target's.
    targets = [target for _, target, _ in arrows]
    sources = [source for source, _, _ in arrows]
    for groups, ends, partners in ((outgoing, start_y, targets), (incoming, end_y, sources)):
        for state, ks in groups.items():
            # Highest partner first, so it gets the highest slot on this box's side.
            ks = sorted(ks, key=lambda k: (-pos[partners[k]][1], k))
            for slot, k in enumerate(ks):
                offset = spread / 2 - slot * spread / (len(ks) - 1) if len(ks) > 1 else 0.0
                ends[k] = pos[state][1] + offset
    return [
        ((pos[s][0] + BOX_W / 2, start_y[k]), (pos[t][0] - BOX_W / 2, end_y[k]))
        for k, (s, t, _) in enumerate(arrows)
    ]


def _control(start: Point, end: Point, bend: float) -> Point:
    """Control point of matplotlib's arc3 curve (a quadratic Bezier) with curvature ``bend``,
    in data units; it matches the drawn curve because the axes keep an equal aspect."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    return (start[0] + dx / 2 + bend * dy, start[1] + dy / 2 - bend * dx)


def _on_curve(start: Point, control: Point, end: Point, t: float) -> Point:
    a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t**2
    return (a * start[0] + b * control[0] + c * end[0], a * start[1] + b * control[1] + c * end[1])


def _clear_bend(start: Point, end: Point, boxes: list[Point]) -> float:
    """The straightest arc3 curvature whose curve misses every other box (with a margin),
    so an arrow that skips a column goes around the boxes in between."""
    margin = 0.12
    for bend in BENDS:
        control = _control(start, end, bend)
        points = [_on_curve(start, control, end, k / 60) for k in range(61)]
        if not any(
            abs(px - bx) < BOX_W / 2 + margin and abs(py - by) < BOX_H / 2 + margin
            for px, py in points
            for bx, by in boxes
        ):
            return bend
    return 0.0


def _box(ax: Axes, x: float, y: float, text: str, color: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    pad = 0.08
    ax.add_patch(
        FancyBboxPatch(
            (x - BOX_W / 2 + pad, y - BOX_H / 2 + pad),
            BOX_W - 2 * pad,
            BOX_H - 2 * pad,
            boxstyle=f"round,pad={pad}",
            facecolor=color,
            edgecolor="0.2",
            linewidth=1.2,
            zorder=2,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=13, zorder=3)


def _label_spot(start: Point, end: Point, bend: float, t: float) -> tuple[Point, float]:
    """Centre and angle (degrees) of a label at fraction ``t`` along an arrow, following its tangent."""
    from math import atan2, degrees

    control = _control(start, end, bend)
    tx = (1 - t) * (control[0] - start[0]) + t * (end[0] - control[0])
    ty = (1 - t) * (control[1] - start[1]) + t * (end[1] - control[1])
    return _on_curve(start, control, end, t), degrees(atan2(ty, tx))


def _label_axis(text: str, centre: Point, angle: float) -> list[Point]:
    """Points along a label's centre line, in data units (a label is this line thickened by LABEL_HALF_H)."""
    from math import cos, radians, sin

    # DejaVu Sans averages ~0.6 em per character; 72 points per inch.
    half = 0.5 * len(text) * 0.6 * LABEL_PT / 72 / INCH_PER_UNIT + 0.05
    c, s = cos(radians(angle)), sin(radians(angle))
    return [
        (centre[0] + u * half * c, centre[1] + u * half * s) for u in (k / 5 - 1 for k in range(11))
    ]


# half a label's height with its padding, data units
LABEL_HALF_H = 0.75 * LABEL_PT / 72 / INCH_PER_UNIT


def _curve_points(start: Point, end: Point, bend: float, n: int = 40) -> list[Point]:
    """Points along a drawn arrow, ends included."""
    control = _control(start, end, bend)
    return [_on_curve(start, control, end, k / n) for k in range(n + 1)]


def _covered(axis: list[Point], points: list[Point]) -> float:
    """How deep the label along ``axis`` covers any of ``points`` (0: none covered)."""
    depth = 0.0
    for px, py in points:
        near = min(((px - x) ** 2 + (py - y) ** 2) ** 0.5 for x, y in axis)
        depth = max(depth, LABEL_HALF_H - near)
    return depth


def _place_labels(
    arrows: Sequence[Arrow],
    ends: Sequence[tuple[Point, Point]],
    bends: Sequence[float],
    boxes: list[Point],
) -> tuple[list[tuple[str, Point, float]], float]:
    """Pick for each labelled arrow the first spot in LABEL_AT where its label covers no box, no
    label placed before it and no other arrow (where arrows cross), else the spot that overlaps
    least; return (text, centre, angle) per label and the deepest overlap left (0: none)."""
    placed: list[list[Point]] = []
    out: list[tuple[str, Point, float]] = []
    worst = 0.0
    curves = [_curve_points(start, end, bend) for (start, end), bend in zip(ends, bends)]

    def clash(axis: list[Point], own: int) -> float:
        """How deep this label runs into a box, a placed label or another arrow (0: clear)."""
        depth = max(
            (_covered(axis, curve) for k, curve in enumerate(curves) if k != own), default=0.0
        )
        for x, y in axis:
            for bx, by in boxes:
                dx, dy = BOX_W / 2 + 0.15 - abs(x - bx), BOX_H / 2 + LABEL_HALF_H - abs(y - by)
                if dx > 0 and dy > 0:
                    depth = max(depth, min(dx, dy))
            for other in placed:
                for ox, oy in other:
                    gap = 2 * LABEL_HALF_H - ((x - ox) ** 2 + (y - oy) ** 2) ** 0.5
                    depth = max(depth, gap)
        return depth

    for k, ((_, _, label), (start, end), bend) in enumerate(zip(arrows, ends, bends)):
        if not label:
            continue
        spots = [_label_spot(start, end, bend, t) for t in LABEL_AT]
        depths = [clash(_label_axis(label, centre, angle), k) for centre, angle in spots]
        best = next(
            (k for k, d in enumerate(depths) if d <= 0),
            min(range(len(spots)), key=depths.__getitem__),
        )
        centre, angle = spots[best]
        placed.append(_label_axis(label, centre, angle))
        out.append((label, centre, angle))
        worst = max(worst, depths[best])
    return out, worst


def _arrow(ax: Axes, start: Point, end: Point, bend: float, labelled: bool) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        zorder=1,
        arrowprops={
            "arrowstyle": "-|>",
            "color": "0.15" if labelled else "0.6",
            "lw": 1.3,
            "shrinkA": 0,
            "shrinkB": 0,
            "mutation_scale": 14,
            "connectionstyle": f"arc3,rad={bend}",
        },
    )
