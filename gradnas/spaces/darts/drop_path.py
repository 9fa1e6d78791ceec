"""Drop-path: randomly drop a whole op output per sample while training.

DARTS retrains its derived networks with drop-path on every op of a cell
except the identity (Liu et al., "DARTS", ICLR 2019; ``drop_path`` in
``cnn/utils.py`` and ``Cell.forward`` in ``cnn/model.py`` of
github.com/quark0/darts): each sample's op output is kept with probability
``1 - p`` and then divided by ``1 - p``, so its expectation is unchanged.
The probability grows linearly from 0 over the epochs of the retraining
(``drop_path_schedule``; DARTS' CIFAR-10 default maximum is 0.2).
"""

from __future__ import annotations

import torch
from torch import nn


def check_drop_path_prob(p: float) -> float:
    # p = 1 would divide by a keep probability of 0.
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"drop-path probability must be a number in [0, 1), got {p!r}")
    return float(p)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero each sample of ``x`` with probability ``p``, scale the rest by 1/(1-p).

    Identity outside training or when ``p == 0``. The per-sample mask is
    drawn from torch's global RNG (``torch.rand(N) < 1 - p``) on ``x``'s
    device, so no host sync is needed.
    """
    p = check_drop_path_prob(p)
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    # One Bernoulli(keep) draw per sample, broadcast over the other dims: (N, 1, 1, ...).
    mask_shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    mask = (torch.rand(mask_shape, device=x.device) < keep).to(x.dtype)
    return x * mask / keep


class DropPath(nn.Module):
    """Module form of :func:`drop_path` with a settable probability ``p``.

    It has no parameters, so adding it leaves parameter counts unchanged.
    A derived network sets ``p`` on all of its ``DropPath`` modules through
    its ``drop_path_prob`` property.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_drop_path_prob(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_path_schedule(epoch: int, num_epochs: int, max_prob: float) -> float:
    """The drop-path probability for 0-based ``epoch``: ``max_prob * epoch / num_epochs``.

    This is DARTS' linear ramp (``model.drop_path_prob = args.drop_path_prob
    * epoch / args.epochs`` in ``cnn/train.py``): 0 in the first epoch and
    ``max_prob * (num_epochs - 1) / num_epochs`` in the last.

    >>> [round(drop_path_schedule(e, 4, 0.2), 6) for e in range(4)]
    [0.0, 0.05, 0.1, 0.15]
    """
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < num_epochs:
        raise ValueError(f"epoch must be an int in 0..{num_epochs - 1}, got {epoch!r}")
    return check_drop_path_prob(max_prob) * epoch / num_epochs
