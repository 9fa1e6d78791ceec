"""A plain CNN with as many weights as a `gradnas train` run's network, trained the same way.

    python benchmarks/plain_cnn.py RUN_DIR            # RUN_DIR: a finished gradnas train run

The baseline a found architecture has to beat: the same data (the run's
``config.yaml``: source, subset, augmentation, cutout, batch size, seed), the
same optimizer and schedule (SGD, momentum, weight decay, cosine to
``optim.lr_min``, gradient clipping at ``optim.grad_clip``), the same epochs,
and the same weight count, within 1%, as the run's ``result.json``
``parameters``. The network is the usual small CNN of the Fashion-MNIST
benchmark table ("2 Conv+pooling", with BatchNorm and a third conv): conv 3x3
(w) - conv 3x3 (w) - max-pool - conv 3x3 (2w) - max-pool - conv 3x3 (2w) -
global average pool - linear, each conv followed by BatchNorm and ReLU, with
the width w chosen to match the weight count. Drop-path and the auxiliary
head belong to the DARTS network and have no counterpart here. It prints the
test accuracy on the run's whole test set, beside the run's own.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from gradnas.config import TrainConfig, load_config
from gradnas.data import make_loader
from gradnas.engine.common import evaluate, seed_everything
from gradnas.engine.data import load_data


def conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def plain_cnn(channels: int, classes: int, width: int) -> nn.Sequential:
    w = width
    return nn.Sequential(
        *conv(channels, w),
        *conv(w, w),
        nn.MaxPool2d(2),
        *conv(w, 2 * w),
        nn.MaxPool2d(2),
        *conv(2 * w, 2 * w),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * w, classes),
    )


def weights(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matching_width(channels: int, classes: int, target: int) -> int:
    """The width whose weight count is closest to ``target`` (the count grows with the width)."""
    return min(range(1, 512), key=lambda w: abs(weights(plain_cnn(channels, classes, w)) - target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    cfg = load_config(args.run_dir / "config.yaml", TrainConfig)
    result = json.loads((args.run_dir / "result.json").read_text())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    splits = load_data(cfg.data, cfg.seed)
    width = matching_width(splits.in_channels, splits.num_classes, result["parameters"])
    model = plain_cnn(splits.in_channels, splits.num_classes, width)
    opt = cfg.optim
    optimizer = torch.optim.SGD(
        model.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs, opt.lr_min)
    d = cfg.data
    train = make_loader(
        splits.train_all, d.batch_size, True, cfg.seed, augment=splits.augmentation,
        num_workers=d.num_workers,
    )  # fmt: skip
    test = make_loader(splits.test, d.batch_size, False, cfg.seed, num_workers=d.num_workers)
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        for x, y in train:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
            optimizer.step()
        schedule.step()
        loss, acc = evaluate(model, test)
        print(f"epoch {epoch + 1}/{cfg.epochs}: test accuracy {acc:.4f} (loss {loss:.4f})")
    print(
        f"plain CNN, width {width}, {weights(model):,} weights: test accuracy {acc:.4f} on "
        f"{len(splits.test):,} test images, {time.perf_counter() - start:.0f} s; the run's "
        f"network, {result['parameters']:,} weights: {result['test_acc']:.4f}"
    )


if __name__ == "__main__":
    main()
