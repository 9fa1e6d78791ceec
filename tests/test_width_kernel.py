"""Differentiable width and kernel-size choices (FBNetV2's masking) and their export."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gradnas.cost import build_cost_table
from gradnas.mutables import KernelConv2d, WidthConv2d
from gradnas.mutators import DartsMutator, DiffMutator, deploy_subnet


def test_masked_output_is_the_narrow_convs_on_every_channel():
    """Channel c of the masked output is the narrow conv's channel c times the
    sum of p_i over the widths above c (and the widest choice's channels
    beyond a narrower width are only scaled by the wider choices)."""
    torch.manual_seed(0)
    layer = WidthConv2d(3, (2, 5, 8), 3, "w", padding=1, bias=True)
    alpha = torch.tensor([0.3, -0.2, 0.5])
    x = torch.randn(2, 3, 6, 6)
    out = layer(x, alpha)
    p = torch.softmax(alpha, -1)
    full = layer.standalone_choice("width8")(x)
    coeff = torch.tensor([p[(torch.tensor([2, 5, 8]) > c)].sum() for c in range(8)])
    torch.testing.assert_close(out, full * coeff.view(1, -1, 1, 1), atol=1e-6, rtol=0)
    for width in (2, 5):
        narrow = layer.standalone_choice(f"width{width}")(x)
        torch.testing.assert_close(narrow, full[:, :width], atol=1e-6, rtol=0)


@pytest.mark.parametrize("chosen", [0, 1, 2])
def test_masked_output_equals_the_exported_conv_on_the_chosen_width(chosen):
    """With the mask concentrated on one width (alpha one-hot at +-50, softmax
    within 1e-40 of one-hot), the masked output is the exported narrow conv's
    on the chosen width and zero beyond it, to 1e-6."""
    torch.manual_seed(1)
    layer = WidthConv2d(4, (3, 6, 9), 3, "w", stride=2, padding=1)
    alpha = torch.full((3,), -50.0)
    alpha[chosen] = 50.0
    x = torch.randn(2, 4, 7, 7)
    masked = layer(x, alpha)
    width = (3, 6, 9)[chosen]
    exported = copy.deepcopy(layer)
    exported.export([f"width{width}"])
    conv = exported.to_conv()
    assert type(conv) is nn.Conv2d and conv.out_channels == width
    narrow = exported(x)
    assert narrow.shape[1] == width
    torch.testing.assert_close(masked[:, :width], narrow, atol=1e-6, rtol=0)
    if width < 9:
        assert masked[:, width:].abs().max().item() <= 1e-6
    assert sum(p.numel() for p in exported.parameters()) == 4 * width * 9


def test_kernel_mixture_is_the_mixture_of_centre_crops():
    torch.manual_seed(2)
    layer = KernelConv2d(3, 4, "k", stride=2)
    alpha = torch.tensor([0.1, 0.7, -0.4])
    x = torch.randn(2, 3, 9, 9)
    p = torch.softmax(alpha, -1)
    by_choice = sum(p[i] * layer.standalone_choice(f"{k}x{k}")(x) for i, k in enumerate((3, 5, 7)))
    torch.testing.assert_close(layer(x, alpha), by_choice, atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_exported_kernel_is_a_plain_conv_of_that_size(k):
    torch.manual_seed(3)
    layer = KernelConv2d(4, 4, "k", groups=4, bias=True)  # depthwise
    alpha = torch.full((3,), -50.0)
    alpha[(3, 5, 7).index(k)] = 50.0
    x = torch.randn(1, 4, 8, 8)
    masked = layer(x, alpha)
    layer.export([f"{k}x{k}"])
    conv = layer.to_conv()
    assert type(conv) is nn.Conv2d and conv.kernel_size == (k, k) and conv.padding == (k // 2,) * 2
    torch.testing.assert_close(layer(x), masked, atol=1e-6, rtol=0)
    assert sum(p.numel() for p in layer.parameters()) == 4 * k * k + 4


def test_exported_weights_and_macs_are_the_tables():
    torch.manual_seed(4)
    net = nn.Sequential(
        WidthConv2d(2, (4, 8), 3, "width", padding=1, bias=True),
        KernelConv2d(8, 5, "kernel"),
    )
    table = build_cost_table(net, (2, 6, 6))
    for width in (4, 8):
        layer = copy.deepcopy(net[0])
        layer.export([f"width{width}"])
        cost = table.decisions["width"].choices[f"width{width}"]
        assert cost.weights == sum(p.numel() for p in layer.parameters()) == 2 * width * 9 + width
        assert cost.macs == 2 * width * 9 * 36
    for k in (3, 5, 7):
        layer = copy.deepcopy(net[1])
        layer.export([f"{k}x{k}"])
        assert table.decisions["kernel"].choices[f"{k}x{k}"].weights == 8 * 5 * k * k
        assert table.decisions["kernel"].choices[f"{k}x{k}"].macs == 8 * 5 * k * k * 36
    assert table.fixed.weights == 0 and table.fixed.macs == 0


def test_alphas_are_bound_and_get_gradients_with_diff_mutator():
    torch.manual_seed(5)
    net = nn.Sequential(
        WidthConv2d(2, (4, 8), 3, "width", padding=1),
        nn.ReLU(),
        KernelConv2d(8, 3, "kernel"),
    )
    mutator = DiffMutator()
    mutator.prepare_from_supernet(net)
    assert set(mutator.arch_params) == {"width", "kernel"}
    assert net[0].arch_param is mutator.arch_params["width"]
    assert not any(p is a for p in net.parameters() for a in mutator.arch_parameters())
    net(torch.randn(2, 2, 5, 5)).square().mean().backward()
    for alpha in mutator.arch_parameters():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0


def test_darts_rule_and_deploy_give_plain_convs():
    net = nn.Sequential(WidthConv2d(2, (4, 8), 3, "width", padding=1), KernelConv2d(8, 3, "kernel"))
    mutator = DartsMutator(ignore_choices=())
    mutator.prepare_from_supernet(net)
    with torch.no_grad():
        mutator.arch_params["width"].copy_(torch.tensor([2.0, 0.0]))
        mutator.arch_params["kernel"].copy_(torch.tensor([0.0, 0.0, 3.0]))
    subnet = mutator.search_subnet()
    assert subnet == {"width": {"chosen": ["width4"]}, "kernel": {"chosen": ["7x7"]}}
    deploy_subnet(net, subnet)
    assert net[0].to_conv().out_channels == 4 and net[1].to_conv().kernel_size == (7, 7)


def test_bad_choices_are_named():
    with pytest.raises(ValueError, match="widths must be distinct positive ints"):
        WidthConv2d(2, (4, 4), 3, "w")
    with pytest.raises(ValueError, match="kernel_sizes must be distinct odd"):
        KernelConv2d(2, 2, "k", kernel_sizes=(3, 4))
    layer = WidthConv2d(2, (4, 8), 3, "w")
    with pytest.raises(ValueError, match="exactly one width"):
        layer.export(["width4", "width8"])
    with pytest.raises(ValueError, match="cannot export unknown choice"):
        layer.export(["width5"])
    with pytest.raises(ValueError, match="export a width first"):
        layer.to_conv()
    with pytest.raises(RuntimeError, match="no architecture parameter is bound"):
        layer(torch.randn(1, 2, 4, 4))
