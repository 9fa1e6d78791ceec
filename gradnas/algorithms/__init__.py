"""Search algorithms: one small class per method, each with ``step(train_batch, val_batch)``."""

from .darts import Darts

__all__ = ["Darts"]
