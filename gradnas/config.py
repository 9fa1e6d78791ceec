"""Typed run configurations, loaded from YAML with every key checked.

A config file mirrors the dataclasses below: top-level keys are the fields of
:class:`SearchConfig`, nested sections those of :class:`DataConfig`,
:class:`NetworkConfig` and :class:`OptimConfig`. A key that does not exist, a
value of the wrong type or out of range raises :class:`ConfigError` naming the
key, so a typo never runs silently with a default.

>>> cfg = config_from_dict({"epochs": 3, "network": {"C": 4}})
>>> cfg.epochs, cfg.network.C, cfg.network.layers
(3, 4, 5)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import limits
from .errors import GradnasError
from .import_path import is_reference as is_space_reference
from .limits import darts_weight_bytes, gib, split_sizes

ALGORITHMS = ("darts", "darts2", "gdas", "pcdarts", "snas", "drnas", "spos", "random")
SPACES = ("darts", "nb201")
DEVICES = ("auto", "cpu", "cuda")  # auto: this rank's GPU when CUDA is available, else the CPU
NB201_ALGORITHMS = (
    "darts",
    "darts2",
    "gdas",
    "snas",
    "drnas",
)  # pcdarts, spos, random: DARTS cells only
HESSIANS = ("finite_difference", "exact")
REGULARIZERS = ("l2", "kl")
DATASETS = ("digits", "imagefolder", "mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100")
# The sources that read data_dir; fashion_mnist has a default (Debian's dataset-fashion-mnist).
FILE_DATASETS = ("imagefolder", "mnist", "kmnist", "cifar10", "cifar100")


class ConfigError(GradnasError, ValueError):
    """A config that cannot be used; the message names the key."""


@dataclass
class DataConfig:
    # digits (bundled 8x8, no download), imagefolder, mnist, fashion_mnist, kmnist, cifar10,
    # cifar100, a Dataset factory MODULE:FACTORY / FILE.py:FACTORY called as FACTORY(seed), or
    # "datasets": the (train, test) objects given to run_search / run_train
    name: str = "digits"
    data_dir: str = ""  # the files of imagefolder, mnist, kmnist, cifar*; fashion_mnist: Debian's
    batch_size: int = 64
    val_fraction: float = (
        0.5  # share of the search data used as DARTS' validation half (DARTS: 0.5)
    )
    test_fraction: float = 0.2  # digits and a one-folder imagefolder: held out as the test set
    augment: bool = False  # random shift (image_size // 8 pixels) and, on natural images, flip
    cutout: int = 0  # cutout length on training images; DARTS retrains CIFAR with 16
    subset: int = 0  # use N training images (class-stratified, seeded); 0: all
    image_size: int = 0  # resize (and centre-crop) images to this side; 0: the data's own
    channels: int = 0  # 1 (grey) or 3 (RGB); 0: the data's own
    mean: list[float] = field(default_factory=list)  # per channel on [0, 1]; empty: computed
    std: list[float] = field(default_factory=list)  # likewise; given together with mean
    num_workers: int = 0  # DataLoader worker processes decoding images; 0: in the main process


@dataclass
class NetworkConfig:
    C: int = 8  # channels of the first cells; DARTS' CIFAR search uses 16
    layers: int = 5  # cells; DARTS' CIFAR search uses 8
    steps: int = 4  # intermediate nodes per cell
    multiplier: int = 4  # last states concatenated into a cell's output
    stem_multiplier: int = 3


@dataclass
class OptimConfig:
    # Weight optimizer, DARTS defaults: SGD 0.025, momentum 0.9, wd 3e-4, cosine to 0.001, clip 5.
    weight_lr: float = 0.025
    weight_lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    # Architecture optimizer, DARTS: Adam betas (0.5, 0.999), wd 1e-3. The
    # lr default is above DARTS' 3e-4 because a digits search runs ~190 steps
    # instead of ~39k, and the alphas must move far enough to decide (measured:
    # 0.01 x 16 epochs left the derived ops at 1.48x uniform, 0.015 at 1.66x).
    arch_lr: float = 0.015
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 1e-3


@dataclass
class DartsOptions:
    # darts2 (second order): the mixed Hessian-vector product by central finite
    # differences (DARTS eq. 8) or exactly, by double backward.
    hessian: str = "finite_difference"


@dataclass
class GdasOptions:
    # Linear temperature schedule, tau_max at the first epoch to tau_min at the
    # last (GDAS, Dong & Yang 2019, search scripts: --tau_max 10 --tau_min 0.1).
    tau_max: float = 10.0
    tau_min: float = 0.1


@dataclass
class PCDartsOptions:
    partial_channels: int = 4  # K: 1/K of the channels go through the mixed op (PC-DARTS: 4)
    warmup_fraction: float = 0.3  # alphas frozen for this share of the epochs (PC-DARTS: 15 of 50)


@dataclass
class SnasOptions:
    # Soft Gumbel temperature, annealed linearly (SNAS release: 1 -> 0.03).
    tau_start: float = 1.0
    tau_end: float = 0.03
    resource_penalty: float = (
        0.0  # weight of the expected op cost (parameter count) in the loss; 0: off
    )


@dataclass
class DrnasOptions:
    # l2: the arch optimizer's weight decay (DrNAS default); kl: + kl_weight * KL(Dir || Dir(1))
    regularizer: str = "l2"
    kl_weight: float = 1e-3
    # DrNAS' progressive schedule (DARTS space; xiangning-chen/DrNAS, DARTS-space/train_search.py):
    # the supernet has the 7 DARTS ops without `none` and partial channels; the search runs in
    # stages, and before each later stage every edge keeps only its strongest ops and the
    # partial-channel ops widen to the stage's K. One list entry per stage.
    progressive: bool = False
    # share of the epochs (release: 25 + 25 of 50)
    stage_fractions: list[float] = field(default_factory=lambda: [0.5, 0.5])
    warmup_fraction: float = (
        0.4  # share of each stage without architecture steps (release: 10 of 25 epochs)
    )
    # K per stage (release: ks = [6, 4])
    partial_channels: list[int] = field(default_factory=lambda: [6, 4])
    # ops per edge in each stage (release: num_keeps = [7, 4])
    num_ops: list[int] = field(default_factory=lambda: [7, 4])


@dataclass
class SposOptions:
    # Evolutionary search over paths after the supernet training (SPOS release's
    # search script: population 50, 20 generations, top 10 parents, mutation 0.1).
    population: int = 50
    generations: int = 20
    parents: int = 10
    mutation_prob: float = 0.1
    bn_batches: int = (
        0  # re-estimate BatchNorm statistics per path on N training batches (SPOS); 0: off
    )


@dataclass
class RandomOptions:
    # Random search (Li & Talwalkar, UAI 2019): sample `trials` genotypes, train
    # each derived network for `epochs` on the train half, keep the best on val.
    trials: int = 8
    epochs: int = 3
    C: int = 8  # channels of the derived networks trained per trial
    layers: int = 5


@dataclass
class NB201Options:
    # NAS-Bench-201 skeleton: C channels in the first stage, N cells per stage
    # (the benchmark: C=16, N=5; smaller defaults for the 8x8 digits).
    C: int = 8
    N: int = 1


@dataclass
class SearchConfig:
    algorithm: str = "darts"
    # darts: DARTS cells (network section); nb201: NAS-Bench-201 cells (nb201 section); or a
    # factory PKG.MODULE:FACTORY / path/to/file.py:FACTORY, FACTORY(in_channels, num_classes)
    # returning a supernet built from gradnas mutables
    space: str = "darts"
    epochs: int = 16
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default (one per core)
    device: str = "auto"  # auto, cpu or cuda
    sync_bn: bool = (
        False  # under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm)
    )
    checkpoint_every: int = (
        0  # also checkpoint every N steps inside an epoch; 0: at epoch ends only
    )
    plots: bool = (
        True  # draw alphas, cells and curves into the run folder at the end (gradnas plot)
    )
    plot_every: int = 0  # also draw them every N epochs; 0: only at the end
    tensorboard: bool = False  # also log scalars and alpha histograms to RUN_DIR/tensorboard
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    darts2: DartsOptions = field(default_factory=DartsOptions)
    gdas: GdasOptions = field(default_factory=GdasOptions)
    pcdarts: PCDartsOptions = field(default_factory=PCDartsOptions)
    snas: SnasOptions = field(default_factory=SnasOptions)
    drnas: DrnasOptions = field(default_factory=DrnasOptions)
    nb201: NB201Options = field(default_factory=NB201Options)
    spos: SposOptions = field(default_factory=SposOptions)
    random: RandomOptions = field(default_factory=RandomOptions)

    def validate(self) -> SearchConfig:
        """Range checks that the types alone do not express."""
        _check(
            self.algorithm in ALGORITHMS,
            "algorithm",
            f"unknown algorithm {self.algorithm!r}; known: {list(ALGORITHMS)}",
        )
        _check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _check(self.threads >= 0, "threads", f"must be >= 0, got {self.threads}")
        _check_run_bounds(self)
        _check(
            self.device in DEVICES, "device", f"must be one of {list(DEVICES)}, got {self.device!r}"
        )
        _check(
            self.checkpoint_every >= 0,
            "checkpoint_every",
            f"must be >= 0, got {self.checkpoint_every}",
        )
        _check(self.plot_every >= 0, "plot_every", f"must be >= 0, got {self.plot_every}")
        _check(
            self.space in SPACES or is_space_reference(self.space),
            "space",
            f"unknown search space {self.space!r}; known: {list(SPACES)}, or a factory "
            f"PKG.MODULE:FACTORY or path/to/file.py:FACTORY",
        )
        if self.space == "nb201":
            _check(
                self.algorithm in NB201_ALGORITHMS,
                "algorithm",
                f"{self.algorithm} does not apply to the nb201 space; use one of {list(NB201_ALGORITHMS)}",
            )
            _check(self.nb201.C >= 1, "nb201.C", f"must be >= 1, got {self.nb201.C}")
            _check(self.nb201.N >= 1, "nb201.N", f"must be >= 1, got {self.nb201.N}")
            # 3 stages of N cells, 6 edges each, widths C, 2C, 4C: at least one 3x3 conv per edge.
            _check_width(self.nb201.C, 3 * self.nb201.N, 2, "nb201", cells_key="N")
        _validate_data(self.data)
        net = self.network
        _check(
            net.C >= 2 and net.C % 2 == 0, "network.C", f"must be an even number >= 2, got {net.C}"
        )
        _check(
            net.layers >= 3,
            "network.layers",
            f"must be >= 3 (reductions at 1/3 and 2/3 of the depth leave no normal cell), got {net.layers}",
        )
        _check(net.steps >= 1, "network.steps", f"must be >= 1, got {net.steps}")
        _check(
            1 <= net.multiplier <= net.steps,
            "network.multiplier",
            f"must be in 1..steps, got {net.multiplier}",
        )
        _check(
            net.steps <= limits.STEPS_MAX,
            "network.steps",
            f"must be <= {limits.STEPS_MAX}, got {net.steps}",
        )
        _check_width(net.C, net.layers, net.steps, "network")
        _check(
            1 <= net.stem_multiplier <= limits.STEM_MULTIPLIER_MAX,
            "network.stem_multiplier",
            f"must be in 1..{limits.STEM_MULTIPLIER_MAX}, got {net.stem_multiplier}",
        )
        for f in dataclasses.fields(self.optim):
            value = getattr(self.optim, f.name)
            _check(value >= 0, f"optim.{f.name}", f"must be >= 0, got {value}")
        _check(
            self.optim.weight_lr > 0 and self.optim.arch_lr > 0,
            "optim",
            "weight_lr and arch_lr must be > 0",
        )
        _check(
            self.optim.weight_lr_min <= self.optim.weight_lr,
            "optim.weight_lr_min",
            "must be <= weight_lr",
        )
        _check(
            self.darts2.hessian in HESSIANS, "darts2.hessian", f"must be one of {list(HESSIANS)}"
        )
        _check(
            0 < self.gdas.tau_min <= self.gdas.tau_max,
            "gdas.tau_min",
            "need 0 < tau_min <= tau_max",
        )
        _check(
            self.snas.tau_end > 0 and self.snas.tau_start > 0,
            "snas.tau_start",
            "temperatures must be > 0",
        )
        _check(self.snas.resource_penalty >= 0, "snas.resource_penalty", "must be >= 0")
        _check(
            self.drnas.regularizer in REGULARIZERS,
            "drnas.regularizer",
            f"must be one of {list(REGULARIZERS)}",
        )
        _check(self.drnas.kl_weight >= 0, "drnas.kl_weight", "must be >= 0")
        _validate_drnas_progressive(self)
        sp = self.spos
        for key in ("population", "generations", "parents"):
            _check(getattr(sp, key) >= 1, f"spos.{key}", f"must be >= 1, got {getattr(sp, key)}")
        _check(sp.parents <= sp.population, "spos.parents", "must be <= population")
        _check(0 <= sp.mutation_prob <= 1, "spos.mutation_prob", "must be in [0, 1]")
        _check(sp.bn_batches >= 0, "spos.bn_batches", "must be >= 0")
        rs = self.random
        for key in ("trials", "epochs", "layers"):
            _check(
                getattr(rs, key) >= (3 if key == "layers" else 1),
                f"random.{key}",
                f"must be >= {3 if key == 'layers' else 1}, got {getattr(rs, key)}",
            )
        _check(rs.C >= 2 and rs.C % 2 == 0, "random.C", f"must be an even number >= 2, got {rs.C}")
        _check_width(rs.C, rs.layers, 4, "random")
        pc = self.pcdarts
        _check(pc.partial_channels >= 1, "pcdarts.partial_channels", "must be >= 1")
        _check(0 <= pc.warmup_fraction < 1, "pcdarts.warmup_fraction", "must be in [0, 1)")
        if self.algorithm == "pcdarts" and self.space == "darts":
            _check(
                net.C % pc.partial_channels == 0 and (net.C // pc.partial_channels) % 2 == 0,
                "network.C",
                f"pcdarts needs C divisible by partial_channels ({pc.partial_channels}) into an even "
                f"number of channels, got C={net.C}",
            )
        for key in ("momentum", "arch_beta1", "arch_beta2"):
            value = getattr(self.optim, key)
            _check(value < 1, f"optim.{key}", f"must be < 1, got {value}")
        return self


# The ops of DrNAS' progressive search: DARTS' without `none` (the release's genotypes.py comments
# it out).
PROGRESSIVE_NUM_OPS = 7


def stage_epochs(fractions: list[float], epochs: int) -> list[int]:
    """Epochs of each stage: the cumulative fractions of ``epochs``, rounded
    (DrNAS: [0.5, 0.5] of 50 gives its train_epochs [25, 25])."""
    total, ends = 0.0, []
    for fraction in fractions:
        total += fraction
        ends.append(round(total * epochs))
    ends[-1] = epochs
    return [end - start for start, end in zip([0, *ends[:-1]], ends)]


def stage_warmup_epochs(warmup_fraction: float, epochs: int) -> int:
    """Warm-up epochs of a stage of ``epochs``; at least one epoch of the stage trains the alphas."""
    return min(round(warmup_fraction * epochs), epochs - 1)


def _validate_drnas_progressive(cfg: SearchConfig) -> None:
    """Values of the progressive schedule; the space and sizes only where a drnas search uses it."""
    dr = cfg.drnas
    stages = len(dr.stage_fractions)
    _check(stages >= 1, "drnas.stage_fractions", "needs at least one stage")
    _check(
        all(f > 0 for f in dr.stage_fractions),
        "drnas.stage_fractions",
        f"every stage's fraction must be > 0, got {dr.stage_fractions}",
    )
    _check(
        abs(sum(dr.stage_fractions) - 1) < 1e-6,
        "drnas.stage_fractions",
        f"the fractions must add up to 1, got {dr.stage_fractions}",
    )
    _check(
        0 <= dr.warmup_fraction < 1,
        "drnas.warmup_fraction",
        f"must be in [0, 1), got {dr.warmup_fraction}",
    )
    for key in ("partial_channels", "num_ops"):
        values = getattr(dr, key)
        _check(
            len(values) == stages,
            f"drnas.{key}",
            f"needs one entry per stage ({stages}, as stage_fractions), got {values}",
        )
        _check(
            all(b <= a for a, b in itertools.pairwise(values)),
            f"drnas.{key}",
            f"must not grow from one stage to the next, got {values}",
        )
    _check(
        all(k >= 2 for k in dr.partial_channels),
        "drnas.partial_channels",
        f"every K must be >= 2, got {dr.partial_channels}",
    )
    _check(
        dr.num_ops[0] == PROGRESSIVE_NUM_OPS and dr.num_ops[-1] >= 1,
        "drnas.num_ops",
        f"the first stage searches all {PROGRESSIVE_NUM_OPS} ops and every stage keeps at least 1, "
        f"got {dr.num_ops}",
    )
    if not (dr.progressive and cfg.algorithm == "drnas"):
        return
    _check(
        cfg.space == "darts",
        "drnas.progressive",
        "the progressive schedule searches the DARTS space only",
    )
    _check(
        all(cfg.network.C % k == 0 for k in dr.partial_channels),
        "network.C",
        f"the progressive schedule needs C divisible by every K of drnas.partial_channels "
        f"{dr.partial_channels}, got C={cfg.network.C}",
    )
    lengths = stage_epochs(dr.stage_fractions, cfg.epochs)
    _check(
        min(lengths) >= 1,
        "drnas.stage_fractions",
        f"gives a stage no epoch of the {cfg.epochs} (stage "
        f"epochs {lengths}); search longer or use fewer stages",
    )


def _validate_data(data: DataConfig) -> None:
    """Every ``data.*`` key: the source, where its files are, sizes and normalisation."""
    # MODULE:FACTORY names a user's Dataset factory; "datasets" stands for Dataset objects
    # passed to run_search / run_train in Python.
    _check(
        data.name in DATASETS or ":" in data.name or data.name == "datasets",
        "data.name",
        f"unknown data set {data.name!r}; known: {list(DATASETS)}, or MODULE:FACTORY / "
        f"FILE.py:FACTORY for your own Dataset",
    )
    _check(
        1 <= data.batch_size <= limits.BATCH_MAX,
        "data.batch_size",
        f"must be in 1..{limits.BATCH_MAX}, got {data.batch_size}",
    )
    for key in ("val_fraction", "test_fraction"):
        value = getattr(data, key)
        _check(0 < value < 1, f"data.{key}", f"must be in (0, 1), got {value}")
    if data.name in limits.DATA_SAMPLES:
        sizes = split_sizes(data.name, data.val_fraction, data.test_fraction)
        empty = [part for part, size in sizes.items() if size < 1]
        _check(
            not empty,
            "data.val_fraction" if "test" not in empty else "data.test_fraction",
            f"val_fraction {data.val_fraction} and test_fraction {data.test_fraction} leave the "
            f"{' and '.join(empty)} split of {data.name} empty (sizes {sizes})",
        )
    _check(
        data.cutout <= limits.IMAGE_SIZE_MAX,
        "data.cutout",
        f"must be <= {limits.IMAGE_SIZE_MAX}, got {data.cutout}",
    )
    _check(data.cutout >= 0, "data.cutout", f"must be >= 0, got {data.cutout}")
    if data.name in FILE_DATASETS:
        _check(
            bool(data.data_dir),
            "data.data_dir",
            f"{data.name} needs the folder of its files (--data-dir DIR)",
        )
    elif data.name != "fashion_mnist":
        _check(
            not data.data_dir,
            "data.data_dir",
            f"{data.name} reads no files, so data_dir {data.data_dir!r} would be ignored; "
            f"for your own images use --data imagefolder --data-dir {data.data_dir}",
        )
    _check(data.subset >= 0, "data.subset", f"must be >= 0 (0: all), got {data.subset}")
    _check(
        data.image_size == 0 or data.image_size >= 4,
        "data.image_size",
        f"must be 0 (the data's own) or >= 4, got {data.image_size}",
    )
    _check(
        data.channels in (0, 1, 3),
        "data.channels",
        f"must be 0 (the data's own), 1 or 3, got {data.channels}",
    )
    _check(
        len(data.mean) == len(data.std),
        "data.std",
        f"give one std per mean value ({len(data.mean)}), got {len(data.std)}",
    )
    _check(
        len(data.mean) in (0, 1, 3),
        "data.mean",
        f"needs 1 or 3 values (one per channel), got {len(data.mean)}",
    )
    _check(
        data.channels == 0 or len(data.mean) in (0, 1, data.channels),
        "data.mean",
        f"has {len(data.mean)} values for {data.channels} channels",
    )
    _check(all(s > 0 for s in data.std), "data.std", f"must be > 0, got {data.std}")
    _check(data.num_workers >= 0, "data.num_workers", f"must be >= 0, got {data.num_workers}")


@dataclass
class TrainNetworkConfig:
    C: int = 16  # channels of the first cells; DARTS' CIFAR retraining uses 36
    layers: int = 6  # cells; DARTS' CIFAR retraining uses 20
    auxiliary: bool = (
        False  # auxiliary head at 2/3 depth (DARTS CIFAR: on; needs >= 5x5 maps there)
    )
    auxiliary_weight: float = 0.4  # DARTS
    drop_path_prob: float = (
        0.0  # final drop-path probability, ramped linearly from 0 (DARTS CIFAR: 0.2)
    )


@dataclass
class TrainOptimConfig:
    # DARTS retraining: SGD 0.025, momentum 0.9, wd 3e-4, cosine to 0, clip 5.
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0


@dataclass
class TrainConfig:
    genotype: str = (
        "DARTS_V2"  # a published name (gradnas.genotype.PUBLISHED) or a genotype.json path
    )
    epochs: int = 40
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default (one per core)
    device: str = "auto"  # auto, cpu or cuda
    sync_bn: bool = (
        False  # under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm)
    )
    checkpoint_every: int = (
        0  # also checkpoint every N steps inside an epoch; 0: at epoch ends only
    )
    # Retraining regularises as DARTS does on CIFAR, scaled to the 1,437 8x8 digits:
    # cutout 3 and drop-path 0.1 over 40 epochs. Measured with threads=1 on seeds 0-4:
    # test accuracy 99.44/99.16/99.44/99.72/99.72% (mean 99.50%), against
    # 99.44/98.61/99.16% for seeds 0-2 with a 1-pixel shift and neither, 30 epochs.
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=96, cutout=3))
    network: TrainNetworkConfig = field(
        default_factory=lambda: TrainNetworkConfig(drop_path_prob=0.1)
    )
    optim: TrainOptimConfig = field(default_factory=TrainOptimConfig)

    def validate(self) -> TrainConfig:
        _check(
            bool(self.genotype),
            "genotype",
            "must name a published genotype or a genotype.json file",
        )
        _check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _check(self.threads >= 0, "threads", f"must be >= 0, got {self.threads}")
        _check_run_bounds(self)
        _check(
            self.device in DEVICES, "device", f"must be one of {list(DEVICES)}, got {self.device!r}"
        )
        _check(
            self.checkpoint_every >= 0,
            "checkpoint_every",
            f"must be >= 0, got {self.checkpoint_every}",
        )
        _validate_data(self.data)
        net = self.network
        _check_width(net.C, net.layers, 4, "network")
        image = limits.IMAGE_SIZE.get(self.data.name, 32)
        _check(
            not net.auxiliary or image // 4 >= 5,
            "network.auxiliary",
            f"the auxiliary head needs feature maps of at least 5x5 after the second reduction, "
            f"and {self.data.name}'s {image}x{image} images give {image // 4}x{image // 4}; "
            f"set it to false",
        )
        _check(
            net.C >= 2 and net.C % 2 == 0, "network.C", f"must be an even number >= 2, got {net.C}"
        )
        _check(net.layers >= 3, "network.layers", f"must be >= 3, got {net.layers}")
        _check(
            net.auxiliary_weight >= 0,
            "network.auxiliary_weight",
            f"must be >= 0, got {net.auxiliary_weight}",
        )
        _check(
            0 <= net.drop_path_prob < 1,
            "network.drop_path_prob",
            f"must be in [0, 1), got {net.drop_path_prob}",
        )
        for f in dataclasses.fields(self.optim):
            value = getattr(self.optim, f.name)
            _check(value >= 0, f"optim.{f.name}", f"must be >= 0, got {value}")
        _check(self.optim.lr > 0, "optim.lr", "must be > 0")
        _check(self.optim.lr_min <= self.optim.lr, "optim.lr_min", "must be <= lr")
        _check(self.optim.momentum < 1, "optim.momentum", f"must be < 1, got {self.optim.momentum}")
        return self


# Every int field (epochs, seed, sizes) fits in 64 bits (torch seeds do); a
# larger int would also overflow float() and Python's int-to-text digit limit.
_INT_LIMIT = 2**64


def _show(value: Any) -> str:
    """``repr`` for an error message, cut short; some values have none (a huge int)."""
    try:
        text = repr(value)
    except ValueError:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _check_run_bounds(cfg: Any) -> None:
    """Seed, epochs and threads within what numpy, the clock and the machine allow."""
    _check(
        0 <= cfg.seed <= limits.SEED_MAX,
        "seed",
        f"must be in 0..2**32-1 (numpy's seed range), got {cfg.seed}",
    )
    _check(
        cfg.epochs <= limits.EPOCHS_MAX,
        "epochs",
        f"must be <= {limits.EPOCHS_MAX:,}, got {cfg.epochs}",
    )
    _check(
        cfg.threads <= limits.THREADS_MAX,
        "threads",
        f"must be <= {limits.THREADS_MAX} (each thread takes its own stack and buffers), "
        f"got {cfg.threads}",
    )


def _check_width(C: int, cells: int, steps: int, section: str, cells_key: str = "layers") -> None:
    """Widths and depths with an upper bound whose error names the memory they would need."""
    need = gib(darts_weight_bytes(C, cells, steps))
    _check(
        C <= limits.WIDTH_MAX,
        f"{section}.C",
        f"must be <= {limits.WIDTH_MAX}, got {C} (the weights alone would need at least {need})",
    )
    _check(
        cells <= limits.CELLS_MAX,
        f"{section}.{cells_key}",
        f"gives {cells} cells, more than {limits.CELLS_MAX} "
        f"(the weights alone would need at least {need})",
    )


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key {key!r}: {message}")


def _convert(value: Any, annotation: Any, key: str, default: Any = None) -> Any:
    """Check ``value`` against a field annotation; ints are accepted for floats.
    A section (a nested dataclass) fills the keys it leaves out from ``default``."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _build(annotation, value, key, default)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INT_LIMIT:
        raise ConfigError(
            f"config key {key!r}: integer out of range (magnitude must be below 2**64)"
        )
    if typing.get_origin(annotation) is list:
        if not isinstance(value, list):
            raise ConfigError(
                f"config key {key!r}: expected a list, got {type(value).__name__} {_show(value)}"
            )
        (item,) = typing.get_args(annotation)
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):
            raise ConfigError(f"config key {key!r}: must be a finite number, got {value}")
    elif annotation is str:
        ok = isinstance(value, str)
    else:
        raise TypeError(f"unsupported annotation {annotation!r} for {key}")
    if not ok:
        raise ConfigError(
            f"config key {key!r}: expected {annotation.__name__}, got {type(value).__name__} {_show(value)}"
        )
    return value


