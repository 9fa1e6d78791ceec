"""One search step of gradnas' DARTS supernet against a plain DARTS supernet.

    python benchmarks/search_step.py                # batch 32 and 64, every algorithm, 3 rounds
    python benchmarks/search_step.py --quick        # a tiny smoke run
    python benchmarks/search_step.py --batch-sizes 32 --algorithms darts1,gdas --memory-efficient
    # 2nd / 1st order only:
    python benchmarks/search_step.py --algorithms darts1,darts2 --no-reference --threads 1

For the DARTS space (C=16, 8 cells, 10 classes, 3x32x32 inputs) it times one
search step after warm-up and records the peak memory of each configuration,
every configuration in a fresh subprocess (peak RSS from
``resource.getrusage().ru_maxrss``). The reference is a supernet written in
this file the way the original DARTS code is written (quark0/darts
``cnn/model_search.py``: a Python loop over all 8 ops on each of the 14
edges, ``none`` computed as ``x * 0``, a leading ReLU inside every conv op, an
affine-free BatchNorm after every pool, ``sum(w * op(x) for w, op in
zip(weights, ops))``), holding the same initial weights as gradnas' supernet
(copied by parameter order). Both take their step through the same gradnas
algorithm class (:class:`gradnas.algorithms.darts.Darts`), so only the
supernet differs.

Runs are interleaved (reference, gradnas, reference, gradnas, ... in each
round) because the machine is shared and timings drift; the ratios printed
are gradnas / reference of the *minimum* step time over all rounds, with the
ratio of the medians beside. Before timing, gradnas' and the reference's
outputs and gradients (weights and alphas) are compared on identical inputs
and the largest absolute differences printed, so a speed-up cannot silently
change results. Numbers are measured, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gradnas.algorithms.darts import Darts
from gradnas.algorithms.drnas import DrNas
from gradnas.algorithms.gdas import Gdas
from gradnas.algorithms.pcdarts import PCDarts
from gradnas.algorithms.snas import Snas, snas_op_mutable
from gradnas.mutables import GumbelOP
from gradnas.mutables.dirichlet_op import DirichletOP
from gradnas.mutators import DartsMutator, SnasMutator
from gradnas.spaces.darts import DartsSearchNetwork

STEPS, MULTIPLIER = 4, 4  # intermediate nodes per cell, and how many a cell concatenates (DARTS)
# DARTS' primitives, in the order of quark0/darts cnn/genotypes.py.
REF_PRIMITIVES = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
ALGORITHMS = {  # name -> row label
    "darts1": "DARTS 1st order",
    "darts2": "DARTS 2nd order",
    "gdas": "GDAS",
    "pcdarts": "PC-DARTS",
    "snas": "SNAS",
    "drnas": "DrNAS",
}
REFERENCE_LABEL = "reference DARTS 1st order (plain supernet)"


@dataclasses.dataclass(frozen=True)
class Space:
    """The benchmarked network and data shape."""

    C: int = 16  # channels of the first cells (DARTS CIFAR-10 search: 16)
    layers: int = 8  # cells (DARTS CIFAR-10 search: 8)
    num_classes: int = 10
    in_channels: int = 3
    size: int = (
        32  # input height and width; even at every cell (32, 16, 8) for the reference's reduce
    )


FULL = Space()
QUICK = Space(C=4, layers=3, num_classes=10, in_channels=3, size=8)


# -- the plain reference supernet (the layout of quark0/darts cnn/model_search.py) --


class RefReLUConvBN(nn.Module):
    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class RefDilConv(nn.Module):
    def __init__(self, C: int, kernel_size: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, kernel_size, stride, padding, dilation=dilation, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False),
            nn.BatchNorm2d(C, affine=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class RefSepConv(nn.Module):
    def __init__(self, C: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, kernel_size, stride, padding, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False),
            nn.BatchNorm2d(C, affine=False),
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, kernel_size, 1, padding, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False),
            nn.BatchNorm2d(C, affine=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class RefZero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class RefFactorizedReduce(nn.Module):
    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


REF_OPS: dict[str, Callable[[int, int], nn.Module]] = {
    "none": lambda C, stride: RefZero(stride),
    "max_pool_3x3": lambda C, stride: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "skip_connect": lambda C, stride: nn.Identity() if stride == 1 else RefFactorizedReduce(C, C),
    "sep_conv_3x3": lambda C, stride: RefSepConv(C, 3, stride, 1),
    "sep_conv_5x5": lambda C, stride: RefSepConv(C, 5, stride, 2),
    "dil_conv_3x3": lambda C, stride: RefDilConv(C, 3, stride, 2, 2),
    "dil_conv_5x5": lambda C, stride: RefDilConv(C, 5, stride, 4, 2),
}


class RefMixedOp(nn.Module):
    def __init__(self, C: int, stride: int) -> None:
        super().__init__()
        self._ops = nn.ModuleList()
        for primitive in REF_PRIMITIVES:
            op = REF_OPS[primitive](C, stride)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self._ops.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class RefCell(nn.Module):
    def __init__(
        self, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = RefFactorizedReduce(C_prev_prev, C)
        else:
            self.preprocess0 = RefReLUConvBN(C_prev_prev, C)
        self.preprocess1 = RefReLUConvBN(C_prev, C)
        self._ops = nn.ModuleList()
        for i in range(STEPS):
            for j in range(2 + i):
                self._ops.append(RefMixedOp(C, 2 if reduction and j < 2 else 1))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(STEPS):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-MULTIPLIER:], dim=1)


class RefNetwork(nn.Module):
    """DARTS' search network; ``alphas_normal`` / ``alphas_reduce`` (14 x 8) are
    plain leaf tensors, so ``parameters()`` are the weights only."""

    def __init__(self, space: Space, stem_multiplier: int = 3) -> None:
        super().__init__()
        C_curr = stem_multiplier * space.C
        self.stem = nn.Sequential(
            nn.Conv2d(space.in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, space.C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(space.layers):
            reduction = i in (space.layers // 3, 2 * space.layers // 3)
            if reduction:
                C_curr *= 2
            self.cells.append(RefCell(C_prev_prev, C_prev, C_curr, reduction, reduction_prev))
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, MULTIPLIER * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, space.num_classes)
        k = sum(2 + i for i in range(STEPS))  # 14 edges
        self.alphas_normal = (1e-3 * torch.randn(k, len(REF_PRIMITIVES))).requires_grad_()
        self.alphas_reduce = (1e-3 * torch.randn(k, len(REF_PRIMITIVES))).requires_grad_()

    def arch_parameters(self) -> list[torch.Tensor]:
        return [self.alphas_normal, self.alphas_reduce]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights = F.softmax(
                self.alphas_reduce if cell.reduction else self.alphas_normal, dim=-1
            )
            s0, s1 = s1, cell(s0, s1, weights)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))


def ref_alpha_rows(mutator: DartsMutator) -> list[list[str]]:
    """Space ids of gradnas' op decisions in the order of the reference's alpha rows."""
    return [
        [f"{cell_type}_node{i}_input{j}" for i in range(STEPS) for j in range(2 + i)]
        for cell_type in ("normal", "reduce")
    ]


def copy_into_reference(net: nn.Module, mutator: DartsMutator, ref: RefNetwork) -> None:
    """gradnas' weights into the reference by parameter order, alphas by space id."""
    net_params, ref_params = list(net.parameters()), list(ref.parameters())
    if len(net_params) != len(ref_params):
        raise RuntimeError(
            f"gradnas has {len(net_params)} weight tensors, the reference {len(ref_params)}"
        )
    with torch.no_grad():
        for p, q in zip(net_params, ref_params):
            if p.shape != q.shape:
                raise RuntimeError(f"weight shapes differ: {tuple(p.shape)} vs {tuple(q.shape)}")
            q.copy_(p)
        for rows, ids in zip(ref.arch_parameters(), ref_alpha_rows(mutator)):
            for row, space_id in zip(rows, ids):
                row.copy_(mutator.arch_params[space_id])


