"""Plumbing shared by the plot modules: matplotlib imported on first use, one
style, pyplot-free figures and atomic PNG + SVG files.

matplotlib is imported inside these helpers, not at module level, so that
``import gradnas.plots`` (and ``collapse_warning``) costs nothing and works
without matplotlib; only drawing needs it. Figures are built with
``matplotlib.figure.Figure`` on an Agg canvas, never through pyplot, so no
global figure manager or interactive backend is involved.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PNG_DPI = 150  # sharp on screens and in slides, a few hundred kB per figure
# Font sizes in points; with PNG_DPI the smallest (tick labels) is ~19 px high.
STYLE = {
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 13,
    "svg.hashsalt": "gradnas",  # stable ids inside the SVG, so reruns give identical files
}


def _require_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from None
    return matplotlib


@contextlib.contextmanager
def plot_style() -> Iterator[None]:
    """gradnas' font sizes for the figures built and saved inside the block, without touching global
    rcParams.
    """
    matplotlib = _require_matplotlib()
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(**kwargs: Any) -> Figure:
    """A ``Figure`` on its own Agg canvas (no pyplot); ``kwargs`` go to ``Figure``."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that a crash never leaves a half-written image (:mod:`gradnas.atomic`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` and ``<stem>.svg``; return both paths."""
    paths = []
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        # No date in the SVG metadata, so the same figure gives the same file.
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata)
        path = Path(f"{stem}.{fmt}")
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
        # The first save ran the layout; freeze it so the second format neither recomputes nor moves
        # it.
        fig.set_layout_engine("none")
    return paths
