"""GDAS (Dong & Yang, "Searching for a Robust Neural Architecture in Four GPU
Hours", CVPR 2019).

GDAS is first-order DARTS on a supernet that samples: every mixed op is a
``GumbelOP(hard=True)``, so each forward draws one op per edge from
``softmax(alpha)`` with Gumbel noise and runs only that op. The output is
``y = h_k * o_k(x)`` with the straight-through one-hot ``h`` of
``softmax((alpha + g) / tau)``, so ``h_k == 1`` in the forward pass while
every alpha gets the gradient ``<dL/dy, o_k(x)> * soft_k * (delta_kj - soft_j) / tau``
(see :mod:`gradnas.mutables.gumbel`). What GDAS adds to the DARTS step is the
temperature, annealed linearly per epoch from ``tau_max`` to ``tau_min``.

Gumbel noise is ``-log(-log(u))`` with ``u`` clamped into the open interval
(0, 1) (:func:`gradnas.mutables.gumbel.gumbel_noise`). It is therefore finite
by construction, which is what GDAS' loop that redraws a sample holding inf or
NaN ensures; the clamp does it without the device-to-host sync a redraw test
costs on every forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..mutables import GumbelEdge, GumbelOP
from ..mutators import DiffMutator
from .contract import NO_CHANGE, SINGLE, DataParallel, EpochChange
from .darts import Darts

# GDAS' search scripts pass --tau_max 10 --tau_min 0.1 (D-X-Y/AutoDL-Projects,
# scripts-search/NAS-Bench-201-algos/GDAS.sh and the NASNet-space GDAS script).
TAU_MAX, TAU_MIN = 10.0, 0.1
STATE_KEYS = ("tau", "tau_max", "tau_min")


class Gdas(Darts):
    """GDAS: DARTS' first-order bilevel step on a hard-Gumbel supernet, with tau annealed per epoch.

    ``step(train_batch, val_batch)`` is :meth:`Darts.step` (the architecture
    step on the validation batch, then the clipped weight step on the
    training batch); each of its two forwards samples its own cell, since
    every ``GumbelOP`` draws fresh noise per forward. The released GDAS code
    updates the weights first and the alphas second within one iteration; here
    the order is gradnas' bilevel convention, as in DARTS.

    ``on_epoch_start(epoch, num_epochs)`` sets
    ``tau = tau_max - (tau_max - tau_min) * epoch / max(num_epochs - 1, 1)``
    on every Gumbel mutable, so the first epoch samples at ``tau_max`` and the
    last at ``tau_min`` (the schedule of AutoDL-Projects'
    ``exps/NAS-Bench-201-algos/GDAS.py``). Until the first call the
    temperature is ``tau_max``. The final architecture is derived from the
    alphas by the DARTS rule (:class:`gradnas.mutators.DartsMutator`).

    Args:
        supernet: a supernet whose mutables that sample are hard Gumbel ones,
            e.g. ``DartsSearchNetwork(op_mutable=functools.partial(GumbelOP, tau=10.0,
            hard=True))``.
        mutator: owns the alphas bound to ``supernet``.
        weight_optimizer: over exactly the weights (GDAS: SGD lr 0.025,
            momentum 0.9, weight decay 3e-4, as DARTS).
        arch_optimizer: over exactly the alphas (GDAS: Adam lr 3e-4,
            betas (0.5, 0.999), weight decay 1e-3).
        tau_max: temperature of the first epoch (GDAS: 10).
        tau_min: temperature of the last epoch (GDAS: 0.1).
        criterion: the loss (default cross entropy).
        grad_clip: max norm of the weight gradient (GDAS: 5); None to skip.
        data_parallel: as for :class:`Darts`.
    """

    find_unused_parameters = True  # only the sampled op of each edge runs

    def __init__(
        self,
        supernet: nn.Module,
        mutator: DiffMutator,
        weight_optimizer: torch.optim.Optimizer,
        arch_optimizer: torch.optim.Optimizer,
        tau_max: float = TAU_MAX,
        tau_min: float = TAU_MIN,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        grad_clip: float | None = 5.0,
        data_parallel: DataParallel = SINGLE,
    ) -> None:
        super().__init__(
            supernet,
            mutator,
            weight_optimizer,
            arch_optimizer,
            unrolled=False,
            criterion=criterion,
            grad_clip=grad_clip,
            data_parallel=data_parallel,
        )
        check_hard_gumbel(mutator)
        self.tau_max, self.tau_min = check_schedule(tau_max, tau_min)
        self.set_tau(self.tau_max)

    def set_tau(self, tau: float) -> None:
        """Use temperature ``tau`` in every Gumbel mutable from the next forward on."""
        self.mutator.set_temperature(tau)
        self.tau = float(tau)

    def on_epoch_start(self, epoch: int, num_epochs: int) -> EpochChange:
        """Anneal tau linearly: ``tau_max`` at epoch 0, ``tau_min`` at epoch ``num_epochs - 1``."""
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
            raise ValueError(f"num_epochs must be an int >= 1, got {num_epochs!r}")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < num_epochs:
            raise ValueError(f"epoch must be an int in 0..{num_epochs - 1}, got {epoch!r}")
        progress = epoch / max(num_epochs - 1, 1)
        # tau_max - (tau_max - tau_min) * progress, written so that both ends are exact in floating
        # point
        self.set_tau((1.0 - progress) * self.tau_max + progress * self.tau_min)
        return NO_CHANGE

    def logged(self) -> dict[str, float]:
        """The temperature of the current epoch."""
        return {"tau": self.tau}

    def state_dict(self) -> dict[str, Any]:
        return {"tau": self.tau, "tau_max": self.tau_max, "tau_min": self.tau_min}

    def load_state_dict(self, state: dict[str, Any]) -> EpochChange:
        """Restore the schedule and the current tau, and apply tau to the mutables."""
        missing = [k for k in STATE_KEYS if k not in state]
        unknown = sorted(set(state) - set(STATE_KEYS))
        if missing or unknown:
            raise ValueError(
                f"Gdas state must have keys {list(STATE_KEYS)}; missing {missing}, unknown {unknown}"
            )
        tau_max, tau_min = check_schedule(state["tau_max"], state["tau_min"])
        tau = state["tau"]
        if not is_number(tau) or not tau > 0:
            raise ValueError(f"Gdas state: tau must be a positive number, got {tau!r}")
        self.tau_max, self.tau_min = tau_max, tau_min
        self.set_tau(tau)
        return NO_CHANGE


def is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_schedule(tau_max: float, tau_min: float) -> tuple[float, float]:
    if not (is_number(tau_max) and is_number(tau_min)) or not tau_max >= tau_min > 0:
        raise ValueError(
            f"GDAS needs tau_max >= tau_min > 0, got tau_max={tau_max!r}, tau_min={tau_min!r}"
        )
    return float(tau_max), float(tau_min)


def check_hard_gumbel(mutator: DiffMutator) -> None:
    """GDAS samples one choice per decision: the supernet needs hard Gumbel
    mutables (and no soft one, which would run every op)."""
    mutables = [m for members in mutator.search_spaces.values() for m in members]
    gumbel = [m for m in mutables if isinstance(m, (GumbelOP, GumbelEdge))]
    if not gumbel:
        raise ValueError(
            "Gdas needs a supernet with GumbelOP(hard=True) mutables (e.g. DartsSearchNetwork("
            "op_mutable=functools.partial(GumbelOP, tau=10.0, hard=True))), prepared by the mutator; "
            "found none"
        )
    soft = sorted({m.space_id for m in gumbel if not m.hard})
    if soft:
        raise ValueError(
            f"Gdas samples hard (one op per edge), but these Gumbel mutables are soft "
            f"(hard=False): {soft}"
        )
