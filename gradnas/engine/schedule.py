"""Moving the learning-rate schedule onto an optimizer a method rebuilt."""

from __future__ import annotations

import torch


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
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr  # the constructor reset it to the initial one
    return moved
