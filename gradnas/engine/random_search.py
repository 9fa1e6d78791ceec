"""``gradnas search --algorithm random``: the random-search baseline.

Samples ``random.trials`` genotypes of the DARTS space uniformly (2 distinct
inputs per node, ops other than ``none``), trains each derived network from
scratch for ``random.epochs`` on the search's train half, scores it on the
val half, and keeps the best (Li & Talwalkar, UAI 2019). The run folder holds
``config.yaml``, ``data.json``, ``trials.csv`` (one row per trial: val accuracy, best so far,
weights, seconds, genotype) and the best genotype as ``genotype.json`` /
``genotype.txt``. It writes no checkpoint: an interrupted random search is
started again. Under ``torchrun`` every trial trains data-parallel (DDP) and
rank 0 writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset

from .. import parallel
from ..algorithms.random_search import random_search
from ..config import SearchConfig, dump_config
from ..data import make_loader
from ..genotype import Genotype
from ..genotype_sampling import sample_genotype
from ..spaces.darts import NetworkCIFAR
from .common import csv_text, evaluate, flush_denormals, quiet, seed_everything, to_device
from .data import check_batch_fits, load_data, loader_options, write_data_info
from .files import write_text
from .run_folder import RunFolder
from .threads import choose_threads

TRIAL_COLUMNS = ("trial", "val_acc", "best_val_acc", "parameters", "seconds", "genotype")


def train_and_score(
    genotype: Genotype,
    cfg: SearchConfig,
    train_loader,
    val_loader,
    in_channels: int,
    num_classes: int,
    seed: int,
    replicas: parallel.Replicas = parallel.SINGLE_PROCESS,
    device: torch.device = torch.device("cpu"),
) -> tuple[float, int]:
    """Validation accuracy of ``genotype``'s network after ``random.epochs`` of
    DARTS' SGD (lr from the search config, cosine), and its weight count."""
    seed_everything(seed)
    net = NetworkCIFAR(
        genotype,
        C=cfg.random.C,
        layers=cfg.random.layers,
        in_channels=in_channels,
        num_classes=num_classes,
    ).to(device)
    forward = parallel.wrap(net, replicas, device)
    opt = cfg.optim
    optimizer = torch.optim.SGD(
        net.parameters(), lr=opt.weight_lr, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    steps = cfg.random.epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=steps, eta_min=opt.weight_lr_min
    )
    net.train()
    for _ in range(cfg.random.epochs):
        for batch in train_loader:
            x, y = to_device(batch, device)
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(forward(x), y)
            loss.backward()
            if opt.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), opt.grad_clip)
            optimizer.step()
            scheduler.step()
    replicas.broadcast_buffers_(net)
    _, acc = evaluate(net, val_loader, replicas)
    return acc, sum(p.numel() for p in net.parameters())


def run_random_search(
    cfg: SearchConfig,
    out_dir: str | Path,
    force: bool = False,
    log: Callable[[str], None] = print,
    inputs: Sequence[str | Path] = (),
) -> Genotype:
    """Random search into ``out_dir``, holding its lock from start to end."""
    with RunFolder(out_dir) as folder:
        return _run_random_search(folder, cfg, force, log, inputs)


def _run_random_search(
    folder: RunFolder,
    cfg: SearchConfig,
    force: bool,
    log: Callable[[str], None],
    inputs: Sequence[str | Path],
) -> Genotype:
    out = folder.path
    flush_denormals()
    choose_threads(cfg.threads, log)
    replicas, device = parallel.start(cfg.device)
    main = replicas.is_main
    if not main:
        log = quiet
    d = cfg.data
    splits = load_data(d, cfg.seed)
    check_batch_fits(splits, d.batch_size, ("train", "val"))
    opts = loader_options(d, device) | {"augment": splits.augmentation}
    train_loader = make_loader(
        splits.train,
        d.batch_size,
        shuffle=True,
        seed=cfg.seed,
        rank=replicas.rank,
        world_size=replicas.world_size,
        **opts,
    )
    val_loader = make_loader(
        Subset(splits.val, parallel.shard(len(splits.val), replicas)),
        d.batch_size,
        shuffle=False,
        seed=cfg.seed,
        **opts,
    )
    if main:
        folder.claim_new(force, "random search", inputs)
        write_text(out / "config.yaml", dump_config(cfg))
        write_data_info(out, splits)
    steps = cfg.network.steps
    concat = list(range(2 + steps - cfg.network.multiplier, 2 + steps))
    log(
        f"random search: {cfg.random.trials} genotypes, each trained {cfg.random.epochs} epochs "
        f"(C={cfg.random.C}, {cfg.random.layers} cells) on {d.name} -> {out}"
    )
    rows: list[dict] = []

    def score(genotype: Genotype) -> float:
        start = time.perf_counter()
        trial = len(rows) + 1
        acc, params = train_and_score(
            genotype,
            cfg,
            train_loader,
            val_loader,
            splits.in_channels,
            splits.num_classes,
            seed=cfg.seed + trial,
            replicas=replicas,
            device=device,
        )
        best = max([acc] + [r["val_acc"] for r in rows])
        rows.append(
            {
                "trial": trial,
                "val_acc": round(acc, 6),
                "best_val_acc": round(best, 6),
                "parameters": params,
                "seconds": round(time.perf_counter() - start, 3),
                "genotype": str(genotype),
            }
        )
        if main:
            write_text(out / "trials.csv", csv_text(rows, TRIAL_COLUMNS))
        log(
            f"trial {trial}/{cfg.random.trials}  val_acc {acc:.4f}  best {best:.4f}  "
            f"({rows[-1]['seconds']:.1f}s, {params:,} weights)"
        )
        return acc

    best, best_score, _ = random_search(
        lambda rng: sample_genotype(rng, steps=steps, concat=concat),
        score,
        cfg.random.trials,
        cfg.seed,
    )
    if not main:
        return best
    write_text(out / "genotype.json", best.to_json(indent=2) + "\n")
    write_text(out / "genotype.txt", str(best) + "\n")
    log(f"random search finished in {sum(r['seconds'] for r in rows):.0f}s")
    log(f"  best val acc   {best_score:.4f}")
    log(f"  genotype       {best}")
    log(f"  files          {out}/: config.yaml data.json trials.csv genotype.json genotype.txt")
    return best
