"""An optimizer carried across a change of its parameters.

A schedule that prunes candidate ops or widens them (DrNAS' progressive
search) replaces parameter objects, so the optimizers over them must be
rebuilt. Rebuilding from scratch would drop SGD's momentum and Adam's
moments; :func:`rebuild_optimizer` instead hands each surviving parameter
its predecessor's state, grown or cut the way the parameter was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

# What became of a parameter: its successor and how a tensor shaped like the
# old one maps onto it, or None when it was removed.
Successor = tuple[nn.Parameter, Callable[[torch.Tensor], torch.Tensor]] | None


def rebuild_optimizer(
    optimizer: torch.optim.Optimizer, successors: Mapping[nn.Parameter, Successor]
) -> torch.optim.Optimizer:
    """A new optimizer of ``optimizer``'s class, hyper-parameters and current
    learning rate, over its parameters after the changes in ``successors``.

    A parameter not in ``successors`` stays and keeps its state; one mapped to
    ``(new, grow)`` is replaced, in the same position, by ``new``, whose state
    is the old state with every tensor shaped like the old parameter passed
    through ``grow`` (momentum buffers, Adam's moments; step counters stay);
    one mapped to None is dropped with its state.
    """
    if len(optimizer.param_groups) != 1:
        raise ValueError(
            f"rebuild_optimizer handles one parameter group, got {len(optimizer.param_groups)}"
        )
    group = {key: value for key, value in optimizer.param_groups[0].items() if key != "params"}
    params, state = [], {}
    for old in optimizer.param_groups[0]["params"]:
        successor = successors.get(old, (old, None))
        if successor is None:
            continue
        new, grow = successor
        params.append(new)
        if old in optimizer.state:
            state[new] = {
                key: grow(value) if grow is not None and _shaped_like(value, old) else value
                for key, value in optimizer.state[old].items()
            }
    rebuilt = type(optimizer)([{"params": params, **group}], **optimizer.defaults)
    for param, param_state in state.items():
        rebuilt.state[param] = param_state
    return rebuilt


def _shaped_like(value: object, param: torch.Tensor) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape == param.shape
