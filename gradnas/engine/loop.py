"""The one run loop: epochs of steps for a search, a retraining or a random-search trial.

A run is a :class:`Job`: what to do when an epoch starts, one step per
training batch, what an epoch ends with (evaluate, a metrics row), how to
checkpoint, and what to write and print after the epoch's checkpoint.
:func:`run_epochs` drives any job from its :class:`~.common.Progress` to the
end, with the same stop handling (a signal checkpoints and raises
:class:`~.interrupt.Interrupted`), the same step-level checkpoints and the
same finiteness guard for all of them, and resumes mid-epoch exactly.

The loop's single places for reliability hooks: ``job.save`` is the only
checkpoint write, ``job.check`` runs after every step, and the loop itself
is the only place an epoch begins or ends.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import torch

from ..parallel import SINGLE_PROCESS, Replicas
from .common import Progress, run_epoch_steps, stop_after_epoch
from .interrupt import StopRequest


class Job(Protocol):
    """One kind of run, as :func:`run_epochs` drives it."""

    @property
    def epochs(self) -> int: ...

    @property
    def train_loader(self) -> torch.utils.data.DataLoader[Any]: ...

    @property
    def checkpoint_every(self) -> int:
        """Also checkpoint every N steps inside an epoch; 0: at epoch ends only."""
        ...

    @property
    def resume_hint(self) -> str:
        """The command that continues the run, for the stop message."""
        ...

    def start_epoch(self, epoch: int, fresh: bool) -> None:
        """Before the steps of ``epoch``; ``fresh`` is False when a run resumes in the
        middle of it (a schedule that already ran for the epoch must not run again)."""
        ...

    def step(self, batch: object) -> dict[str, float]: ...

    def check(self, metrics: dict[str, float], run: Progress) -> None:
        """After every step: stop on a non-finite value (and log the step)."""
        ...

    def end_epoch(self, epoch: int, run: Progress, started: float) -> None:
        """After the last step: schedule, evaluation, and the row appended to
        ``run.history`` (``started``: the epoch's start on ``time.perf_counter``)."""
        ...

    def save(self, run: Progress) -> None:
        """Write a checkpoint of ``run`` (a no-op for a job that keeps none)."""
        ...

    def after_epoch(self, run: Progress) -> None:
        """After the epoch's checkpoint: metric files, the epoch line, plots."""
        ...


def run_epochs(
    job: Job,
    run: Progress,
    stop: StopRequest,
    progress: bool,
    replicas: Replicas = SINGLE_PROCESS,
) -> None:
    """Epochs of ``job`` from ``run``'s position to ``job.epochs``."""
    while run.epoch < job.epochs:
        epoch = run.epoch
        start = time.perf_counter()
        if run.step == 0:
            run.sums = {}
        job.start_epoch(epoch, fresh=run.step == 0)
        run_epoch_steps(
            job.train_loader,
            job.step,
            run,
            job.epochs,
            job.checkpoint_every,
            lambda: job.save(run),
            stop,
            job.resume_hint,
            progress,
            lambda metrics: job.check(metrics, run),
            replicas,
        )
        job.end_epoch(epoch, run, start)
        run.epoch, run.step, run.sums = epoch + 1, 0, {}
        job.save(run)
        job.after_epoch(run)
        stop_after_epoch(stop, run, job.epochs, job.resume_hint, replicas)
