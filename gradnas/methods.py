"""From a config to the parts of a search: its space, and each method's supernet and algorithm.

One function per method and a plain dict from ``--algorithm`` names to them:
reading this file tells which weighing, derivation rule, structure and class
each method uses. The engine asks these recipes for its parts and never
names a method or a space itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .algorithms import Darts, DrNas, Gdas, PCDarts, Snas
from .algorithms.contract import Algorithm, DataParallel
from .algorithms.drnas import ProgressiveStage
from .algorithms.random_search import RandomSearch
from .algorithms.spos import Evolution, Spos
from .config import (
    SPACES,
    ConfigError,
    SearchConfig,
    TrainConfig,
    stage_epochs,
    stage_warmup_epochs,
)
from .genotype import PRIMITIVES
from .import_path import ImportPathError, load_object
from .mutables import weighing
from .spaces.contract import SearchSpace, SpaceError, SpaceMutator, Structure, SupernetRequest
from .spaces.darts.space import DartsSpace
from .spaces.module_space import ModuleSpace
from .spaces.nb201.space import NB201Space


@dataclass(frozen=True)
class Optimizers:
    """The optimizers and schedule of a search (DARTS' SGD + cosine, and Adam)."""

    weight: torch.optim.Optimizer
    arch: torch.optim.Optimizer | None
    scheduler: torch.optim.lr_scheduler.LRScheduler


# (cfg, supernet, mutator, optimizers, data_parallel) -> the algorithm
AlgorithmBuilder = Callable[
    [SearchConfig, nn.Module, nn.Module, Optimizers, DataParallel], Algorithm
]


@dataclass(frozen=True)
class Method:
    """How one ``--algorithm`` is assembled."""

    request: Callable[[SearchConfig], SupernetRequest]
    algorithm: AlgorithmBuilder
    has_alphas: bool = True  # whether it trains architecture parameters (an arch optimizer)


def _arch(opt: Optimizers) -> torch.optim.Optimizer:
    """The architecture optimizer of a method with alphas."""
    if opt.arch is None:
        raise ValueError("this method trains alphas: build its optimizers with an arch optimizer")
    return opt.arch


def _clip(cfg: SearchConfig) -> float | None:
    return cfg.optim.grad_clip or None


def _darts(unrolled: bool) -> AlgorithmBuilder:
    def build(
        cfg: SearchConfig, supernet: nn.Module, mutator: Any, opt: Optimizers, dp: DataParallel
    ) -> Algorithm:
        return Darts(
            supernet,
            mutator,
            opt.weight,
            _arch(opt),
            unrolled=unrolled,
            grad_clip=_clip(cfg),
            hessian=cfg.darts2.hessian,
            data_parallel=dp,
        )

    return build


def _gdas(
    cfg: SearchConfig, supernet: nn.Module, mutator: Any, opt: Optimizers, dp: DataParallel
) -> Algorithm:
    return Gdas(
        supernet,
        mutator,
        opt.weight,
        _arch(opt),
        tau_max=cfg.gdas.tau_max,
        tau_min=cfg.gdas.tau_min,
        grad_clip=_clip(cfg),
        data_parallel=dp,
    )


def pcdarts_warmup_epochs(cfg: SearchConfig) -> int:
    """PC-DARTS freezes the alphas for 15 of 50 epochs; scaled to the run, leaving at
    least one epoch to search."""
    return min(round(cfg.pcdarts.warmup_fraction * cfg.epochs), cfg.epochs - 1)


def _pcdarts(
    cfg: SearchConfig, supernet: nn.Module, mutator: Any, opt: Optimizers, dp: DataParallel
) -> Algorithm:
    return PCDarts(
        supernet,
        mutator,
        opt.weight,
        _arch(opt),
        warmup_epochs=pcdarts_warmup_epochs(cfg),
        grad_clip=_clip(cfg),
        data_parallel=dp,
    )


def _snas(
    cfg: SearchConfig, supernet: nn.Module, mutator: Any, opt: Optimizers, dp: DataParallel
) -> Algorithm:
    return Snas(
        supernet,
        mutator,
        opt.weight,
        _arch(opt),
        tau_start=cfg.snas.tau_start,
        tau_end=cfg.snas.tau_end,
        resource_penalty=cfg.snas.resource_penalty,
        grad_clip=_clip(cfg),
        data_parallel=dp,
    )


def _drnas(
    cfg: SearchConfig, supernet: nn.Module, mutator: Any, opt: Optimizers, dp: DataParallel
) -> Algorithm:
    return DrNas(
        supernet,
        mutator,
        opt.weight,
        _arch(opt),
        regularizer=cfg.drnas.regularizer,
        kl_weight=cfg.drnas.kl_weight,
        grad_clip=_clip(cfg),
        stages=drnas_stages(cfg),
        data_parallel=dp,
    )


def _spos(
    cfg: SearchConfig, supernet: nn.Module, mutator: Any, opt: Optimizers, dp: DataParallel
) -> Algorithm:
    sp = cfg.spos
    evolution = Evolution(
        sp.population, sp.generations, sp.parents, sp.mutation_prob, sp.bn_batches
    )
    return Spos(
        supernet, mutator, opt.weight, grad_clip=_clip(cfg), evolution=evolution, data_parallel=dp
    )


def _random(
    cfg: SearchConfig, supernet: nn.Module, mutator: Any, opt: Optimizers, dp: DataParallel
) -> Algorithm:
    return RandomSearch(opt.weight, cfg.random.trials)


# DrNAS' progressive search drops `none` (xiangning-chen/DrNAS, genotypes.py: PRIMITIVES with
# 'none' commented out).
DRNAS_PROGRESSIVE_PRIMITIVES = tuple(name for name in PRIMITIVES if name != "none")


def drnas_stages(cfg: SearchConfig) -> tuple[ProgressiveStage, ...]:
    """``cfg.drnas``' progressive schedule in epochs (the release: 25 + 25, 10 warm-up
    each); empty when off."""
    dr = cfg.drnas
    if not dr.progressive:
        return ()
    lengths = stage_epochs(dr.stage_fractions, cfg.epochs)
    return tuple(
        ProgressiveStage(
            epochs=n,
            warmup_epochs=stage_warmup_epochs(dr.warmup_fraction, n),
            partial_channels=k,
            num_ops=ops,
        )
        for n, k, ops in zip(lengths, dr.partial_channels, dr.num_ops, strict=True)
    )


def _drnas_request(cfg: SearchConfig) -> SupernetRequest:
    """The progressive search starts from the ops without `none` and the first stage's
    partial channels."""
    structure = Structure()
    if cfg.drnas.progressive:
        structure = Structure(
            partial_channels=cfg.drnas.partial_channels[0],
            primitives=DRNAS_PROGRESSIVE_PRIMITIVES,
            widens=True,
        )
    return SupernetRequest("drnas", weighing.dirichlet(), "darts", structure)


METHODS: dict[str, Method] = {
    "darts": Method(lambda cfg: SupernetRequest("darts", weighing.softmax()), _darts(False)),
    "darts2": Method(lambda cfg: SupernetRequest("darts2", weighing.softmax()), _darts(True)),
    "gdas": Method(
        lambda cfg: SupernetRequest("gdas", weighing.gumbel(cfg.gdas.tau_max, hard=True)), _gdas
    ),
    "pcdarts": Method(
        lambda cfg: SupernetRequest(
            "pcdarts",
            weighing.softmax(),
            "darts",
            Structure(partial_channels=cfg.pcdarts.partial_channels, edge_alpha=True),
        ),
        _pcdarts,
    ),
    "snas": Method(
        lambda cfg: SupernetRequest(
            "snas", weighing.gumbel(cfg.snas.tau_start, hard=False), "argmax"
        ),
        _snas,
    ),
    "drnas": Method(_drnas_request, _drnas),
    # Single paths: one-shot ops and edges, no alphas; the architecture is
    # found after training by an evolutionary search over paths.
    "spos": Method(
        lambda cfg: SupernetRequest("spos", weighing.one_path(), "one_path"), _spos, False
    ),
    # No supernet training: trials of fixed networks drawn uniformly (Li & Talwalkar, UAI 2019).
    "random": Method(
        lambda cfg: SupernetRequest("random", weighing.one_path(), "one_path"), _random, False
    ),
}


def search_space(
    cfg: SearchConfig,
    in_channels: int = 3,
    num_classes: int = 10,
    image_shape: tuple[int, ...] | None = None,
    factory: Callable[[int, int], nn.Module] | None = None,
) -> SearchSpace:
    """The space ``cfg.space`` names: ``darts``, ``nb201`` or a factory reference
    (``factory``, when given, is that factory itself: the Python API's object)."""
    if factory is not None:
        return ModuleSpace(
            factory, cfg.space, tuple(image_shape or (in_channels, 32, 32)), num_classes
        )
    if cfg.space == "nb201":
        return NB201Space(C=cfg.nb201.C, N=cfg.nb201.N)
    if cfg.space == "darts":
        net = cfg.network
        fixed, label = TrainConfig().network, "at the train defaults"
        C, layers = fixed.C, fixed.layers
        if cfg.algorithm == "random":  # the trials train their networks at their own size
            C, layers, label = cfg.random.C, cfg.random.layers, "at the trial size"
        return DartsSpace(
            C=net.C,
            layers=net.layers,
            steps=net.steps,
            multiplier=net.multiplier,
            stem_multiplier=net.stem_multiplier,
            fixed_C=C,
            fixed_layers=layers,
            fixed_label=label,
        )
    return module_space(cfg.space, image_shape or (in_channels, 32, 32), num_classes)


def module_space(reference: str, image_shape: tuple[int, ...], num_classes: int) -> ModuleSpace:
    """The custom space of the factory ``reference`` names (raises ConfigError)."""
    try:
        factory = load_object(reference, "space")
    except ImportPathError as err:
        raise ConfigError(str(err)) from None
    if not callable(factory):
        raise ConfigError(
            f"space {reference!r} is a {type(factory).__name__}, not a factory "
            f"FACTORY(in_channels, num_classes) -> nn.Module"
        )
    return ModuleSpace(factory, reference, tuple(image_shape), num_classes)


def is_custom_space(name: str) -> bool:
    return name not in SPACES


def build_supernet(
    cfg: SearchConfig, in_channels: int, num_classes: int, space: SearchSpace | None = None
) -> tuple[nn.Module, SpaceMutator]:
    """The supernet of ``cfg.space`` for ``cfg.algorithm``, and the mutator that derives from it."""
    if space is None:
        space = search_space(cfg, in_channels, num_classes)
    try:
        return space.build(METHODS[cfg.algorithm].request(cfg), in_channels, num_classes)
    except SpaceError as err:
        raise ConfigError(str(err)) from None


def build_optimizers(cfg: SearchConfig, supernet: nn.Module, mutator: SpaceMutator) -> Optimizers:
    """DARTS' SGD with cosine decay over the weights and Adam over the alphas (none
    without alphas)."""
    opt = cfg.optim
    weight = torch.optim.SGD(
        supernet.parameters(),
        lr=opt.weight_lr,
        momentum=opt.momentum,
        weight_decay=opt.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        weight, T_max=cfg.epochs, eta_min=opt.weight_lr_min
    )
    arch = None
    if METHODS[cfg.algorithm].has_alphas:
        arch = torch.optim.Adam(
            mutator.arch_parameters(),
            lr=opt.arch_lr,
            betas=(opt.arch_beta1, opt.arch_beta2),
            weight_decay=opt.arch_weight_decay,
        )
    return Optimizers(weight, arch, scheduler)


def build_algorithm(
    cfg: SearchConfig,
    supernet: nn.Module,
    mutator: SpaceMutator,
    optimizers: Optimizers,
    data_parallel: DataParallel,
) -> Algorithm:
    return METHODS[cfg.algorithm].algorithm(cfg, supernet, mutator, optimizers, data_parallel)
