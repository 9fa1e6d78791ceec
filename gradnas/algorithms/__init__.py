"""Search algorithms: one small class per method, each with ``step(train_batch, val_batch)``."""

from .darts import Darts
from .drnas import DrNas
from .gdas import Gdas
from .pcdarts import PCDarts
from .snas import Snas

__all__ = ["Darts", "DrNas", "Gdas", "PCDarts", "Snas"]
