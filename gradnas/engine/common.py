"""Pieces the search and the retraining loops share: seeding, evaluation,
run position, metric files, checkpoint loading and the finiteness guard."""

from __future__ import annotations

import csv
import io
import math
import random
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.loaders import EpochBatchSampler
from ..parallel import SINGLE_PROCESS, Replicas
from .errors import NonFiniteError
from .files import RunDirError
from .interrupt import Interrupted, StopRequest


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def flush_denormals() -> None:
    """Treat subnormal floats as zero on the CPU.

    Once a network fits its training data, gradients and some activations
    shrink into the subnormal range, where x86 arithmetic is up to 100x
    slower: a digits retraining went from 1 s to over 30 s per epoch after
    reaching 100% training accuracy. Flushing them costs no accuracy.
    """
    torch.set_flush_denormal(True)


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: torch.utils.data.DataLoader[Any], replicas: Replicas = SINGLE_PROCESS
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` in eval mode over ``loader``, on the model's device.

    Data-parallel, each rank passes its shard (:func:`gradnas.parallel.shard`)
    and the sums are added over the ranks. The global RNG is left as it was
    (``fork_rng``): a data set that augments would otherwise draw from it a
    different number of times on ranks with shards of different sizes, and
    the ranks' architecture samples would part ways.
    """
    model.eval()
    device = next(model.parameters()).device
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            total_loss += nn.functional.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            count += len(y)
    total, right, seen = replicas.sum_([total_loss.item(), correct.item(), float(count)])
    return total / seen, right / seen


def to_device(batch: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device, non_blocking=True) for t in batch)


@dataclass
class Progress:
    """Where a run stands: what a checkpoint restores beside the modules."""

    epoch: int = 0  # the epoch in progress (== epochs when done)
    step: int = 0  # steps completed in that epoch
    sums: dict[str, float] = field(default_factory=dict)  # running metric sums of the epoch
    history: list[dict[str, float]] = field(default_factory=list)  # one row per finished epoch
    alpha_history: list[dict[str, Any]] = field(default_factory=list)  # search only

    def to_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "sums": dict(self.sums),
            "history": self.history,
            "alpha_history": self.alpha_history,
        }

    @classmethod
    def from_state(cls, p: dict[str, Any]) -> Progress:
        return cls(
            p["epoch"], p["step"], dict(p["sums"]), list(p["history"]), list(p["alpha_history"])
        )


def quiet(message: str) -> None:
    """The log of data-parallel ranks other than 0, which leave the printing to rank 0."""


def csv_text(rows: list[dict[str, float]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def resume_position(out: Path, run: Progress, num_epochs: int) -> str:
    """The log line of a resume: where it continues, or that nothing is left to run."""
    if run.epoch >= num_epochs:
        return (
            f"resuming {out}: all {num_epochs} epochs were done; "
            f"writing the files derived from the last checkpoint again"
        )
    return f"resuming {out} at epoch {run.epoch + 1}, step {run.step}"


def check_same_position(replicas: Replicas, run: Progress, out: Path) -> None:
    """On a data-parallel resume every rank read the checkpoint itself; if
    something rewrote it meanwhile they would run different steps and wait on
    each other forever, so a mismatch stops them with an error instead."""
    positions = replicas.gather((run.epoch, run.step))
    if len(set(positions)) > 1:
        raise RunDirError(
            f"{out}: the processes read different checkpoints (epoch, step per rank: {positions}); "
            f"is another run still writing this folder?"
        )


def check_thread_count(saved: int, log: Callable[[str], None]) -> None:
    if saved != torch.get_num_threads():
        log(
            f"warning: the run was checkpointed with {saved} threads and resumes with "
            f"{torch.get_num_threads()}; results may differ in the last bits (set 'threads' in the config)"
        )


def check_finite(
    metrics: dict[str, float],
    epoch: int,
    step: int,
    named_tensors: Iterable[tuple[str, torch.Tensor]] = (),
) -> None:
    """Stop on a non-finite metric or tensor, naming epoch, step and what."""
    bad = [key for key, value in metrics.items() if not math.isfinite(value)]
    bad += [name for name, tensor in named_tensors if not torch.isfinite(tensor).all()]
    if bad:
        what = ", ".join(bad[:4] + (["..."] if len(bad) > 4 else []))
        raise NonFiniteError(
            f"non-finite values at epoch {epoch + 1}, step {step}: {what}; "
            f"the last good checkpoint is kept"
        )


def _state_tensors(value: object) -> Iterable[torch.Tensor]:
    """Every tensor inside an optimizer's state (nested dicts and lists)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _state_tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _state_tensors(item)


def check_finite_weights(
    module: nn.Module,
    epoch: int,
    step: int,
    optimizers: Iterable[torch.optim.Optimizer | None] = (),
) -> None:
    """Before a checkpoint: every parameter, buffer (BatchNorm's running
    statistics) and optimizer state tensor (momentum, Adam moments) is
    finite, so a checkpoint never keeps a value that would poison the resume."""
    named: list[tuple[str, torch.Tensor]] = [
        (f"weight {n}", t) for n, t in module.named_parameters()
    ]
    named += [(f"buffer {n}", t) for n, t in module.named_buffers()]
    for index, optimizer in enumerate(optimizers):
        if optimizer is not None:
            named += [(f"optimizer {index} state", t) for t in _state_tensors(optimizer.state)]
    bad = [name for name, t in named if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        what = ", ".join(bad[:3] + (["..."] if len(bad) > 3 else []))
        raise NonFiniteError(
            f"non-finite values at epoch {epoch + 1}, step {step} ({what}); "
            f"the last good checkpoint is kept"
        )


def run_epoch_steps(
    loader: torch.utils.data.DataLoader[Any],
    step: Callable[[object], dict[str, float]],
    run: Progress,
    num_epochs: int,
    checkpoint_every: int,
    save: Callable[[], None],
    stop: StopRequest,
    resume_hint: str,
    progress: bool,
    check: Callable[[dict[str, float]], None],
    replicas: Replicas = SINGLE_PROCESS,
) -> None:
    """The steps of epoch ``run.epoch`` from step ``run.step`` on: one ``step(batch)`` per batch.

    Accumulates the step metrics in ``run.sums``, checkpoints every
    ``checkpoint_every`` steps, and on a stop request checkpoints at once and
    raises :class:`Interrupted`. The loader must use an EpochBatchSampler, so
    that resuming mid-epoch continues with the right batch. Data-parallel,
    the ranks agree on the stop after every step, so all of them stop at
    the same one.
    """
    sampler = loader.batch_sampler
    if not isinstance(sampler, EpochBatchSampler):
        raise TypeError(
            "run_epoch_steps needs a loader built by make_loader (an EpochBatchSampler)"
        )
    steps_per_epoch = len(loader)
    sampler.epoch, sampler.start_batch = run.epoch, run.step
    rng = torch.get_rng_state()
    batches = iter(loader)  # a DataLoader draws a base seed from the global RNG here
    if run.step:
        # Resuming mid-epoch: the uninterrupted run drew that seed before the
        # checkpoint, so drawing it again would shift every later random
        # number (the samples of GDAS, SNAS and DrNAS).
        torch.set_rng_state(rng)
    bar = tqdm(
        batches,
        desc=f"epoch {run.epoch + 1}/{num_epochs}",
        leave=False,
        disable=not progress,
        dynamic_ncols=True,
        initial=run.step,
        total=steps_per_epoch,
    )
    for batch in bar:
        metrics = step(batch)
        run.step += 1
        check(metrics)
        for key, value in metrics.items():
            run.sums[key] = run.sums.get(key, 0.0) + value
        bar.set_postfix(
            loss=f"{run.sums['train_loss'] / run.step:.3f}",
            acc=f"{run.sums['train_acc'] / run.step:.3f}",
        )
        if run.step < steps_per_epoch:
            if replicas.any(stop.signum is not None):
                save()
                signum = stop.signum or int(signal.SIGTERM)
                raise Interrupted(
                    f"stopped by signal {signum} at epoch {run.epoch + 1}, step {run.step}; "
                    f"checkpoint written; continue with: {resume_hint}",
                    signum,
                )
            if checkpoint_every and run.step % checkpoint_every == 0:
                save()
    bar.close()


def stop_after_epoch(
    stop: StopRequest,
    run: Progress,
    num_epochs: int,
    resume_hint: str,
    replicas: Replicas = SINGLE_PROCESS,
) -> None:
    """Raise :class:`Interrupted` after an epoch's checkpoint when a stop was requested (on any rank)."""
    if replicas.any(stop.signum is not None):  # after the last epoch too: resume writes the rest
        signum = stop.signum or int(signal.SIGTERM)
        raise Interrupted(
            f"stopped by signal {signum} after epoch {run.epoch}; checkpoint written; "
            f"continue with: {resume_hint}",
            signum,
        )