# -- building each side ----------------------------------------------------------


def build_gradnas(algorithm: str, space: Space, memory_efficient: bool):
    """gradnas' supernet, mutator and algorithm for ``algorithm``, each as its module documents."""
    kwargs: dict = {}
    if algorithm == "gdas":
        kwargs["op_mutable"] = functools.partial(GumbelOP, tau=10.0, hard=True)  # GDAS' tau_max
    elif algorithm == "pcdarts":
        kwargs.update(partial_channels=4, edge_alpha=True)  # PC-DARTS, K = 4
    elif algorithm == "snas":
        kwargs["op_mutable"] = snas_op_mutable
    elif algorithm == "drnas":
        kwargs["op_mutable"] = DirichletOP
    if memory_efficient:
        kwargs["memory_efficient"] = True
    net = DartsSearchNetwork(
        C=space.C,
        layers=space.layers,
        num_classes=space.num_classes,
        in_channels=space.in_channels,
        **kwargs,
    )
    mutator = SnasMutator() if algorithm == "snas" else DartsMutator()
    mutator.prepare_from_supernet(net)
    # DARTS' optimizers (quark0/darts train_search.py defaults); the others differ in lr only.
    w_opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(
        mutator.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3
    )
    if algorithm in ("darts1", "darts2"):
        algo = Darts(net, mutator, w_opt, a_opt, unrolled=algorithm == "darts2")
    elif algorithm == "gdas":
        algo = Gdas(net, mutator, w_opt, a_opt)
    elif algorithm == "pcdarts":
        algo = PCDarts(net, mutator, w_opt, a_opt, warmup_epochs=0)  # time the full bilevel step
    elif algorithm == "snas":
        algo = Snas(net, mutator, w_opt, a_opt)
    else:
        algo = DrNas(net, mutator, w_opt, a_opt)
    return net, mutator, algo


