"""Atrous spatial pyramid pooling (ASPP), the segmentation head of Auto-DeepLab.

DeepLabv3's ASPP (Chen et al., "Rethinking Atrous Convolution for Semantic
Image Segmentation", 2017): parallel branches over one feature map (a 1x1
conv, 3x3 convs with atrous rates, and the image-level pooled feature),
concatenated, projected by a 1x1 conv, then a 1x1 classifier. Auto-DeepLab
searches with one ASPP per resolution of the last layer, simplified to three
branches (1x1, one 3x3 of rate 96 / s, image pooling) with ``B * F * s / 4``
filters each, and sums their upsampled logits (Liu et al., CVPR 2019,
Section 3.2); its derived networks use the full five-branch ASPP.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(C_in: int, C_out: int, kernel_size: int, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(C_in, C_out, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(C_out),
        nn.ReLU(),
    )


class ImagePooling(nn.Module):
    """The image-level branch: global average, 1x1 conv, ReLU, broadcast back.

    No BatchNorm after the 1x1 conv (it has a bias instead): a pooled
    feature has one value per channel and sample, so a batch of one could
    not be normalised in training.
    """

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(C_in, C_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.relu(self.conv(x.mean(dim=(2, 3), keepdim=True)))  # (N, C_out, 1, 1)
        return pooled.expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    """1x1 branch, one 3x3 branch per atrous rate, image pooling; projection; classifier."""

    def __init__(self, C_in: int, C: int, rates: Sequence[int], num_classes: int) -> None:
        super().__init__()
        if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rates):
            raise ValueError(f"atrous rates must be positive ints, got {list(rates)}")
        branches: list[nn.Module] = [conv_bn_relu(C_in, C, 1)]
        branches += [conv_bn_relu(C_in, C, 3, dilation=r) for r in rates]
        branches.append(ImagePooling(C_in, C))
        self.branches = nn.ModuleList(branches)
        self.project = conv_bn_relu(len(branches) * C, C, 1)
        self.classifier = nn.Conv2d(C, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([branch(x) for branch in self.branches], dim=1)  # (N, k * C, h, w)
        logits: torch.Tensor = self.classifier(self.project(out))
        return logits
