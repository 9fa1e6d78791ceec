"""The search loop: config in, run folder with the found architecture out.

``run_search(cfg, out_dir)`` builds the data, supernet, mutator and algorithm
from a :class:`~gradnas.config.SearchConfig`, runs ``cfg.epochs`` epochs of
``algorithm.step(train_batch, val_batch)``, and writes into the run folder:

- ``config.yaml``: the resolved config that produced the run;
- ``metrics.csv``: one row per epoch;
- ``alphas.json``: softmax weights of every decision at the start and after each epoch;
- ``genotype.json`` / ``genotype.txt``: the derived architecture as JSON and
  in the DARTS notation;
- ``checkpoint.pt``: weights, alphas, optimizer and scheduler states.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..algorithms import Darts
from ..config import SearchConfig, config_to_dict, dump_config
from ..data import InfiniteStream, load_digits_splits, make_loader
from ..genotype import Genotype
from ..mutators import DartsMutator
from ..spaces.darts import DartsSearchNetwork
from .files import prepare_run_dir, save_checkpoint, write_text
from .summary import decisiveness

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "weight_lr", "seconds")


@dataclass
class SearchSetup:
    """Everything a search run holds, built from one config."""

    supernet: DartsSearchNetwork
    mutator: DartsMutator
    algorithm: Darts
    weight_optimizer: torch.optim.Optimizer
    arch_optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    val_stream: InfiniteStream


@dataclass
class SearchResult:
    genotype: Genotype
    history: list[dict[str, float]]
    out_dir: Path


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_search(cfg: SearchConfig) -> SearchSetup:
    """Data, supernet, mutator, optimizers and algorithm for ``cfg``, seeded."""
    seed_everything(cfg.seed)
    splits = load_digits_splits(seed=cfg.seed, val_fraction=cfg.data.val_fraction,
                                test_fraction=cfg.data.test_fraction)
    net = cfg.network
    supernet = DartsSearchNetwork(C=net.C, layers=net.layers, steps=net.steps, multiplier=net.multiplier,
                                  stem_multiplier=net.stem_multiplier, in_channels=splits.in_channels,
                                  num_classes=splits.num_classes)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(supernet)
    opt = cfg.optim
    weight_optimizer = torch.optim.SGD(supernet.parameters(), lr=opt.weight_lr, momentum=opt.momentum,
                                       weight_decay=opt.weight_decay)
    arch_optimizer = torch.optim.Adam(mutator.arch_parameters(), lr=opt.arch_lr,
                                      betas=(opt.arch_beta1, opt.arch_beta2), weight_decay=opt.arch_weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(weight_optimizer, T_max=cfg.epochs,
                                                           eta_min=opt.weight_lr_min)
    algorithm = Darts(supernet, mutator, weight_optimizer, arch_optimizer, unrolled=False,
                      grad_clip=opt.grad_clip or None)
    batch = cfg.data.batch_size
    train_loader = make_loader(splits.train, batch, shuffle=True, seed=cfg.seed)
    val_loader = make_loader(splits.val, batch, shuffle=False, seed=cfg.seed)
    # DARTS reads the validation half as a stream alongside the training half.
    val_stream = InfiniteStream(make_loader(splits.val, batch, shuffle=True, seed=cfg.seed + 1))
    return SearchSetup(supernet, mutator, algorithm, weight_optimizer, arch_optimizer, scheduler,
                       train_loader, val_loader, val_stream)


@torch.no_grad()
def evaluate(model: nn.Module, loader: torch.utils.data.DataLoader) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` in eval mode over ``loader``."""
    model.eval()
    total_loss = torch.zeros(())
    correct = torch.zeros(())
    count = 0
    for x, y in loader:
        logits = model(x)
        total_loss += nn.functional.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        count += len(y)
    return total_loss.item() / count, correct.item() / count


def train_one_epoch(setup: SearchSetup, epoch: int, num_epochs: int, progress: bool) -> dict[str, float]:
    """One pass over the training half; returns the mean step metrics."""
    sums: dict[str, float] = {}
    bar = tqdm(setup.train_loader, desc=f"epoch {epoch + 1}/{num_epochs}", leave=False, disable=not progress,
               dynamic_ncols=True)
    for step, train_batch in enumerate(bar, start=1):
        metrics = setup.algorithm.step(train_batch, next(setup.val_stream))
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + value
        bar.set_postfix(loss=f"{sums['train_loss'] / step:.3f}", acc=f"{sums['train_acc'] / step:.3f}")
    return {key: value / len(setup.train_loader) for key, value in sums.items()}


