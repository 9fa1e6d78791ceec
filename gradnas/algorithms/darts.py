"""DARTS (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019).

One search step is a bilevel update: the alphas take one step on the
validation loss, then the weights one step on the training loss. Each step
starts from zeroed gradients and back-propagates into its own parameter set
only, so no validation gradient reaches the weights and no training
gradient reaches the alphas.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..mutators import DiffMutator
from .base import accuracy, check_disjoint, optimizer_params

Batch = tuple[torch.Tensor, torch.Tensor]


class Darts:
    """First-order DARTS (``unrolled=False``), or second order (``unrolled=True``).

    Second order replaces the architecture gradient by the gradient after one
    virtual weight step w' = w - xi * (SGD update of the training loss):
    ``grad_a L_val(w') - xi * (grad_a L_train(w+) - grad_a L_train(w-)) / (2 eps)``
    with ``w+- = w +- eps * grad_w' L_val(w')`` and
    ``eps = 0.01 / ||grad_w' L_val(w')||`` (DARTS eq. 7-8). ``xi`` is the weight
    optimizer's current learning rate, and the virtual step includes its
    momentum and weight decay.

    Args:
        supernet: the network; its parameters are the weights.
        mutator: owns the alphas bound to ``supernet``.
        weight_optimizer: over exactly the weights (DARTS: SGD lr 0.025,
            momentum 0.9, weight decay 3e-4).
        arch_optimizer: over exactly the alphas (DARTS: Adam lr 3e-4,
            betas (0.5, 0.999), weight decay 1e-3).
        grad_clip: max norm of the weight gradient (DARTS: 5); None to skip.
    """

    def __init__(self, supernet: nn.Module, mutator: DiffMutator, weight_optimizer: torch.optim.Optimizer,
                 arch_optimizer: torch.optim.Optimizer, unrolled: bool = False,
                 criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 grad_clip: float | None = 5.0) -> None:
        self.supernet = supernet
        self.mutator = mutator
        self.weight_optimizer = weight_optimizer
        self.arch_optimizer = arch_optimizer
        self.unrolled = unrolled
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.grad_clip = grad_clip
        self.weights = optimizer_params(weight_optimizer)
        self.alphas = optimizer_params(arch_optimizer)
        check_disjoint(self.weights, self.alphas)

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """One architecture step on ``val_batch``, then one weight step on ``train_batch``."""
        self.supernet.train()
        x_val, y_val = val_batch
        x_train, y_train = train_batch

        self.arch_optimizer.zero_grad(set_to_none=True)
        if self.unrolled:
            val_logits, val_loss = self._unrolled_arch_backward(x_train, y_train, x_val, y_val)
        else:
            val_logits = self.supernet(x_val)
            val_loss = self.criterion(val_logits, y_val)
            val_loss.backward(inputs=self.alphas)
        self.arch_optimizer.step()

        self.weight_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet(x_train)
        loss = self.criterion(logits, y_train)
        loss.backward(inputs=self.weights)
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
        self.weight_optimizer.step()

        return {"train_loss": loss.item(), "train_acc": accuracy(logits, y_train).item(),
                "val_loss": val_loss.item(), "val_acc": accuracy(val_logits, y_val).item()}

    # -- second order ------------------------------------------------------
    def _virtual_step_direction(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """The update the weight optimizer (SGD) would apply, per weight, over its lr:
        momentum * buf + grad + weight_decay * w."""
        group = self.weight_optimizer.param_groups[0]
        momentum, wd = group.get("momentum", 0.0), group.get("weight_decay", 0.0)
        directions = []
        for w, g in zip(self.weights, grads):
            d = g + wd * w.detach() if wd else g.clone()
            buf = self.weight_optimizer.state.get(w, {}).get("momentum_buffer")
            if momentum and buf is not None:
                d = d + momentum * buf
            directions.append(d)
        return directions

    def _alpha_grads(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        loss = self.criterion(self.supernet(x), y)
        return list(torch.autograd.grad(loss, self.alphas, allow_unused=True))

    def _unrolled_arch_backward(self, x_train, y_train, x_val, y_val):
        xi = self.weight_optimizer.param_groups[0]["lr"]
        backup = [w.detach().clone() for w in self.weights]
        # 1. virtual step w' = w - xi * direction(grad_w L_train(w))
        train_loss = self.criterion(self.supernet(x_train), y_train)
        grads = torch.autograd.grad(train_loss, self.weights, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(self.weights, grads)]
        with torch.no_grad():
            for w, d in zip(self.weights, self._virtual_step_direction(grads)):
                w.sub_(xi * d)
        # 2. gradients of L_val(w') w.r.t. alphas and w'
        val_logits = self.supernet(x_val)
        val_loss = self.criterion(val_logits, y_val)
        grads = torch.autograd.grad(val_loss, self.alphas + self.weights, allow_unused=True)
        d_alpha = [torch.zeros_like(a) if g is None else g for a, g in zip(self.alphas, grads[:len(self.alphas)])]
        v = [torch.zeros_like(w) if g is None else g for w, g in zip(self.weights, grads[len(self.alphas):])]
        # 3. finite-difference mixed Hessian-vector product around the original w
        eps = 0.01 / torch.cat([g.flatten() for g in v]).norm()
        with torch.no_grad():
            for w, b, g in zip(self.weights, backup, v):
                w.copy_(b + eps * g)
        g_plus = self._alpha_grads(x_train, y_train)
        with torch.no_grad():
            for w, b, g in zip(self.weights, backup, v):
                w.copy_(b - eps * g)
        g_minus = self._alpha_grads(x_train, y_train)
        with torch.no_grad():
            for w, b in zip(self.weights, backup):
                w.copy_(b)
        for a, da, gp, gm in zip(self.alphas, d_alpha, g_plus, g_minus):
            gp = torch.zeros_like(a) if gp is None else gp
            gm = torch.zeros_like(a) if gm is None else gm
            a.grad = da - xi * (gp - gm) / (2 * eps)
        return val_logits, val_loss

    # -- schedules -----------------------------------------------------------
    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """DARTS has no schedule of its own (the weight LR schedule is the engine's)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"Darts keeps no state, got keys {sorted(state)}")