def build_reference(space: Space):
    """The plain supernet with gradnas' initial weights, stepped by gradnas' Darts (first order)."""
    net = DartsSearchNetwork(
        C=space.C, layers=space.layers, num_classes=space.num_classes, in_channels=space.in_channels
    )
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    ref = RefNetwork(space)
    copy_into_reference(net, mutator, ref)
    del net, mutator
    w_opt = torch.optim.SGD(ref.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(ref.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    # Darts reads the optimizers, never the mutator, in a step
    return ref, Darts(ref, None, w_opt, a_opt)


def batches(space: Space, batch_size: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(batch_size, space.in_channels, space.size, space.size, generator=gen),
            torch.randint(0, space.num_classes, (batch_size,), generator=gen),
        )
        for _ in range(2)
    ]


# -- one configuration -----------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_config(config: dict) -> dict:
    """Time ``config['steps']`` search steps after ``config['warmup']`` and report peak memory."""
    inherited = peak_rss_mib()
    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    space = Space(**config["space"])
    if config["impl"] == "reference":
        _, algo = build_reference(space)  # builds gradnas' supernet for its weights, then drops it
    else:
        _, _, algo = build_gradnas(config["algorithm"], space, config["memory_efficient"])
        # so that both kinds of process built both networks before the baseline
        del_me = RefNetwork(space)
        del del_me
    train, val = batches(space, config["batch"])
    base = peak_rss_mib()
    times = []
    for i in range(config["warmup"] + config["steps"]):
        start = time.perf_counter()
        algo.step(train, val)
        if i >= config["warmup"]:
            times.append(time.perf_counter() - start)
    return {
        "times": times,
        "peak_rss_mib": peak_rss_mib(),
        "base_rss_mib": base,
        "inherited_rss_mib": inherited,
    }


def run_task(config: dict) -> dict:
    return run_checks(config) if config["task"] == "check" else run_config(config)


def run_in_subprocess(config: dict) -> dict:
    """``run_task`` in a fresh interpreter, so that its peak RSS is this configuration's alone.

    Linux starts a child's ``ru_maxrss`` at its parent's RSS, so the parent
    must stay small: this driver never builds a network itself (the checks
    run in a subprocess too), and each worker reports the floor it inherited.
    """
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(config)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker for {config} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- correctness check -----------------------------------------------------------


def max_abs_diff(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]) -> float:
    return max((x.detach() - y.detach()).abs().max().item() for x, y in zip(xs, ys, strict=True))


