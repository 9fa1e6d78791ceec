"""Kept for imports from before :mod:`gradnas.methods` held the recipes."""

from ..methods import (  # noqa: F401
    DRNAS_PROGRESSIVE_PRIMITIVES,
    METHODS,
    build_supernet,
    drnas_stages,
    pcdarts_warmup_epochs,
)
from .schedule import move_scheduler  # noqa: F401
