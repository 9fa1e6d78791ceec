"""Plots of a search: architecture weights over the epochs, the derived cells
as diagrams, training curves, and a warning for a collapsed normal cell.

matplotlib is imported only when a plot is drawn, so importing this package
(e.g. for ``collapse_warning``) needs neither matplotlib nor time.
"""

from .alphas import plot_alphas
from .cells import cell_dot_source, plot_cell
from .collapse import collapse_warning
from .curves import plot_curves
from .decisions import plot_alphas_per_decision
from .run import plot_genotype, plot_run

__all__ = [
    "cell_dot_source",
    "collapse_warning",
    "plot_alphas",
    "plot_alphas_per_decision",
    "plot_cell",
    "plot_curves",
    "plot_genotype",
    "plot_run",
]