def check_against_reference(
    space: Space, batch_size: int, dtype: torch.dtype, memory_efficient: bool, floor: bool = False
) -> dict:
    """Largest |gradnas - reference| of the logits, every weight gradient, every
    alpha gradient and every BatchNorm running statistic, after one training
    forward and backward on the same batch.

    ``floor=True`` compares the reference with itself run on a channels-last
    copy of the input instead: the rounding noise of the reference alone,
    which bounds how close any other implementation can be in ``dtype``.
    """
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        torch.manual_seed(0)
        kwargs = {"memory_efficient": True} if memory_efficient else {}
        net = DartsSearchNetwork(
            C=space.C,
            layers=space.layers,
            num_classes=space.num_classes,
            in_channels=space.in_channels,
            **kwargs,
        )
        mutator = DartsMutator()
        mutator.prepare_from_supernet(net)
        ref = RefNetwork(space)
        copy_into_reference(net, mutator, ref)
        x, y = batches(space, batch_size, seed=2)[0]
        ids = ref_alpha_rows(mutator)
        n = len(list(net.parameters()))
        if floor:
            other = RefNetwork(space)
            other.load_state_dict(ref.state_dict())
            with torch.no_grad():
                for a, b in zip(other.arch_parameters(), ref.arch_parameters()):
                    a.copy_(b)
            out = other(x.contiguous(memory_format=torch.channels_last))
            grads = torch.autograd.grad(
                F.cross_entropy(out, y), list(other.parameters()) + other.arch_parameters()
            )
            alpha_grads, bn = (
                list(grads[n:]),
                [m for m in other.modules() if isinstance(m, nn.BatchNorm2d)],
            )
        else:
            out = net(x)
            alphas = [mutator.arch_params[i] for rows in ids for i in rows]
            grads = torch.autograd.grad(F.cross_entropy(out, y), list(net.parameters()) + alphas)
            alpha_grads = [
                torch.stack(grads[n : n + len(ids[0])]),
                torch.stack(grads[n + len(ids[0]) :]),
            ]
            bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        ref_out = ref(x)
        ref_grads = torch.autograd.grad(
            F.cross_entropy(ref_out, y), list(ref.parameters()) + ref.arch_parameters()
        )
        ref_bn = [m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)]
        stats = [t for m in bn for t in (m.running_mean, m.running_var)]
        ref_stats = [t for m in ref_bn for t in (m.running_mean, m.running_var)]
        return {
            "logits": max_abs_diff([out], [ref_out]),
            "weight_grads": max_abs_diff(grads[:n], ref_grads[:n]),
            "alpha_grads": max_abs_diff(alpha_grads, ref_grads[n:]),
            "bn_stats": max_abs_diff(stats, ref_stats) if len(bn) == len(ref_bn) else float("nan"),
        }
    finally:
        torch.set_default_dtype(before)


def run_checks(config: dict) -> dict:
    """The report lines of the correctness checks (see the module docstring)."""
    torch.set_num_threads(config["threads"])
    space = Space(**config["space"])
    batch = config["batch"]
    cases = [
        ("gradnas", me, dtype) for me in config["modes"] for dtype in (torch.float64, torch.float32)
    ]
    cases.append(("floor", False, torch.float32))
    lines = []
    for kind, memory_efficient, dtype in cases:
        d = check_against_reference(space, batch, dtype, memory_efficient, floor=kind == "floor")
        if kind == "floor":
            what = "reference - reference on channels-last input (float32 rounding floor)"
        else:
            mode = "memory-efficient" if memory_efficient else "default"
            what = f"gradnas - reference ({mode}, {str(dtype).removeprefix('torch.')})"
        lines.append(
            f"max |{what}|, batch {batch}: logits {d['logits']:.2e}, weight grads "
            f"{d['weight_grads']:.2e}, alpha grads {d['alpha_grads']:.2e}, "
            f"BN running stats {d['bn_stats']:.2e}"
        )
    if config["gdas"]:
        ran, decisions = gdas_ops_run_per_forward(space)
        lines.append(
            f"GDAS: {ran} candidate ops ran in one forward over {decisions} op decisions (one per edge)"
        )
    return {"lines": lines}


def gdas_ops_run_per_forward(space: Space) -> tuple[int, int]:
    """(candidate ops run in one GDAS forward, op decisions in the supernet): equal when
    only the sampled op of each edge runs."""
    torch.manual_seed(0)
    net, _mutator, _ = build_gradnas("gdas", space, memory_efficient=False)
    ran = [0]

    def count(*_):
        ran[0] += 1

    mixed = [m for m in net.modules() if isinstance(m, GumbelOP)]
    for m in mixed:
        for op in m.choices.values():
            op.register_forward_hook(count)
    net(batches(space, 2)[0][0])
    return ran[0], len(mixed)


# -- the driver ------------------------------------------------------------------


