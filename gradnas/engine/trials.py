"""Random search's trials: fixed networks trained from scratch through the one run loop.

Each trial trains the fixed network of one drawn architecture for
``random.epochs`` with DARTS' SGD (the search's learning rates, cosine over
the trial's steps) on the train half and scores it on the val half. After
each trial ``trials.csv`` is rewritten and a checkpoint records the finished
trials, so an interrupted random search resumes at the trial it was in: the
trials before are not trained again, and since every trial seeds itself
(seed + trial number) the result is the one of an uninterrupted run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import parallel
from ..algorithms.base import accuracy
from ..config import SearchConfig
from ..spaces.contract import SearchSpace
from .command import resume_command
from .common import Progress, check_finite, csv_text, evaluate, seed_everything, to_device
from .files import write_text
from .interrupt import StopRequest
from .loop import run_epochs
from .run_record import Shapes

TRIAL_COLUMNS = ("trial", "val_acc", "best_val_acc", "parameters", "seconds", "genotype")


@dataclass
class TrialJob:
    """One trial as a :class:`~.loop.Job`: no checkpoint of its own, a step of the
    learning-rate schedule per step."""

    net: nn.Module
    forward: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: torch.utils.data.DataLoader[Any]
    epochs: int
    grad_clip: float
    device: torch.device
    resume_hint: str
    checkpoint_every: int = 0

    def start_epoch(self, epoch: int, fresh: bool) -> None:
        self.net.train()

    def step(self, batch: Any) -> dict[str, float]:
        x, y = to_device(batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.forward(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated here
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {"train_loss": loss.item(), "train_acc": accuracy(logits.detach(), y).item()}

    def check(self, metrics: dict[str, float], run: Progress) -> None:
        check_finite(metrics, run.epoch, run.step)

    def end_epoch(self, epoch: int, run: Progress, started: float) -> None:
        run.history.append({"epoch": epoch + 1})

    def save(self, run: Progress) -> None:
        """A trial keeps no checkpoint: an interrupted one is trained again."""

    def after_epoch(self, run: Progress) -> None:
        pass


@dataclass
class TrialRunner:
    """Trains the trials of a random search and keeps their rows."""

    cfg: SearchConfig
    space: SearchSpace
    shapes: Shapes
    train_loader: torch.utils.data.DataLoader[Any]
    val_loader: torch.utils.data.DataLoader[Any]
    replicas: parallel.Replicas
    device: torch.device
    out: Path
    log: Callable[[str], None]
    saved: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Callable[[dict[str, Any]], None] = lambda extra: None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows = [dict(row) for row in self.saved]

    def train(self, arch: Any, trial: int, stop: StopRequest, run: Progress) -> tuple[float, int]:
        """Validation accuracy and weight count of ``arch``'s fixed network after its trial."""
        if trial <= len(self.rows):  # finished before an interruption
            row = self.rows[trial - 1]
            return float(row["val_acc"]), int(row["parameters"])
        if trial == 1:
            self.checkpoint({"trials": []})  # a run stopped in its first trial resumes too
        start = time.perf_counter()
        cfg, opt = self.cfg, self.cfg.optim
        seed_everything(cfg.seed + trial)
        net = self.space.fixed_network(arch, self.shapes.in_channels, self.shapes.num_classes)
        net = net.to(self.device)
        optimizer = torch.optim.SGD(
            net.parameters(), lr=opt.weight_lr, momentum=opt.momentum, weight_decay=opt.weight_decay
        )
        steps = cfg.random.epochs * len(self.train_loader)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=steps, eta_min=opt.weight_lr_min
        )
        job = TrialJob(
            net,
            parallel.wrap(net, self.replicas, self.device),
            optimizer,
            scheduler,
            self.train_loader,
            cfg.random.epochs,
            opt.grad_clip,
            self.device,
            resume_command("search", self.out),
        )
        run_epochs(job, Progress(), stop, False, self.replicas)
        self.replicas.broadcast_buffers_(net)
        _, acc = evaluate(net, self.val_loader, self.replicas)
        acc = round(acc, 6)  # as trials.csv keeps it, so a resumed search ranks the same numbers
        params = sum(p.numel() for p in net.parameters())
        best = max([acc] + [r["val_acc"] for r in self.rows])
        self.rows.append(
            {
                "trial": trial,
                "val_acc": acc,
                "best_val_acc": round(best, 6),
                "parameters": params,
                "seconds": round(time.perf_counter() - start, 3),
                "genotype": str(arch),
            }
        )
        if self.replicas.is_main:
            write_text(self.out / "trials.csv", csv_text(self.rows, TRIAL_COLUMNS))
        self.checkpoint({"trials": [dict(r) for r in self.rows]})
        self.log(
            f"trial {trial}/{cfg.random.trials}  val_acc {acc:.4f}  best {best:.4f}  "
            f"({self.rows[-1]['seconds']:.1f}s, {params:,} weights)"
        )
        return acc, params

    def files(self) -> list[str]:
        return ["trials.csv"] if self.rows else []

    def summary(self) -> None:
        if self.rows:
            self.log(f"random search finished in {sum(r['seconds'] for r in self.rows):.0f}s")
            self.log(f"  best val acc   {max(r['val_acc'] for r in self.rows):.4f}")
