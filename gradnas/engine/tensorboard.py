"""Optional TensorBoard logging of a search (``tensorboard: true`` / ``--tensorboard``).

Scalars per step (``step/train_loss``, ...) and per epoch (``epoch/val_acc``,
...), and a histogram of every decision's alphas per epoch, written to
``RUN_DIR/tensorboard``. View with ``tensorboard --logdir RUN_DIR``. The
``tensorboard`` package is imported only when this is used.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .files import RunDirError


class TensorboardLog:
    """A thin writer over ``torch.utils.tensorboard.SummaryWriter``."""

    def __init__(self, out: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise RunDirError(
                "--tensorboard needs the tensorboard package: pip install tensorboard"
            ) from None
        self.writer = SummaryWriter(log_dir=str(out / "tensorboard"))

    def step(self, metrics: dict[str, float], global_step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"step/{key}", value, global_step)

    def epoch(self, row: dict[str, float], alphas: dict[str, torch.Tensor], epoch: int) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"epoch/{key}", value, epoch)
        for space_id, alpha in alphas.items():
            self.writer.add_histogram(f"alphas/{space_id}", alpha.detach().cpu(), epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
