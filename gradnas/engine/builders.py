"""From a config to the objects of a search: supernet, mutator, optimizers, algorithm.

One function per algorithm, a plain dict from names to them: reading this
file tells which mutable, mutator and class each ``--algorithm`` uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..algorithms import Darts, DrNas, Gdas, PCDarts, Snas
from ..algorithms.drnas import ProgressiveStage
from ..algorithms.spos import Spos, spos_supernet
from ..config import SearchConfig, stage_epochs, stage_warmup_epochs
from ..genotype import PRIMITIVES
from ..mutables import DifferentiableOP, DirichletOP, GumbelOP
from ..mutators import DartsMutator, DiffMutator, OneShotMutator, SnasMutator
from ..spaces.darts import DartsSearchNetwork
from ..spaces.nb201 import NB201SearchNetwork


@dataclass
class Method:
    """How one algorithm is assembled."""

    op_mutable: Callable[[SearchConfig], Callable]  # the mixed-op mutable of the supernet
    mutator: Callable[[], DiffMutator]  # the derivation rule
    algorithm: Callable  # (cfg, supernet, mutator, weight_opt, arch_opt, epochs) -> algorithm
    supernet_kwargs: Callable[[SearchConfig], dict] = lambda cfg: {}


def _darts(unrolled: bool):
    def build(cfg, supernet, mutator, weight_opt, arch_opt):
        return Darts(
            supernet,
            mutator,
            weight_opt,
            arch_opt,
            unrolled=unrolled,
            grad_clip=cfg.optim.grad_clip or None,
            hessian=cfg.darts2.hessian,
        )

    return build


def _gdas(cfg, supernet, mutator, weight_opt, arch_opt):
    return Gdas(
        supernet,
        mutator,
        weight_opt,
        arch_opt,
        tau_max=cfg.gdas.tau_max,
        tau_min=cfg.gdas.tau_min,
        grad_clip=cfg.optim.grad_clip or None,
    )


def pcdarts_warmup_epochs(cfg: SearchConfig) -> int:
    """PC-DARTS freezes the alphas for 15 of 50 epochs; scaled to the run, leaving at least one
    epoch to search.
    """
    return min(round(cfg.pcdarts.warmup_fraction * cfg.epochs), cfg.epochs - 1)


def _pcdarts(cfg, supernet, mutator, weight_opt, arch_opt):
    return PCDarts(
        supernet,
        mutator,
        weight_opt,
        arch_opt,
        warmup_epochs=pcdarts_warmup_epochs(cfg),
        grad_clip=cfg.optim.grad_clip or None,
    )


def _snas(cfg, supernet, mutator, weight_opt, arch_opt):
    return Snas(
        supernet,
        mutator,
        weight_opt,
        arch_opt,
        tau_start=cfg.snas.tau_start,
        tau_end=cfg.snas.tau_end,
        resource_penalty=cfg.snas.resource_penalty,
        grad_clip=cfg.optim.grad_clip or None,
    )


def _drnas(cfg, supernet, mutator, weight_opt, arch_opt):
    return DrNas(
        supernet,
        mutator,
        weight_opt,
        arch_opt,
        regularizer=cfg.drnas.regularizer,
        kl_weight=cfg.drnas.kl_weight,
        grad_clip=cfg.optim.grad_clip or None,
        stages=drnas_stages(cfg),
    )


# DrNAS' progressive search drops `none` (xiangning-chen/DrNAS, genotypes.py: PRIMITIVES with 'none'
# commented out).
DRNAS_PROGRESSIVE_PRIMITIVES = tuple(name for name in PRIMITIVES if name != "none")


def drnas_stages(cfg: SearchConfig) -> tuple[ProgressiveStage, ...]:
    """``cfg.drnas``' progressive schedule in epochs (the release: 25 + 25, 10 warm-up each); empty
    when off.
    """
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
        for n, k, ops in zip(lengths, dr.partial_channels, dr.num_ops)
    )


def _drnas_supernet_kwargs(cfg: SearchConfig) -> dict:
    """The progressive search starts from the ops without `none` and the first stage's partial channels."""
    if not cfg.drnas.progressive:
        return {}
    return {
        "primitives": DRNAS_PROGRESSIVE_PRIMITIVES,
        "partial_channels": cfg.drnas.partial_channels[0],
    }


METHODS: dict[str, Method] = {
    "darts": Method(lambda cfg: DifferentiableOP, DartsMutator, _darts(unrolled=False)),
    "darts2": Method(lambda cfg: DifferentiableOP, DartsMutator, _darts(unrolled=True)),
    "gdas": Method(
        lambda cfg: functools.partial(GumbelOP, tau=cfg.gdas.tau_max, hard=True),
        DartsMutator,
        _gdas,
    ),
    "pcdarts": Method(
        lambda cfg: DifferentiableOP,
        DartsMutator,
        _pcdarts,
        lambda cfg: {"partial_channels": cfg.pcdarts.partial_channels, "edge_alpha": True},
    ),
    "snas": Method(
        lambda cfg: functools.partial(GumbelOP, tau=cfg.snas.tau_start, hard=False),
        SnasMutator,
        _snas,
    ),
    "drnas": Method(lambda cfg: DirichletOP, DartsMutator, _drnas, _drnas_supernet_kwargs),
}


