"""DARTS (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019).

One search step is a bilevel update: the alphas take one step on the
validation loss, then the weights one step on the training loss. Each step
starts from zeroed gradients and back-propagates into its own parameter set
only, so no validation gradient reaches the weights and no training
gradient reaches the alphas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ..mutators import DiffMutator
from .base import accuracy, check_disjoint, optimizer_params
from .contract import NO_CHANGE, SINGLE, DataParallel, EpochChange, FinalStage

Batch = tuple[torch.Tensor, torch.Tensor]
HESSIANS = ("finite_difference", "exact")


class Darts:
    """First-order DARTS (``unrolled=False``), or second order (``unrolled=True``).

    Second order (DARTS eq. 6-8) replaces the architecture gradient by the
    gradient after one virtual SGD step of the weights on the training loss,

        w' = w - xi * (momentum * buf + grad_w L_train(w, alpha) + weight_decay * w)
        grad_alpha L_val(w', alpha) - xi * grad^2_{alpha, w} L_train(w, alpha) . v,
        v = grad_w' L_val(w', alpha),

    where ``xi``, ``momentum`` and ``weight_decay`` are read from each weight's
    own param group and ``buf`` is the weight optimizer's momentum buffer
    (none before its first step), so ``w'`` is exactly where the weight
    optimizer would move on the unclipped gradient (DARTS clips only the real
    step). The mixed Hessian-vector product is by default DARTS' central
    difference: with ``eps = 0.01 / ||v||`` and ``w+- = w +- eps * v``,
    ``xi * H v ~= xi * (grad_alpha L_train(w+) - grad_alpha L_train(w-)) / (2 eps)``;
    ``hessian='exact'`` computes it by double backward instead.

    After the architecture step the weights are bit-identical to before, the
    optimizer state is untouched, and the supernet's buffers (BatchNorm
    running statistics) are as the one training forward at ``w`` left them:
    DARTS runs the forwards at ``w'`` and ``w+-`` on a copy of the network,
    so only that forward reaches its statistics.

    Two deliberate differences from the released DARTS code
    (quark0/darts ``cnn/architect.py``): the finite difference is taken around
    ``w``, as the paper's eq. 8 says, not around ``w'``; and ``v`` is the
    validation gradient alone, without the ``weight_decay * w'`` the code
    adds (the validation loss has no weight-decay term).

    Args:
        supernet: the network; its parameters are the weights.
        mutator: owns the alphas bound to ``supernet``.
        weight_optimizer: over exactly the weights (DARTS: SGD lr 0.025,
            momentum 0.9, weight decay 3e-4). For ``unrolled=True`` its
            step must be plain (momentum) SGD: no nesterov, dampening or
            maximize; groups without ``momentum`` or ``weight_decay`` count as 0.
        arch_optimizer: over exactly the alphas (DARTS: Adam lr 3e-4,
            betas (0.5, 0.999), weight decay 1e-3).
        unrolled: second-order architecture gradient.
        criterion: the loss (default cross entropy).
        grad_clip: max norm of the weight gradient (DARTS: 5); None to skip.
        hessian: ``'finite_difference'`` (DARTS) or ``'exact'`` (double
            backward; exact, one forward fewer, more memory).
        data_parallel: under ``torchrun``, how the weight step's forward is
            wrapped in DDP and the other gradients averaged (the default:
            one process).
    """

    reads_val_batch = True  # the architecture step reads the validation batch
    trains_supernet = True
    find_unused_parameters = False  # every weight runs in every forward

    def __init__(
        self,
        supernet: nn.Module,
        mutator: DiffMutator,
        weight_optimizer: torch.optim.Optimizer,
        arch_optimizer: torch.optim.Optimizer,
        unrolled: bool = False,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        grad_clip: float | None = 5.0,
        hessian: str = "finite_difference",
        data_parallel: DataParallel = SINGLE,
    ) -> None:
        if hessian not in HESSIANS:
            raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
        if unrolled:
            check_plain_sgd(weight_optimizer)
        self.supernet = supernet
        self.mutator = mutator
        self.weight_optimizer = weight_optimizer
        self.arch_optimizer = arch_optimizer
        self.unrolled = unrolled
        self.hessian = hessian
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.grad_clip = grad_clip
        self.weights = optimizer_params(weight_optimizer)
        self.alphas = optimizer_params(arch_optimizer)
        check_disjoint(self.weights, self.alphas)
        self.data_parallel = data_parallel
        # The weight step's forward: the supernet, or its DDP wrapper under torchrun.
        self.model: nn.Module = data_parallel.wrap(
            supernet, find_unused=self.find_unused_parameters
        )
        self.replicas = data_parallel.replicas  # averages the gradients DDP does not see

    def step(self, train_batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        """One architecture step on ``val_batch``, then one weight step on ``train_batch``.

        For ``unrolled=True`` the validation metrics are those at the virtual
        weights ``w'``, the point whose loss the architecture step lowers.
        """
        val_batch = needs_val_batch(self, val_batch)
        val_logits, val_loss = self.architecture_step(train_batch, val_batch)
        logits, loss = self.weight_step(train_batch)
        return {
            "train_loss": loss.item(),
            "train_acc": accuracy(logits, train_batch[1]).item(),
            "val_loss": val_loss.item(),
            "val_acc": accuracy(val_logits, val_batch[1]).item(),
        }

    def architecture_step(
        self, train_batch: Batch, val_batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Set every alpha's gradient and step the architecture optimizer.

        Returns the validation logits and loss, detached. ``train_batch`` is
        used by the second-order gradient only.
        """
        self.supernet.train()
        self.arch_optimizer.zero_grad(set_to_none=True)
        if self.unrolled:
            val_logits, val_loss = self._unrolled_backward(train_batch, val_batch)
        else:
            x_val, y_val = val_batch
            val_logits = self.supernet(x_val)
            val_loss = self.criterion(val_logits, y_val)
            val_loss.backward(inputs=self.alphas)
            self.replicas.average_grads_(self.alphas)
        self.arch_optimizer.step()
        return val_logits.detach(), val_loss.detach()

    def weight_step(self, train_batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One (clipped) step of the weight optimizer on the training loss;
        returns the training logits and loss, detached."""
        self.supernet.train()
        x_train, y_train = train_batch
        self.weight_optimizer.zero_grad(set_to_none=True)
        logits = self.model(x_train)
        loss = self.criterion(logits, y_train)
        loss.backward(inputs=self.weights)
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
        self.weight_optimizer.step()
        return logits.detach(), loss.detach()

    # -- second order ------------------------------------------------------
    def _unrolled_backward(
        self, train_batch: Batch, val_batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Set alpha.grad to the second-order DARTS gradient (see the class docstring)."""
        (x_train, y_train), (x_val, y_val) = train_batch, val_batch
        weights, alphas = self.weights, self.alphas
        # 1. The virtual step w' = w - xi * d, on the training batch at w.
        train_loss = self.criterion(self.supernet(x_train), y_train)
        xis, directions = self._virtual_step(self._grads(train_loss, weights))
        # One C++ loop per list (torch._foreach_*) instead of a Python loop over ~1400 tensors.
        saved_weights = torch._foreach_clone([w.detach() for w in weights])
        buffers = list(self.supernet.buffers())
        saved_buffers = torch._foreach_clone(buffers)
        try:
            with torch.no_grad():
                torch._foreach_sub_(weights, torch._foreach_mul(directions, xis))  # type: ignore[arg-type]  # stub: list[Tensor] only, but Parameters are Tensors
            # 2. The validation loss at w': its gradients w.r.t. alpha and v = w.r.t. w'.
            val_logits = self.supernet(x_val)
            val_loss = self.criterion(val_logits, y_val)
            grads = self._grads(val_loss, alphas + weights)
            grad_alpha, v = grads[: len(alphas)], grads[len(alphas) :]
            # 3. The mixed Hessian term at w, sum_i xi_i * grad^2_{alpha, w_i} L_train(w) . v_i.
            set_weights(weights, saved_weights)
            xi_v = list(torch._foreach_mul(v, xis))
            if self.hessian == "exact":
                hessian_term = self._exact_mixed_hvp(x_train, y_train, xi_v)
            else:
                hessian_term = self._finite_difference_mixed_hvp(
                    x_train, y_train, xi_v, saved_weights
                )
        finally:
            set_weights(weights, saved_weights)
            set_weights(buffers, saved_buffers)
        for a, g, h in zip(alphas, grad_alpha, hessian_term, strict=True):
            a.grad = g - h
        return val_logits, val_loss

    def _virtual_step(
        self, grads: Sequence[torch.Tensor]
    ) -> tuple[list[float], list[torch.Tensor]]:
        """Per weight, the learning rate ``xi`` and the direction
        ``d = momentum * buf + grad + weight_decay * w`` of the step the weight
        optimizer would take, each read from the weight's own param group."""
        xis, directions = [], []
        grad_iter = iter(grads)
        state = self.weight_optimizer.state
        for group in self.weight_optimizer.param_groups:
            momentum, weight_decay = group.get("momentum", 0.0), group.get("weight_decay", 0.0)
            params = group["params"]
            g = [next(grad_iter) for _ in params]
            d = list(
                torch._foreach_add(
                    g, torch._foreach_mul([w.detach() for w in params], weight_decay)
                )
            )
            # Weights without a momentum buffer (none before their first step) move by d alone.
            bufs = [
                (i, state[w]["momentum_buffer"])
                for i, w in enumerate(params)
                if state.get(w, {}).get("momentum_buffer") is not None
            ]
            if momentum and bufs:
                torch._foreach_add_(
                    [d[i] for i, _ in bufs], torch._foreach_mul([b for _, b in bufs], momentum)
                )
            xis += [group["lr"]] * len(params)
            directions += d
        return xis, directions

    def _finite_difference_mixed_hvp(
        self, x: torch.Tensor, y: torch.Tensor, xi_v: list[torch.Tensor], w0: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """DARTS eq. 8 along ``u = xi * v``:
        ``(grad_alpha L(w0 + eps u) - grad_alpha L(w0 - eps u)) / (2 eps)`` with
        ``eps = 0.01 / ||u||``. With one ``xi`` for every weight the weights
        move by ``0.01 * v / ||v||``, exactly DARTS' perturbation, and the
        quotient equals DARTS' ``xi * (g+ - g-) / (2 * 0.01 / ||v||)``; per-group
        learning rates are handled by the same formula."""
        norm = torch.cat([u.flatten() for u in xi_v]).norm()
        if norm == 0:  # lr 0 or a zero validation gradient: the term is exactly 0
            return [torch.zeros_like(a) for a in self.alphas]
        eps = 0.01 / norm
        eps_u = torch._foreach_mul(xi_v, eps)
        # Both passes need alpha gradients only: with the weights out of autograd the
        # forwards record less (about 8% faster on CPU) and the gradients are the same.
        with weights_frozen(self.weights):
            set_weights(self.weights, w0)
            with torch.no_grad():
                torch._foreach_add_(self.weights, eps_u)  # type: ignore[arg-type]  # stub: list[Tensor] only, but Parameters are Tensors (w0 + eps * u)
            g_plus = self._grads(self.criterion(self.supernet(x), y), self.alphas)
            set_weights(self.weights, w0)
            with torch.no_grad():
                torch._foreach_sub_(self.weights, eps_u)  # type: ignore[arg-type]  # stub: list[Tensor] only, but Parameters are Tensors (w0 - eps * u)
            g_minus = self._grads(self.criterion(self.supernet(x), y), self.alphas)
        return [(gp - gm) / (2 * eps) for gp, gm in zip(g_plus, g_minus)]

    def _exact_mixed_hvp(
        self, x: torch.Tensor, y: torch.Tensor, xi_v: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """``grad_alpha (grad_w L(w, alpha) . xi_v)`` by double backward at the current weights."""
        loss = self.criterion(self.supernet(x), y)
        grads = torch.autograd.grad(loss, self.weights, create_graph=True, allow_unused=True)
        dot = sum(((g * u).sum() for g, u in zip(grads, xi_v) if g is not None), loss.new_zeros(()))
        if not dot.requires_grad:  # no weight gradient depends on alpha
            return [torch.zeros_like(a) for a in self.alphas]
        return self._grads(dot, self.alphas)

    def _grads(self, loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``d loss / d params`` averaged over the data-parallel ranks: every
        gradient of the unrolled step is a mean over the global batch, so all
        ranks compute the same w', v, eps and Hessian term."""
        grads = grads_or_zeros(loss, params)
        self.replicas.average_(grads)
        return grads

    # -- schedules -----------------------------------------------------------
    def on_epoch_start(self, epoch: int, num_epochs: int) -> EpochChange:
        """DARTS has no schedule of its own (the weight LR schedule is the engine's)."""
        return NO_CHANGE

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> EpochChange:
        if state:
            raise ValueError(f"Darts keeps no state, got keys {sorted(state)}")
        return NO_CHANGE

    def logged(self) -> dict[str, float]:
        """Schedule values for the metrics file: none."""
        return {}

    def final_architecture(self, stage: FinalStage) -> None:
        """The architecture is derived from the alphas."""
        return None


def needs_val_batch(method: object, val_batch: Batch | None) -> Batch:
    """``val_batch``, which a bilevel method's architecture step cannot do without."""
    if val_batch is None:
        raise ValueError(f"{type(method).__name__} reads a validation batch; got None")
    return val_batch


def grads_or_zeros(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``d loss / d params``, with zeros for parameters the loss does not use."""
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


@contextmanager
def weights_frozen(weights: Sequence[torch.Tensor]) -> Iterator[None]:
    """Within the block, ``weights`` do not require gradients (autograd records no
    weight-gradient work); those that did require them again on exit."""
    frozen = [w for w in weights if w.requires_grad]
    for w in frozen:
        w.requires_grad_(False)
    try:
        yield
    finally:
        for w in frozen:
            w.requires_grad_(True)


def set_weights(weights: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> None:
    """Copy ``values`` into ``weights`` (or buffers) in place, outside autograd."""
    if len(weights) != len(values):
        raise ValueError(f"{len(weights)} tensors but {len(values)} values")
    with torch.no_grad():
        torch._foreach_copy_(list(weights), list(values))


def check_plain_sgd(optimizer: torch.optim.Optimizer) -> None:
    """Second-order DARTS' virtual step is a plain momentum-SGD step; refuse
    optimizer options that would make the real step differ from it."""
    for i, group in enumerate(optimizer.param_groups):
        if group.get("nesterov") or group.get("dampening", 0) or group.get("maximize"):
            raise ValueError(
                f"unrolled DARTS models the weight step as plain momentum SGD, but param group {i} of the "
                f"weight optimizer sets nesterov={group.get('nesterov')}, "
                f"dampening={group.get('dampening')}, "
                f"maximize={group.get('maximize')}"
            )
