"""Search algorithms: one small class per method, each with ``step(train_batch, val_batch)``."""

from .darts import Darts
from .drnas import DrNas
from .gdas import Gdas
from .pcdarts import PCDarts
from .random_search import random_search
from .snas import Snas
from .spos import Spos, evolution_search

__all__ = [
    "Darts",
    "DrNas",
    "Gdas",
    "PCDarts",
    "Snas",
    "Spos",
    "evolution_search",
    "random_search",
]
