"""Images a second that an image-folder loader delivers, with 0 and 2 workers.

    python benchmarks/loader_throughput.py                 # 32 and 224 pixels, 0 and 2 workers
    python benchmarks/loader_throughput.py --quick         # a tiny smoke run

It writes two image folders into a temporary directory: CIFAR-like 32x32 PNGs
(read at 32 pixels, no resizing) and ImageNet-like 400x300 JPEGs (quality 90,
the shorter side resized to 224 and the centre cropped, as ImageNet
evaluation does), each a smooth pattern plus noise so that the codecs have
real work. For each size it times whole epochs of ``gradnas.data.make_loader``
over ``ImageFolderDataset`` (batch 64, shuffled, training augmentation off)
with ``num_workers`` 0 and 2, interleaved (0, 2, 0, 2, ... after one warm-up
epoch each, which also starts the persistent workers), and prints images/s
from the minimum and the median epoch time, and the 2-worker / 0-worker
ratio. Numbers are measured, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gradnas.data import make_loader
from gradnas.data.imagefolder import ImageFolderDataset


def write_images(root: Path, count: int, size: tuple[int, int], ext: str) -> list[Path]:
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    files = []
    for i in range(count):
        base = np.stack(
            [(xx * (i + 1) + yy * 3) % 256, (yy * 2 + i * 40) % 256, (xx + yy) % 256], -1
        )
        noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = root / f"c{i % 10}" / f"{i}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy).save(path, quality=90) if ext == "jpg" else Image.fromarray(
            noisy
        ).save(path)
        files.append(path)
    return files


def epoch_seconds(loader) -> float:
    start = time.perf_counter()
    n = sum(x.shape[0] for x, _ in loader)
    assert n == len(loader.dataset)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1024, help="images per folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds = 128, 1
    torch.set_num_threads(1)
    settings = {32: ((32, 32), "png"), 224: ((400, 300), "jpg")}
    print(
        f"{args.images} images per size, batch 64, {args.rounds} rounds, torch {torch.__version__}"
    )
    print(
        "| image size | source files | workers | images/s (min time) | images/s (median) "
        "| / 0 workers (min) |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for out_size, (src_size, ext) in settings.items():
            files = write_images(Path(tmp) / str(out_size), args.images, src_size, ext)
            labels = [int(p.parent.name[1:]) for p in files]
            data = ImageFolderDataset(files, labels, 3, out_size, (0.5,) * 3, (0.25,) * 3)
            loaders = {w: make_loader(data, 64, True, 0, num_workers=w) for w in (0, 2)}
            times: dict[int, list[float]] = {0: [], 2: []}
            for loader in loaders.values():
                epoch_seconds(loader)  # warm-up; starts the persistent workers
            for _ in range(args.rounds):
                for w, loader in loaders.items():
                    times[w].append(epoch_seconds(loader))
            base = min(times[0])
            for w in (0, 2):
                best, median = min(times[w]), statistics.median(times[w])
                print(
                    f"| {out_size} | {src_size[0]}x{src_size[1]} {ext.upper()} | {w} | "
                    f"{len(files) / best:,.0f} | {len(files) / median:,.0f} | {base / best:.2f} |"
                )


if __name__ == "__main__":
    main()
