"""All plots of a search run folder, or of any genotype, in one call.

``plot_run`` reads the files a search wrote (``alphas.json``,
``metrics.csv``, ``genotype.json``; see ``gradnas.engine.search``), draws
whatever those files allow, and writes the images into the same folder.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..genotype import Genotype, GenotypeError
from ..genotype_file import read_genotype_file
from .alphas import plot_alphas
from .cells import CELL_TYPES, cell_of, plot_cell
from .curves import metric_columns, plot_curves

RUN_FILES = ("alphas.json", "metrics.csv", "genotype.json")


def plot_genotype(genotype: Genotype, out_dir: Path, renderer: str = "auto") -> list[Path]:
    """Draw both cells of ``genotype`` as ``cell_normal.*`` and ``cell_reduce.*`` in ``out_dir``
    (PNG, SVG and DOT each; ``renderer`` as in ``plot_cell``); returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        path
        for cell_type in CELL_TYPES
        for path in plot_cell(genotype, cell_type, out_dir / "cell", renderer)
    ]


def read_genotype(path: Path) -> Genotype:
    """The run's genotype, its ops checked: a plot never draws an op that does not exist."""
    try:
        return read_genotype_file(path)
    except GenotypeError as err:
        raise ValueError(str(err)) from None


def read_alphas(path: Path) -> Any:
    """The parsed JSON, any JSON value: ``AlphaHistory.from_json`` checks its structure."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def read_metrics(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def plot_run(run_dir: Path, renderer: str = "auto") -> list[Path]:
    """Write every plot the run folder's files allow into it; returns the paths written.

    ``alphas.json`` gives ``alphas_normal.*`` and ``alphas_reduce.*`` (kept
    edges marked when ``genotype.json`` is there too), ``metrics.csv`` gives
    ``curves.*``, and ``genotype.json`` gives ``cell_normal.*`` and
    ``cell_reduce.*``. A folder with none of these files is an error.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run folder {run_dir} does not exist or is not a folder")
    present = {name: run_dir / name for name in RUN_FILES if (run_dir / name).is_file()}
    if not present:
        raise ValueError(f"nothing to plot in {run_dir}: none of {', '.join(RUN_FILES)} is there")
    # Read and check every file before drawing, so a bad file leaves no partial set of plots.
    genotype = read_genotype(present["genotype.json"]) if "genotype.json" in present else None
    alphas = read_alphas(present["alphas.json"]) if "alphas.json" in present else None
    rows = read_metrics(present["metrics.csv"]) if "metrics.csv" in present else None
    with _naming(present.get("metrics.csv")):
        if rows is not None:
            metric_columns(rows)
    if genotype is not None:
        for cell_type in CELL_TYPES:
            with _naming(present["genotype.json"]):
                cell_of(genotype, cell_type)
    paths: list[Path] = []
    if alphas is not None:
        with _naming(present["alphas.json"]):
            paths += plot_alphas(alphas, genotype, run_dir / "alphas")
    if rows is not None:
        paths += plot_curves(rows, run_dir / "curves")
    if genotype is not None:
        paths += plot_genotype(genotype, run_dir, renderer)
    return paths


@contextlib.contextmanager
def _naming(path: Path | None) -> Iterator[None]:
    """Prefix a ValueError raised inside with the file it comes from."""
    try:
        yield
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