@dataclass
class SearchParts:
    supernet: nn.Module  # DartsSearchNetwork or NB201SearchNetwork
    mutator: nn.Module  # a DiffMutator, or the OneShotMutator of SPOS
    weight_optimizer: torch.optim.Optimizer
    arch_optimizer: torch.optim.Optimizer | None  # None for SPOS (no alphas)
    scheduler: torch.optim.lr_scheduler.LRScheduler
    algorithm: object


def build_supernet(
    cfg: SearchConfig, in_channels: int, num_classes: int
) -> tuple[nn.Module, nn.Module]:
    """The supernet of ``cfg.space`` with ``cfg.algorithm``'s mixed op, and the mutator that derives
    from it.
    """
    net = cfg.network
    if cfg.algorithm == "spos":
        # Single paths: one-shot ops and edges, no alphas; the architecture is
        # found after training by an evolutionary search over paths.
        supernet = spos_supernet(
            C=net.C,
            layers=net.layers,
            steps=net.steps,
            multiplier=net.multiplier,
            stem_multiplier=net.stem_multiplier,
            in_channels=in_channels,
            num_classes=num_classes,
        )
        one_shot = OneShotMutator()
        one_shot.prepare_from_supernet(supernet)
        return supernet, one_shot
    method = METHODS[cfg.algorithm]
    if cfg.space == "nb201":
        supernet: nn.Module = NB201SearchNetwork(
            C=cfg.nb201.C,
            N=cfg.nb201.N,
            num_classes=num_classes,
            in_channels=in_channels,
            op_mutable=method.op_mutable(cfg),
        )
        # NAS-Bench-201 keeps every edge's argmax, `none` included.
        mutator: DiffMutator = DartsMutator(ignore_choices=())
    else:
        supernet = DartsSearchNetwork(
            C=net.C,
            layers=net.layers,
            steps=net.steps,
            multiplier=net.multiplier,
            stem_multiplier=net.stem_multiplier,
            in_channels=in_channels,
            num_classes=num_classes,
            op_mutable=method.op_mutable(cfg),
            **method.supernet_kwargs(cfg),
        )
        mutator = method.mutator()
    mutator.prepare_from_supernet(supernet)
    return supernet, mutator


def derive(supernet: nn.Module, mutator: nn.Module):
    """The found architecture: a DARTS ``Genotype`` or a NAS-Bench-201 ``NB201Arch``;
    None for SPOS, whose architecture comes from the evolutionary search at the end."""
    if isinstance(mutator, OneShotMutator):
        return None
    subnet = mutator.search_subnet()
    if isinstance(supernet, NB201SearchNetwork):
        return supernet.to_arch(subnet)
    return supernet.to_genotype(subnet)


def build_search_parts(cfg: SearchConfig, in_channels: int, num_classes: int) -> SearchParts:
    """Supernet, mutator, optimizers (DARTS' SGD + cosine and Adam) and algorithm for ``cfg.algorithm``."""
    supernet, mutator = build_supernet(cfg, in_channels, num_classes)
    opt = cfg.optim
    weight_optimizer = torch.optim.SGD(
        supernet.parameters(),
        lr=opt.weight_lr,
        momentum=opt.momentum,
        weight_decay=opt.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        weight_optimizer, T_max=cfg.epochs, eta_min=opt.weight_lr_min
    )
    if cfg.algorithm == "spos":
        algorithm = Spos(supernet, mutator, weight_optimizer, grad_clip=opt.grad_clip or None)
        return SearchParts(supernet, mutator, weight_optimizer, None, scheduler, algorithm)
    arch_optimizer = torch.optim.Adam(
        mutator.arch_parameters(),
        lr=opt.arch_lr,
        betas=(opt.arch_beta1, opt.arch_beta2),
        weight_decay=opt.arch_weight_decay,
    )
    algorithm = METHODS[cfg.algorithm].algorithm(
        cfg, supernet, mutator, weight_optimizer, arch_optimizer
    )
    return SearchParts(supernet, mutator, weight_optimizer, arch_optimizer, scheduler, algorithm)


def move_scheduler(
    scheduler: torch.optim.lr_scheduler.CosineAnnealingLR, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """The same cosine schedule at the same point, driving ``optimizer``, a
    rebuilt weight optimizer that carries the current learning rate (DrNAS'
    progressive stages; the release likewise loads the old scheduler's state
    into a new one, ``net2wider.configure_scheduler``; there the new SGD is
    built with the initial learning rate, which the loaded scheduler then
    decays from, so stage 2 restarts near 0.1; gradnas continues the one cosine)."""
    lrs = [group["lr"] for group in optimizer.param_groups]
    moved = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=scheduler.T_max, eta_min=scheduler.eta_min
    )
    moved.load_state_dict(scheduler.state_dict())
    for group, lr in zip(optimizer.param_groups, lrs):
        group["lr"] = lr  # the constructor reset it to the initial one
    return moved


def count_weights(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