def summarise(results: list[dict]) -> dict:
    times = [t for r in results for t in r["times"]]
    return {
        "min": min(times),
        "median": statistics.median(times),
        "max": max(times),
        "peak": max(r["peak_rss_mib"] for r in results),
        "step_mem": max(r["peak_rss_mib"] - r["base_rss_mib"] for r in results),
    }


def markdown_table(
    rows: list[tuple[str, str, int, dict]], refs: dict[int, dict], darts1: dict
) -> str:
    """One row per configuration; the reference columns read "-" when the reference did not run."""
    lines = [
        "| algorithm | mode | batch | step min / median / max (s) | peak RSS (MiB) | step memory (MiB) "
        "| time / ref (min) [median] | peak RSS / ref | step memory / ref "
        "| time / gradnas DARTS 1st (min) [median] |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, mode, batch, s in rows:
        ref = refs.get(batch)
        own = darts1.get(batch)
        vs_own = (
            f"{s['min'] / own['min']:.2f} [{s['median'] / own['median']:.2f}]"
            if own is not None
            else "-"
        )
        vs_ref = (
            "| - | - | -"
            if ref is None
            else (
                f"| {s['min'] / ref['min']:.2f} [{s['median'] / ref['median']:.2f}] "
                f"| {s['peak'] / ref['peak']:.2f} | {_ratio(s['step_mem'], ref['step_mem'])}"
            )
        )
        lines.append(
            f"| {label} | {mode} | {batch} | {s['min']:.3f} / {s['median']:.3f} / {s['max']:.3f} "
            f"| {s['peak']:.0f} | {s['step_mem']:.0f} {vs_ref} | {vs_own} |"
        )
    return "\n".join(lines)


def second_order_lines(
    results: dict[tuple, list[dict]], batch_sizes: Sequence[int], modes: Sequence[bool]
) -> list[str]:
    """Per batch size and mode: DARTS 2nd order / gradnas' own DARTS 1st order step time."""
    lines = []
    for memory_efficient in modes:
        for batch in batch_sizes:
            first = results.get(("darts1", batch, memory_efficient))
            second = results.get(("darts2", batch, memory_efficient))
            if first is None or second is None:
                continue
            s1, s2 = summarise(first), summarise(second)
            mode = "memory-efficient" if memory_efficient else "default"
            lines.append(
                f"DARTS 2nd order / gradnas DARTS 1st order ({mode}), batch {batch}: "
                f"{s2['min'] / s1['min']:.2f} (min), {s2['median'] / s1['median']:.2f} (median)"
            )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--batch-sizes", default="32,64", help="comma-separated batch sizes (default 32,64)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds, each configuration once per round in a fresh process (default 3)",
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed steps before them (default 1)"
    )
    parser.add_argument(
        "--algorithms",
        default=",".join(ALGORITHMS),
        help=f"comma-separated, from {','.join(ALGORITHMS)} (default all)",
    )
    parser.add_argument(
        "--memory-efficient",
        action="store_true",
        help="also time gradnas with DartsSearchNetwork(memory_efficient=True)",
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the plain reference supernet (its columns read '-'); e.g. to time\n"
        "DARTS 2nd order against gradnas' own 1st order on a busy machine",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: the cores this process may use; 1 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny smoke run: C=4, 3 cells, 8x8 inputs, batch 2, 1 round of 1 step",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run every configuration in this process (peak memory is then this process's "
        "high-water mark, not per configuration); for smoke runs",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is None:
        args.algorithms = [a for a in args.algorithms.split(",") if a]
        unknown = [a for a in args.algorithms if a not in ALGORITHMS]
        if unknown or not args.algorithms:
            parser.error(f"unknown algorithm(s) {unknown}; choose from {list(ALGORITHMS)}")
        try:
            args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
        except ValueError:
            parser.error(
                f"--batch-sizes must be comma-separated integers, got {args.batch_sizes!r}"
            )
        if args.threads is None:
            args.threads = 1 if args.quick else len(os.sched_getaffinity(0))
        if args.quick:
            args.batch_sizes, args.rounds, args.steps, args.warmup = [2], 1, 1, 1
        if not args.batch_sizes or min(args.batch_sizes) < 2:
            parser.error("--batch-sizes needs batch sizes >= 2 (BatchNorm in training mode)")
        for name in ("rounds", "steps", "threads"):
            if getattr(args, name) < 1:
                parser.error(f"--{name} must be >= 1")
        if args.warmup < 0:
            parser.error("--warmup must be >= 0")
    return args


def _ratio(a: float, b: float) -> str:
    """a / b to two decimals; "n/a" when the reference grew no memory (in-process smoke runs)."""
    return f"{a / b:.2f}" if b else "n/a"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        print(json.dumps(run_task(json.loads(args.worker))))
        return
    space = QUICK if args.quick else FULL
    run = run_task if args.in_process else run_in_subprocess
    modes = [False, True] if args.memory_efficient else [False]
    print(
        f"# DARTS space C={space.C}, {space.layers} cells, {space.num_classes} classes, "
        f"{space.in_channels}x{space.size}x{space.size}; torch {torch.__version__}, {args.threads} threads; "
        f"{args.rounds} round(s) x {args.steps} step(s) after {args.warmup} warm-up\n"
    )

    # One thread: the checks time nothing, and on a busy machine small ops under
    # several OpenMP threads can be slower by orders of magnitude.
    checks = {
        "task": "check",
        "space": dataclasses.asdict(space),
        "threads": 1,
        "batch": 2 if args.quick else 4,
        "modes": modes,
        "gdas": "gdas" in args.algorithms,
    }
    print("\n".join(run(checks)["lines"]) + "\n")

    base = {
        "task": "time",
        "space": dataclasses.asdict(space),
        "threads": args.threads,
        "steps": args.steps,
        "warmup": args.warmup,
        "memory_efficient": False,
    }
    jobs = []  # (key, config)
    for batch in args.batch_sizes:
        if not args.no_reference:
            jobs.append(
                (
                    ("reference", batch, False),
                    {**base, "impl": "reference", "algorithm": "darts1", "batch": batch},
                )
            )
        for algorithm in args.algorithms:
            for memory_efficient in modes:
                jobs.append(
                    (
                        (algorithm, batch, memory_efficient),
                        {
                            **base,
                            "impl": "gradnas",
                            "algorithm": algorithm,
                            "batch": batch,
                            "memory_efficient": memory_efficient,
                        },
                    )
                )
    results: dict[tuple, list[dict]] = {}
    for r in range(args.rounds):
        # Alternate the order each round, so that a slow drift of the shared machine
        # does not always favour the same side.
        for key, config in jobs if r % 2 == 0 else jobs[::-1]:
            results.setdefault(key, []).append(run(config))
            print(f"round {r + 1}/{args.rounds}: {key} done", file=sys.stderr, flush=True)

    refs = {
        batch: summarise(results[("reference", batch, False)])
        for batch in args.batch_sizes
        if ("reference", batch, False) in results
    }
    darts1 = {
        batch: summarise(results[("darts1", batch, False)])
        for batch in args.batch_sizes
        if ("darts1", batch, False) in results
    }
    rows = []
    for batch in args.batch_sizes:
        if batch in refs:
            rows.append((REFERENCE_LABEL, "plain", batch, refs[batch]))
        for algorithm in args.algorithms:
            for memory_efficient in modes:
                rows.append(
                    (
                        ALGORITHMS[algorithm],
                        "memory-efficient" if memory_efficient else "default",
                        batch,
                        summarise(results[(algorithm, batch, memory_efficient)]),
                    )
                )
    print(markdown_table(rows, refs, darts1))
    ratios = second_order_lines(results, args.batch_sizes, modes)
    if ratios:
        print("\n" + "\n".join(ratios))
    print(
        "\nratios are gradnas / reference on identical initial weights; time ratios compare the minimum step "
        "time over all rounds (medians in brackets); step memory is the peak RSS minus the RSS before the "
        "first step."
    )
    everything = [r for rs in results.values() for r in rs]
    inherited = max(r["inherited_rss_mib"] for r in everything)
    lowest_base = min(r["base_rss_mib"] for r in everything)
    if args.in_process:
        print(
            "--in-process: every configuration ran in this process, "
            "so the memory columns are not per configuration."
        )
    elif inherited >= lowest_base:
        print(
            f"WARNING: a worker inherited a peak RSS of {inherited:.0f} "
            "MiB from this driver, above a baseline of "
            f"{lowest_base:.0f} MiB: the peak RSS columns are unreliable."
        )


if __name__ == "__main__":
    main()
