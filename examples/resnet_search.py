"""Search your own model: a small ResNet-style supernet on the bundled 8x8 digits.

Each block chooses its convolution (3x3, 5x5, dilated, separable, or a
skip), and each stage chooses which two earlier outputs it sums (an edge:
the block's output plus a shortcut is a residual block). The supernet is
written once; ``--algorithm darts``, ``gdas`` or ``spos`` (or any of
darts2, snas, drnas, random) search it. Then the found network is retrained
from scratch and exported to ONNX.

    python examples/resnet_search.py --algorithm gdas --epochs 10 --out runs/resnet
    gradnas search --space examples/resnet_search.py:build --algorithm spos   # the same, by CLI
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

import gradnas
from gradnas.mutables import DifferentiableEdge, DifferentiableOP


def conv(C: int, k: int, dilation: int = 1, groups: int = 1) -> nn.Module:
    pad = dilation * (k - 1) // 2  # keeps the spatial size
    return nn.Sequential(
        nn.Conv2d(C, C, k, padding=pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(C),
        nn.ReLU(),
    )


def choices(C: int) -> dict[str, nn.Module]:
    return {
        "conv_3x3": conv(C, 3),
        "conv_5x5": conv(C, 5),
        "dil_conv_3x3": conv(C, 3, dilation=2),
        "sep_conv_3x3": nn.Sequential(conv(C, 3, groups=C), conv(C, 1)),
        "skip": nn.Identity(),
    }


class ResNetSpace(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, C: int = 16, blocks: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        self.blocks = nn.ModuleList(
            DifferentiableOP(choices(C), f"block{i}") for i in range(blocks)
        )
        # Stage i sums 2 of: the stem, the earlier stages' outputs, and block i's output.
        self.sums = nn.ModuleList(
            DifferentiableEdge({f"in{j}": nn.Identity() for j in range(i + 2)}, f"sum{i}", True, 2)
            for i in range(blocks)
        )
        self.head = nn.Linear(C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [self.stem(x)]
        for block, stage_sum in zip(self.blocks, self.sums, strict=True):
            states.append(stage_sum([*states, block(states[-1])]))
        return self.head(states[-1].mean((2, 3)))  # (N, C, H, W) -> (N, C) -> logits


def build(in_channels: int, num_classes: int) -> nn.Module:
    """The factory ``gradnas search --space examples/resnet_search.py:build`` calls."""
    return ResNetSpace(in_channels, num_classes)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="darts")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-epochs", type=int, default=20)
    parser.add_argument("--out", default="runs/resnet")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    from gradnas.data.sources import load_splits
    from gradnas.engine.train import load_trained
    from gradnas.export import export_onnx

    data = load_splits("digits")  # any Dataset of (image, label) pairs works the same
    out = Path(args.out)
    found = gradnas.search(
        build, data.train, data.val, algorithm=args.algorithm, epochs=args.epochs,
        out=out / "search", threads=args.threads, force=True, progress=False,
    )  # fmt: skip
    print("found", found.arch)
    trained = gradnas.train(
        found.out_dir, data.train_all, data.test, factory=build, epochs=args.train_epochs,
        out=out / "train", threads=args.threads, force=True, progress=False,
    )  # fmt: skip
    model, _ = load_trained(trained.out_dir)
    export_onnx(model, torch.zeros(1, 1, 8, 8), out / "train" / "model.onnx")
    print(f"test accuracy {trained.test_acc:.4f}; exported {out / 'train' / 'model.onnx'}")
    return out


if __name__ == "__main__":
    main()
