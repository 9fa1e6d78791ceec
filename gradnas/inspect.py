"""Size of a network: parameter count and multiply-accumulates (MACs) per image.

NAS papers compare architectures by parameters and by "mult-adds" of one
forward pass on one image. Here MACs are those of the convolutions and the
linear layers only, measured with :class:`torch.utils.flop_counter.FlopCounterMode`
(which counts 2 FLOPs per multiply-accumulate, biases left out), so
normalisations, activations, poolings and element-wise sums add nothing.
With this count DARTS_V2 in DARTS' ImageNet mobile setting (C=48, 14 cells,
224x224) has 529,911,552 MACs, the same as the original DARTS code counted
this way; the DARTS paper's 574M comes from another counting.

>>> from torch import nn
>>> count_macs(
...     nn.Conv2d(3, 8, 3, padding=1), (3, 4, 4)
... )  # 3*8*3*3 per output position, 4*4 positions
3456
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from . import limits
from .genotype import Genotype
from .spaces.darts.network import NetworkCIFAR, NetworkImageNet

# The aten ops that convolutions and linear layers reach (nn.Linear is addmm
# with a bias, mm without, and mm after flattening inputs of more than 2 dims).
# bmm/baddbmm (attention) and scaled-dot-product attention are left out.
_CONV_AND_LINEAR = frozenset(
    {
        torch.ops.aten.convolution,
        torch.ops.aten._convolution,
        torch.ops.aten.mm,
        torch.ops.aten.addmm,
    }
)

# DARTS' settings for each network (Liu et al., "DARTS", ICLR 2019, Sec. 3.3 /
# cnn/train.py and cnn/train_imagenet.py of github.com/quark0/darts).
NETWORK_DEFAULTS: dict[str, dict[str, int]] = {
    "cifar": {"C": 36, "layers": 20, "num_classes": 10, "in_channels": 3, "image_size": 32},
    "imagenet": {"C": 48, "layers": 14, "num_classes": 1000, "in_channels": 3, "image_size": 224},
}


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements, each shared parameter counted once (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else None
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(
            f"input_shape must be a non-empty sequence of positive ints (one example, "
            f"without the batch dimension, e.g. (3, 32, 32)), got {input_shape!r}"
        )
    return shape


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of convolutions and linear layers for one example.

    ``input_shape`` is the shape of one example without the batch dimension,
    e.g. ``(3, 32, 32)``; the model runs in eval mode without gradients on a
    batch of one zero image (MACs do not depend on the values), and is put
    back in the mode it was in.
    """
    shape = _check_shape(input_shape)
    first = next(model.parameters(), None)
    device, dtype = (
        (first.device, first.dtype) if first is not None else (torch.device("cpu"), torch.float32)
    )
    x = torch.zeros((1, *shape), device=device, dtype=dtype)  # (1, *input_shape)
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)  # outside the with: its __enter__ is untyped
        with torch.no_grad(), counter:
            model(x)
    except RuntimeError as err:
        raise ValueError(f"the model cannot run on inputs of shape {shape}: {err}") from None
    finally:
        model.train(was_training)
    flops = counter.get_flop_counts().get("Global", {})
    # FlopCounterMode counts 2 FLOPs (a multiply and an add) per MAC.
    return sum(count for op, count in flops.items() if op in _CONV_AND_LINEAR) // 2


# Bounds of ``gradnas inspect``'s sizes: past them the network or one image's
# activations would not fit in memory (the error names how much they would take).
INSPECT_BOUNDS = {
    "C": limits.WIDTH_MAX,
    "layers": limits.CELLS_MAX,
    "num_classes": 1_000_000,
    "in_channels": 1024,
    "image_size": limits.IMAGE_SIZE_MAX,
}


def check_inspect_bounds(settings: dict[str, int]) -> None:
    """Every size positive and within :data:`INSPECT_BOUNDS`."""
    for key, bound in INSPECT_BOUNDS.items():
        value = settings[key]
        if not 1 <= value <= bound:
            weights = limits.darts_weight_bytes(settings["C"], settings["layers"], 4)
            # One float32 map of C channels at the input size, per cell: a lower bound.
            maps = 4.0 * settings["C"] * settings["image_size"] ** 2 * settings["layers"]
            raise ValueError(
                f"{key} must be in 1..{bound:,}, got {value:,} (the weights alone would need at "
                f"least {limits.gib(weights)}, one image's feature maps {limits.gib(maps)})"
            )


def describe_genotype(
    genotype: Genotype,
    network: str = "cifar",
    C: int | None = None,
    layers: int | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    image_size: int | None = None,
) -> dict[str, Any]:
    """Size of the derived network of ``genotype``, for ``gradnas inspect``.

    Arguments left as ``None`` take DARTS' values for ``network``
    (:data:`NETWORK_DEFAULTS`). Returns the settings used, ``params`` (without
    the auxiliary head, as DARTS reports), ``params_with_auxiliary`` (the
    network trained with the head) and ``macs`` for one square image of side
    ``image_size`` in eval mode (the head only runs in training, so it adds
    no MACs).
    """
    if network not in NETWORK_DEFAULTS:
        raise ValueError(f"network must be one of {list(NETWORK_DEFAULTS)}, got {network!r}")
    given = {
        "C": C,
        "layers": layers,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "image_size": image_size,
    }
    settings = {k: NETWORK_DEFAULTS[network][k] if v is None else v for k, v in given.items()}
    size = settings["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"image_size must be a positive int, got {size!r}")
    check_inspect_bounds(settings)
    builder = NetworkCIFAR if network == "cifar" else NetworkImageNet
    model = builder(
        genotype,
        C=settings["C"],
        num_classes=settings["num_classes"],
        layers=settings["layers"],
        auxiliary=True,
        in_channels=settings["in_channels"],
    )
    with_head = count_parameters(model)
    return {
        "network": network,
        **settings,
        "params": with_head - count_parameters(model.auxiliary_head),
        "params_with_auxiliary": with_head,
        "macs": count_macs(model, (settings["in_channels"], size, size)),
    }
