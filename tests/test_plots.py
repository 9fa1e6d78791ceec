"""gradnas.plots: every plot of a tiny synthetic run folder, the DOT source of
published cells, and the collapse warning."""

import csv
import json
import math
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from gradnas.genotype import DARTS_V2, PRIMITIVES, Genotype
from gradnas.plots import cells as cells_module
from gradnas.plots.alphas import DERIVED_LW, AlphaHistory, alphas_figure, plot_alphas
from gradnas.plots.cells import cell_dot_source, cell_figure, plot_cell
from gradnas.plots.collapse import collapse_warning
from gradnas.plots.curves import curves_figure, metric_columns, plot_curves
from gradnas.plots.run import plot_genotype, plot_run

STEPS = 2
# A steps=2 genotype: node 0 keeps (sep_conv_3x3 from c_{k-2}, skip_connect from c_{k-1}),
# node 1 keeps (dil_conv_3x3 from node 0, max_pool_3x3 from c_{k-2}); (node 1, c_{k-1}) is dropped.
TINY_GENOTYPE = Genotype(
    normal=[[("sep_conv_3x3", 0), ("skip_connect", 1)], [("dil_conv_3x3", 2), ("max_pool_3x3", 0)]],
    normal_concat=[2, 3],
    reduce=[[("max_pool_3x3", 1), ("sep_conv_5x5", 0)], [("skip_connect", 2), ("avg_pool_3x3", 1)]],
    reduce_concat=[2, 3],
)
METRICS = [
    {
        "epoch": "1",
        "train_loss": "2.1",
        "train_acc": "0.31",
        "val_loss": "2.2",
        "val_acc": "0.28",
        "weight_lr": "0.025",
        "seconds": "1.5",
    },
    {
        "epoch": "2",
        "train_loss": "1.7",
        "train_acc": "0.45",
        "val_loss": "1.9",
        "val_acc": "0.40",
        "weight_lr": "0.0125",
        "seconds": "1.4",
    },
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_ROOT = "{http://www.w3.org/2000/svg}svg"


def softmax(xs):
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def tiny_alphas(epochs: int = 2) -> dict:
    """alphas.json content for a steps=2 space: weights drift from uniform, differently per edge."""
    choices = {
        f"{cell}_node{i}_input{j}": list(PRIMITIVES)
        for cell in ("normal", "reduce")
        for i in range(STEPS)
        for j in range(i + 2)
    }
    history = [
        {
            "epoch": e,
            "probs": {
                sid: softmax([0.3 * e * ((k + n) % 5 - 2) for k in range(len(PRIMITIVES))])
                for n, sid in enumerate(choices)
            },
        }
        for e in range(epochs + 1)
    ]
    return {"choices": choices, "history": history}


def write_run(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alphas.json").write_text(json.dumps(tiny_alphas()))
    (folder / "genotype.json").write_text(TINY_GENOTYPE.to_json(indent=2))
    with (folder / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(METRICS[0]))
        writer.writeheader()
        writer.writerows(METRICS)
    return folder


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def plotted_run(tmp_path_factory):
    folder = write_run(tmp_path_factory.mktemp("run"))
    return folder, plot_run(folder, renderer="matplotlib")


RUN_OUTPUTS = {
    f"{stem}.{ext}"
    for stem in ("alphas_normal", "alphas_reduce", "curves", "cell_normal", "cell_reduce")
    for ext in ("png", "svg")
} | {"cell_normal.dot", "cell_reduce.dot"}


# --- plot_run
# -------------------------------------------------------------------------------------------------


def test_plot_run_writes_every_plot_of_a_full_run_folder(plotted_run):
    folder, paths = plotted_run
    assert {p.name for p in paths} == RUN_OUTPUTS
    assert all(p.parent == folder and p.is_file() for p in paths)


def test_plot_run_leaves_no_temporary_files(plotted_run):
    folder, _ = plotted_run
    assert {p.name for p in folder.iterdir()} == RUN_OUTPUTS | {
        "alphas.json",
        "genotype.json",
        "metrics.csv",
    }


def test_every_png_is_a_valid_image_of_sensible_size(plotted_run):
    for path in plotted_run[1]:
        if path.suffix == ".png":
            width, height = png_size(path)
            assert 400 <= width <= 4000 and 250 <= height <= 3000, (path.name, width, height)


def test_every_svg_parses_with_an_svg_root(plotted_run):
    for path in plotted_run[1]:
        if path.suffix == ".svg":
            assert ET.parse(path).getroot().tag == SVG_ROOT, path.name


def test_plot_run_with_only_metrics_draws_only_curves(tmp_path):
    write_run(tmp_path)
    (tmp_path / "alphas.json").unlink()
    (tmp_path / "genotype.json").unlink()
    assert [p.name for p in plot_run(tmp_path)] == ["curves.png", "curves.svg"]


def test_plot_run_rejects_a_folder_without_run_files(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_run(tmp_path)


def test_plot_run_rejects_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        plot_run(tmp_path / "nope")


def test_plot_run_names_a_corrupt_alphas_file(tmp_path):
    write_run(tmp_path)
    (tmp_path / "alphas.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"alphas\.json: not valid JSON"):
        plot_run(tmp_path)


def test_plot_run_checks_every_file_before_drawing_any(tmp_path):
    write_run(tmp_path)
    (tmp_path / "metrics.csv").write_text("epoch,train_loss\n1,2.0\n")
    with pytest.raises(
        ValueError, match=r"metrics\.csv: metrics: missing column\(s\) train_acc, val_loss, val_acc"
    ):
        plot_run(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"alphas.json", "genotype.json", "metrics.csv"}


def test_plot_genotype_draws_both_cells_of_darts_v2(tmp_path):
    paths = plot_genotype(DARTS_V2, tmp_path / "out", renderer="matplotlib")
    assert [p.name for p in paths] == [
        "cell_normal.png",
        "cell_normal.svg",
        "cell_normal.dot",
        "cell_reduce.png",
        "cell_reduce.svg",
        "cell_reduce.dot",
    ]
    assert all(png_size(p)[0] > 400 for p in paths if p.suffix == ".png")


# --- alphas
# -------------------------------------------------------------------------------------------------


def panels(fig):
    """Visible edge panels by title (the empty grid slots have no lines)."""
    return {ax.get_title(): ax for ax in fig.axes if ax.lines}


def test_alphas_figure_has_one_panel_per_edge():
    fig = alphas_figure(AlphaHistory.from_json(tiny_alphas()), None, "normal")
    # steps=2: node 0 reads c_{k-2}, c_{k-1}; node 1 reads those and node 0.
    assert set(panels(fig)) == {
        "node 0 \u2190 $c_{k-2}$",
        "node 0 \u2190 $c_{k-1}$",
        "node 1 \u2190 $c_{k-2}$",
        "node 1 \u2190 $c_{k-1}$",
        "node 1 \u2190 node 0",
    }


def test_alphas_figure_stars_exactly_the_edges_the_genotype_keeps():
    fig = alphas_figure(AlphaHistory.from_json(tiny_alphas()), TINY_GENOTYPE, "normal")
    starred = {title for title in panels(fig) if title.startswith("\u2605")}
    assert starred == {
        "\u2605 node 0 \u2190 $c_{k-2}$",
        "\u2605 node 0 \u2190 $c_{k-1}$",
        "\u2605 node 1 \u2190 node 0",
        "\u2605 node 1 \u2190 $c_{k-2}$",
    }


def test_alphas_figure_draws_only_the_kept_op_bold():
    fig = alphas_figure(AlphaHistory.from_json(tiny_alphas()), TINY_GENOTYPE, "normal")
    bold = {
        title: [line.get_label() for line in ax.lines if line.get_linewidth() == DERIVED_LW]
        for title, ax in panels(fig).items()
    }
    assert bold == {
        "\u2605 node 0 \u2190 $c_{k-2}$": ["sep_conv_3x3"],
        "\u2605 node 0 \u2190 $c_{k-1}$": ["skip_connect"],
        "\u2605 node 1 \u2190 node 0": ["dil_conv_3x3"],
        "\u2605 node 1 \u2190 $c_{k-2}$": ["max_pool_3x3"],
        "node 1 \u2190 $c_{k-1}$": [],
    }


def test_alphas_lines_follow_the_history():
    alphas = tiny_alphas()
    fig = alphas_figure(AlphaHistory.from_json(alphas), None, "reduce")
    ax = panels(fig)["node 1 \u2190 node 0"]
    line = next(line for line in ax.lines if line.get_label() == "avg_pool_3x3")
    k = PRIMITIVES.index("avg_pool_3x3")
    assert list(line.get_xdata()) == [0, 1, 2]
    assert list(line.get_ydata()) == [
        entry["probs"]["reduce_node1_input2"][k] for entry in alphas["history"]
    ]


def test_alphas_ignore_edge_level_decisions():
    alphas = tiny_alphas()
    alphas["choices"]["normal_node1"] = ["input0", "input1", "input2"]  # PC-DARTS edge weights
    for entry in alphas["history"]:
        entry["probs"]["normal_node1"] = [0.2, 0.3, 0.5]
    assert len(panels(alphas_figure(AlphaHistory.from_json(alphas), None, "normal"))) == 5


def test_plot_alphas_skips_a_cell_type_without_op_decisions(tmp_path):
    alphas = tiny_alphas(epochs=1)
    alphas["choices"] = {
        sid: names for sid, names in alphas["choices"].items() if sid.startswith("normal")
    }
    paths = plot_alphas(alphas, None, tmp_path / "alphas")
    assert [p.name for p in paths] == ["alphas_normal.png", "alphas_normal.svg"]


def test_plot_alphas_rejects_a_wrong_number_of_weights(tmp_path):
    alphas = tiny_alphas()
    alphas["history"][1]["probs"]["normal_node0_input1"] = [0.5, 0.5]
    with pytest.raises(
        ValueError, match=r"history\[1\] \(epoch 1\): 'normal_node0_input1' needs 8 weights"
    ):
        plot_alphas(alphas, None, tmp_path / "alphas")


def test_plot_alphas_rejects_an_empty_history(tmp_path):
    with pytest.raises(ValueError, match="'history' must be a non-empty list"):
        plot_alphas({"choices": {}, "history": []}, None, tmp_path / "alphas")


def test_plot_alphas_rejects_a_genotype_with_edges_outside_the_alphas(tmp_path):
    with pytest.raises(
        ValueError, match=r"keeps \('sep_conv_3x3', 1\) into node 2.*normal_node2_input1"
    ):
        # DARTS_V2 has 4 nodes, the alphas 2
        plot_alphas(tiny_alphas(), DARTS_V2, tmp_path / "alphas")
    assert not list(tmp_path.iterdir())


# --- cells: DOT source
# ------------------------------------------------------------------------------------------

EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" \[(.*)\];$')
NODE = re.compile(r'^\s*"([^"]+)" \[label=')

# DARTS_V2 as published (Liu et al., ICLR 2019; quark0/darts genotypes.py), one (source, node, op)
# per edge.
DARTS_V2_NORMAL_EDGES = [
    ("c_{k-2}", "0", "sep_conv_3x3"),
    ("c_{k-1}", "0", "sep_conv_3x3"),
    ("c_{k-2}", "1", "sep_conv_3x3"),
    ("c_{k-1}", "1", "sep_conv_3x3"),
    ("c_{k-1}", "2", "sep_conv_3x3"),
    ("c_{k-2}", "2", "skip_connect"),
    ("c_{k-2}", "3", "skip_connect"),
    ("0", "3", "dil_conv_3x3"),
]
DARTS_V2_REDUCE_EDGES = [
    ("c_{k-2}", "0", "max_pool_3x3"),
    ("c_{k-1}", "0", "max_pool_3x3"),
    ("0", "1", "skip_connect"),
    ("c_{k-1}", "1", "max_pool_3x3"),
    ("c_{k-2}", "2", "max_pool_3x3"),
    ("0", "2", "skip_connect"),
    ("0", "3", "skip_connect"),
    ("c_{k-1}", "3", "max_pool_3x3"),
]


def dot_edges(source: str) -> tuple[Counter, Counter]:
    """(labelled op edges as (source, node, op), unlabelled edges as (source, target)) of a DOT text."""
    ops, plain = Counter(), Counter()
    for line in source.splitlines():
        match = EDGE.match(line)
        if match:
            label = re.search(r'label="([^"]+)"', match[3])
            if label:
                ops[match[1], match[2], label[1]] += 1
            else:
                plain[match[1], match[2]] += 1
    return ops, plain


@pytest.mark.parametrize(
    "cell_type, expected", [("normal", DARTS_V2_NORMAL_EDGES), ("reduce", DARTS_V2_REDUCE_EDGES)]
)
def test_dot_source_lists_every_edge_of_darts_v2(cell_type, expected):
    ops, _ = dot_edges(cell_dot_source(DARTS_V2, cell_type))
    assert ops == Counter(expected)


@pytest.mark.parametrize("cell_type", ["normal", "reduce"])
def test_dot_source_joins_the_concatenated_nodes_into_the_output(cell_type):
    _, plain = dot_edges(cell_dot_source(DARTS_V2, cell_type))
    assert plain == Counter({(n, "c_{k}"): 1 for n in ("0", "1", "2", "3")})  # concat range(2, 6)


def test_dot_source_declares_the_darts_state_names():
    nodes = [
        m[1] for line in cell_dot_source(DARTS_V2, "normal").splitlines() if (m := NODE.match(line))
    ]
    assert nodes == ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"]


def test_dot_source_rejects_an_unknown_cell_type():
    with pytest.raises(ValueError, match="unknown cell type 'normals'"):
        cell_dot_source(DARTS_V2, "normals")


def test_dot_source_rejects_an_input_the_node_cannot_see():
    # Node 0 sees states 0 and 1 (the cell inputs) only; state 2 is node 0 itself.
    bad = Genotype(
        normal=[[("sep_conv_3x3", 2)]],
        normal_concat=[2],
        reduce=[[("sep_conv_3x3", 0)]],
        reduce_concat=[2],
    )
    with pytest.raises(ValueError, match=r"node 0: edge \('sep_conv_3x3', 2\) reads state 2"):
        cell_dot_source(bad, "normal")


def test_dot_source_rejects_a_concat_state_that_does_not_exist():
    bad = Genotype(
        normal=DARTS_V2.normal, normal_concat=[2, 6], reduce=DARTS_V2.reduce, reduce_concat=[2]
    )
    with pytest.raises(
        ValueError, match=r"normal_concat: state 6 does not exist \(the cell has states 0..5\)"
    ):
        cell_dot_source(bad, "normal")


def test_dot_source_rejects_an_empty_concat():
    bad = Genotype(
        normal=DARTS_V2.normal, normal_concat=[], reduce=DARTS_V2.reduce, reduce_concat=[2]
    )
    with pytest.raises(ValueError, match="normal_concat is empty"):
        cell_dot_source(bad, "normal")


# --- cells: rendering
# -------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz' dot is not installed")
def test_plot_cell_renders_the_dot_source_with_graphviz(tmp_path):
    png, svg, dot = plot_cell(DARTS_V2, "reduce", tmp_path / "cell", renderer="graphviz")
    assert 400 <= png_size(png)[0] <= 4000
    assert ET.parse(svg).getroot().tag == SVG_ROOT
    assert dot.read_text() == cell_dot_source(DARTS_V2, "reduce")


def test_plot_cell_graphviz_without_dot_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cells_module.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="needs Graphviz' `dot`"):
        plot_cell(DARTS_V2, "normal", tmp_path / "cell", renderer="graphviz")


def test_plot_cell_auto_falls_back_to_matplotlib_without_dot(tmp_path, monkeypatch):
    monkeypatch.setattr(cells_module.shutil, "which", lambda name: None)
    png, svg, dot = plot_cell(TINY_GENOTYPE, "normal", tmp_path / "cell")
    assert png_size(png)[0] > 400 and ET.parse(svg).getroot().tag == SVG_ROOT
    assert dot.read_text() == cell_dot_source(TINY_GENOTYPE, "normal")


def test_plot_cell_matplotlib_renderer_never_runs_dot(tmp_path, monkeypatch):
    # a dot that cannot run
    monkeypatch.setattr(cells_module.shutil, "which", lambda name: "/nonexistent/dot")
    png, svg, _ = plot_cell(TINY_GENOTYPE, "reduce", tmp_path / "cell", renderer="matplotlib")
    assert png_size(png)[0] > 400 and ET.parse(svg).getroot().tag == SVG_ROOT


def test_plot_cell_reports_a_failing_dot(tmp_path, monkeypatch):
    broken = tmp_path / "bin" / "dot"  # stands in for a dot that fails
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(cells_module.shutil, "which", lambda name: str(broken))
    with pytest.raises(
        RuntimeError, match="Graphviz dot failed on cell_normal: syntax error in line 1"
    ):
        plot_cell(DARTS_V2, "normal", tmp_path / "out" / "cell", renderer="graphviz")
    # nothing half-written
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_plot_cell_rejects_an_unknown_renderer(tmp_path):
    with pytest.raises(ValueError, match="unknown renderer 'tikz'"):
        plot_cell(DARTS_V2, "normal", tmp_path / "cell", renderer="tikz")


def test_matplotlib_cell_labels_every_edge_with_its_op():
    texts = [t.get_text() for t in cell_figure(DARTS_V2, "normal").axes[0].texts]
    assert Counter(t for t in texts if t in PRIMITIVES) == Counter(
        op for _, _, op in DARTS_V2_NORMAL_EDGES
    )


def test_matplotlib_cell_draws_one_arrow_per_edge_and_per_concat_node():
    from matplotlib.text import Annotation

    arrows = [t for t in cell_figure(DARTS_V2, "reduce").axes[0].texts if isinstance(t, Annotation)]
    assert len(arrows) == 8 + 4


# The default run's genotype, whose reduce cell the README showed with labels on crossing arrows.
DEFAULT_RUN = Genotype.parse(
    (Path(__file__).parents[1] / "docs/default_run/genotype.txt").read_text()
)


def _labels_and_arrow_points(fig):
    """Per op label: its rotated rectangle as (centre, unit direction, half length, half height)
    in display pixels, read off the drawn text; and per arrow, points along its drawn path."""
    from matplotlib.text import Annotation

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels, arrows = [], []
    for t in ax.texts:
        if isinstance(t, Annotation):
            path = t.arrow_patch.get_path()  # display coordinates once drawn
            arrows.append(path.interpolated(40).vertices)
        elif t.get_text() in PRIMITIVES:
            centre = ax.transData.transform(t.get_position())
            angle = math.radians(t.get_rotation())
            rotation = t.get_rotation()
            t.set_rotation(0)  # the unrotated extent is the label's length and height
            box = t.get_window_extent(renderer)
            t.set_rotation(rotation)
            direction = (math.cos(angle), math.sin(angle))
            labels.append((centre, direction, box.width / 2, box.height / 2))
    return labels, arrows


@pytest.mark.parametrize("genotype", [DEFAULT_RUN, DARTS_V2], ids=["default_run", "DARTS_V2"])
@pytest.mark.parametrize("cell_type", ["normal", "reduce"])
def test_matplotlib_cell_labels_cover_no_other_arrow(genotype, cell_type):
    labels, arrows = _labels_and_arrow_points(cell_figure(genotype, cell_type))
    assert len(labels) == 8 and len(arrows) == 8 + len(getattr(genotype, f"{cell_type}_concat"))
    covered = []
    for k, ((cx, cy), (ux, uy), half_len, half_h) in enumerate(labels):
        # A label sits on its own arrow; count the other arrows' points inside its rectangle,
        # shrunk by 2 pixels so that an arrow grazing the white padding does not count.
        hits = 0
        for j, points in enumerate(arrows):
            if j == k:  # labelled arrows come first, in the order their labels are drawn
                continue
            for x, y in points:
                along = (x - cx) * ux + (y - cy) * uy
                across = -(x - cx) * uy + (y - cy) * ux
                hits += abs(along) < half_len - 2 and abs(across) < half_h - 2
        covered.append(hits)
    assert covered == [0] * len(labels)


def test_matplotlib_cell_boxes_every_state():
    texts = {t.get_text() for t in cell_figure(DARTS_V2, "normal").axes[0].texts}
    assert {"$c_{k-2}$", "$c_{k-1}$", "0", "1", "2", "3", "$c_{k}$"} <= texts


# --- curves
# -------------------------------------------------------------------------------------------------


def test_curves_have_loss_and_accuracy_panels_with_labelled_axes():
    fig = curves_figure(metric_columns(METRICS))
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == [
        ("epoch", "cross-entropy loss"),
        ("epoch", "accuracy"),
    ]
    assert all(
        [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]
        for ax in fig.axes
    )


def test_curves_plot_the_logged_values():
    _loss_ax, acc_ax = curves_figure(metric_columns(METRICS)).axes
    val_acc = next(line for line in acc_ax.lines if line.get_label() == "validation")
    assert list(val_acc.get_xdata()) == [1.0, 2.0] and list(val_acc.get_ydata()) == [0.28, 0.40]


def test_curves_add_a_temperature_panel_when_tau_is_logged():
    rows = [dict(row, tau=str(tau)) for row, tau in zip(METRICS, (10.0, 5.5))]
    fig = curves_figure(metric_columns(rows))
    assert len(fig.axes) == 3 and "temperature" in fig.axes[2].get_ylabel()
    assert list(fig.axes[2].lines[0].get_ydata()) == [10.0, 5.5]


def test_curves_draw_no_temperature_panel_for_an_empty_tau_column():
    assert len(curves_figure(metric_columns([dict(row, tau="") for row in METRICS])).axes) == 2


def test_plot_curves_writes_png_and_svg(tmp_path):
    png, svg = plot_curves(METRICS, tmp_path / "curves")
    assert (png.name, svg.name) == ("curves.png", "curves.svg")
    assert png_size(png)[0] > 400 and ET.parse(svg).getroot().tag == SVG_ROOT


def test_plot_curves_rejects_a_missing_column(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "val_loss"} for row in METRICS]
    with pytest.raises(ValueError, match="missing column.*val_loss"):
        plot_curves(rows, tmp_path / "curves")


def test_plot_curves_rejects_a_value_that_is_not_a_number(tmp_path):
    rows = [METRICS[0], dict(METRICS[1], train_acc="n/a")]
    with pytest.raises(
        ValueError, match="metrics row 2: column 'train_acc' must be a number, got 'n/a'"
    ):
        plot_curves(rows, tmp_path / "curves")


def test_plot_curves_rejects_no_rows(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        plot_curves([], tmp_path / "curves")


# --- collapse warning
# -------------------------------------------------------------------------------------------


def with_normal(nodes) -> Genotype:
    return Genotype(
        normal=nodes,
        normal_concat=range(2, 2 + len(nodes)),
        reduce=DARTS_V2.reduce,
        reduce_concat=DARTS_V2.reduce_concat,
    )


def test_collapse_warning_fires_for_three_skip_connections():
    nodes = [[("skip_connect", 0), ("skip_connect", 1)], [("skip_connect", 0), ("sep_conv_3x3", 1)]]
    warning = collapse_warning(with_normal(nodes))
    assert warning is not None and "3 parameter-free ops of 4 edges (skip_connect x3)" in warning
    assert "\n" not in warning


def test_collapse_warning_counts_pools_and_none_too():
    nodes = [[("max_pool_3x3", 0), ("avg_pool_3x3", 1)], [("none", 0), ("sep_conv_3x3", 1)]]
    assert (
        "3 parameter-free ops of 4 edges (avg_pool_3x3 x1, max_pool_3x3 x1, none x1)"
        in collapse_warning(with_normal(nodes))
    )


def test_no_collapse_warning_for_two_parameter_free_ops():
    # DARTS_V2's normal cell keeps two skip_connects and no pooling (quark0/darts genotypes.py).
    assert collapse_warning(DARTS_V2) is None


def test_collapse_warning_counts_only_the_normal_cell():
    # DARTS_V2's reduce cell: five max-pools and three skips, all parameter-free; it fires only as a
    # normal cell.
    assert (
        collapse_warning(with_normal(DARTS_V2.reduce)).count("8 parameter-free ops of 8 edges") == 1
    )


def test_collapse_warning_rejects_what_is_not_a_genotype():
    with pytest.raises(ValueError, match="expects a Genotype, got str"):
        collapse_warning(str(DARTS_V2))


# --- imports
# -------------------------------------------------------------------------------------------------


def test_importing_the_plots_package_does_not_import_matplotlib():
    code = "import sys, gradnas.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