def _build(cls: type, data: Any, prefix: str = "", base: Any = None) -> Any:
    """``cls`` from the mapping ``data``; keys it leaves out keep their value
    in ``base`` (a partial ``data:`` section of a train config keeps the
    train defaults, such as augmentation, not those of ``DataConfig()``)."""
    where = f"section {prefix!r}" if prefix else "the config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        name = unknown[0] if isinstance(unknown[0], str) else _show(unknown[0])
        key = f"{prefix}.{name}" if prefix else name
        raise ConfigError(f"unknown config key {key!r}; {where} takes: {', '.join(names)}")
    base = cls() if base is None else base
    kwargs = {
        k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k, getattr(base, k))
        for k, v in data.items()
    }
    return dataclasses.replace(base, **kwargs)


def config_from_dict(data: dict[str, Any], cls: type = SearchConfig) -> Any:
    """A validated ``cls`` (:class:`SearchConfig` or :class:`TrainConfig`) from nested plain data."""
    return _build(cls, data).validate()


def load_config(path: str | Path, cls: type = SearchConfig) -> Any:
    """Read and validate a YAML config file into ``cls``."""
    path = Path(path)
    try:
        # YAML decodes the bytes (UTF-8, or UTF-16 with a BOM) and reports bad ones
        text = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read config file {str(path)!r}: {err.strerror}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    # Besides YAMLError, PyYAML's safe constructors raise ValueError (a date such as
    # 2001-13-01, "!!int abc", an int past Python's digit limit), AttributeError
    # ("!!timestamp abc"), IndexError ("!!int" alone), RecursionError (deep
    # nesting)... The safe loader runs no code of ours, so any error means bad text.
    except Exception as err:  # noqa: BLE001
        raise ConfigError(
            f"config file {str(path)!r} is not valid YAML: {_yaml_problem(err)}"
        ) from None
    return config_from_dict(data or {}, cls)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key (PyYAML keeps
    the last one silently, so a config could say two things and mean one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                mark = key_node.start_mark
                raise yaml.MarkedYAMLError(problem=f"duplicate key {_show(key)}", problem_mark=mark)
        return super().construct_mapping(node, deep=deep)


# What an error message quotes of the user's text at most.
_ECHO_LIMIT = 200


def _yaml_problem(err: Exception) -> str:
    """One line: where (line, column) and what PyYAML expected, cut to a few hundred characters."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        what = " ".join(str(part) for part in (err.context, err.problem) if part)
        text = f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    else:
        text = str(err) or type(err).__name__
    text = " ".join(text.split())
    return text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 3] + "..."


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Any) -> str:
    """The resolved config as YAML, loadable again with :func:`load_config`."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
