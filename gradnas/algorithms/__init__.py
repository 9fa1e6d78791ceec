"""Search algorithms: one small class per method, each implementing the ``Algorithm`` contract."""

from .contract import Algorithm
from .darts import Darts
from .drnas import DrNas
from .gdas import Gdas
from .pcdarts import PCDarts
from .random_search import RandomSearch, random_search
from .snas import Snas
from .spos import Spos, evolution_search

__all__ = [
    "Algorithm",
    "Darts",
    "DrNas",
    "Gdas",
    "PCDarts",
    "RandomSearch",
    "Snas",
    "Spos",
    "evolution_search",
    "random_search",
]
