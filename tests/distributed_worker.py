"""Started by tests/test_distributed.py, under torchrun or as one plain process.

For each algorithm named on the command line: build the search of the given
config through the engine's own functions, take a few steps, and save this
rank's weights, alphas and buffers to OUT/<algorithm>-rank<r>.pt.

``--float64``: the supernet and data in float64, and every BatchNorm fixed in
eval mode (normalising with its running statistics, which stay at 0 and 1),
so the network has no batch statistics and N ranks with batch b compute
exactly what one process with batch N*b computes.
"""

import argparse
import dataclasses
import types

import torch

from gradnas import parallel
from gradnas.config import load_config
from gradnas.engine.search import build_search, place_on_device


def freeze_batchnorm(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
            # supernet.train() leaves it in eval
            m.train = types.MethodType(lambda self, mode=True: self, m)


def run(algorithm: str, config: str, out: str, steps: int, float64: bool) -> None:
    cfg = dataclasses.replace(load_config(config), algorithm=algorithm)
    replicas, device = parallel.start("cpu")
    setup = build_search(cfg, replicas, device)
    if float64:
        freeze_batchnorm(setup.supernet)
        setup.supernet.double()
        setup.mutator.double()
    place_on_device(setup, cfg)
    setup.algorithm.on_epoch_start(0, cfg.epochs)
    batches = iter(setup.train_loader)
    first_labels = None
    for _ in range(steps):
        (x, y), (xv, yv) = next(batches), next(setup.val_stream)
        first_labels = y.clone() if first_labels is None else first_labels
        if float64:
            x, xv = x.double(), xv.double()
        setup.algorithm.step((x, y), (xv, yv))
    # as the engine does before evaluating or checkpointing
    setup.replicas.broadcast_buffers_(setup.supernet)
    alphas = getattr(setup.mutator, "arch_params", {})
    torch.save(
        {
            "weights": {n: p.detach().clone() for n, p in setup.supernet.named_parameters()},
            "alphas": {k: a.detach().clone() for k, a in alphas.items()},
            "alpha_grads": {k: a.grad.clone() for k, a in alphas.items() if a.grad is not None},
            "buffers": {n: b.clone() for n, b in setup.supernet.named_buffers()},
            "rng": torch.get_rng_state(),
            "first_labels": first_labels,
        },
        f"{out}/{algorithm}-rank{replicas.rank}.pt",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("algorithms", nargs="+")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--float64", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for algorithm in args.algorithms:
        run(algorithm, args.config, args.out, args.steps, args.float64)
    parallel.finish()


if __name__ == "__main__":
    main()