def alpha_snapshot(mutator: DartsMutator) -> dict[str, list[float]]:
    return {space_id: [round(p, 6) for p in probs.tolist()] for space_id, probs in mutator.arch_probs().items()}


def compact_genotype(genotype: Genotype) -> str:
    """One-line form for the epoch summary: each node as op@input pairs."""
    def cell(nodes):
        return " | ".join(" ".join(f"{op}@{j}" for op, j in node) for node in nodes)
    return f"normal: {cell(genotype.normal)} || reduce: {cell(genotype.reduce)}"


def checkpoint_state(setup: SearchSetup, cfg: SearchConfig, epoch: int) -> dict:
    return {
        "epoch": epoch,
        "config": config_to_dict(cfg),
        "supernet": setup.supernet.state_dict(),
        "mutator": setup.mutator.state_dict(),
        "weight_optimizer": setup.weight_optimizer.state_dict(),
        "arch_optimizer": setup.arch_optimizer.state_dict(),
        "scheduler": setup.scheduler.state_dict(),
        "algorithm": setup.algorithm.state_dict(),
    }


def _csv_text(rows: list[dict[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run_search(cfg: SearchConfig, out_dir: str | Path, force: bool = False, progress: bool = True,
               log: Callable[[str], None] = print) -> SearchResult:
    """Run a whole search and write its run folder (see the module docstring)."""
    out = prepare_run_dir(Path(out_dir), force)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    setup = build_search(cfg)
    write_text(out / "config.yaml", dump_config(cfg))
    space_choices = {sid: list(members[0].full_choice_names)
                     for sid, members in setup.mutator.search_spaces.items() if sid in setup.mutator.arch_params}
    alpha_history = [{"epoch": 0, "probs": alpha_snapshot(setup.mutator)}]
    history: list[dict[str, float]] = []
    log(f"search: {cfg.algorithm} on {cfg.data.name}, {cfg.epochs} epochs, "
        f"{sum(p.numel() for p in setup.supernet.parameters()):,} weights, "
        f"{sum(a.numel() for a in setup.mutator.arch_parameters())} alphas -> {out}")
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        setup.algorithm.on_epoch_start(epoch, cfg.epochs)
        weight_lr = setup.weight_optimizer.param_groups[0]["lr"]
        train = train_one_epoch(setup, epoch, cfg.epochs, progress)
        setup.scheduler.step()
        val_loss, val_acc = evaluate(setup.supernet, setup.val_loader)
        genotype = setup.supernet.to_genotype(setup.mutator.search_subnet())
        row = {"epoch": epoch + 1, "train_loss": round(train["train_loss"], 6),
               "train_acc": round(train["train_acc"], 6), "val_loss": round(val_loss, 6),
               "val_acc": round(val_acc, 6), "weight_lr": weight_lr,
               "seconds": round(time.perf_counter() - start, 3)}
        history.append(row)
        alpha_history.append({"epoch": epoch + 1, "probs": alpha_snapshot(setup.mutator)})
        write_text(out / "metrics.csv", _csv_text(history))
        write_text(out / "alphas.json", json.dumps({"choices": space_choices, "history": alpha_history}))
        log(f"epoch {epoch + 1}/{cfg.epochs}  train_acc {train['train_acc']:.4f}  val_acc {val_acc:.4f}  "
            f"({row['seconds']:.1f}s)  {compact_genotype(genotype)}")
    save_checkpoint(out / "checkpoint.pt", checkpoint_state(setup, cfg, cfg.epochs))
    write_text(out / "genotype.json", genotype.to_json(indent=2) + "\n")
    write_text(out / "genotype.txt", str(genotype) + "\n")
    decided = decisiveness(space_choices, alpha_history[0]["probs"], alpha_history[-1]["probs"],
                           setup.mutator.search_subnet())
    log(f"genotype: {genotype}")
    log(f"derived ops' mean softmax weight {decided['derived_mean_weight']:.3f} "
        f"({decided['times_uniform']:.2f}x uniform); {decided['changed']} of {decided['decisions']} edges "
        f"changed their strongest op since the start")
    log(f"wrote {out}/: config.yaml metrics.csv alphas.json genotype.json genotype.txt checkpoint.pt")
    return SearchResult(genotype=genotype, history=history, out_dir=out)
