"""Auto-DeepLab: the supernet, Viterbi decoding, the architecture value, the derived network."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import torch

from gradnas.genotype import GenotypeError
from gradnas.mutators import DartsMutator
from gradnas.spaces.autodeeplab import (
    AUTO_DEEPLAB,
    AutoDeepLabArch,
    AutoDeepLabNetwork,
    AutoDeepLabSearchNetwork,
    incoming,
    levels,
    path_score,
    path_space_id,
    viterbi_path,
)
from gradnas.spaces.darts.ops import DilConv

SMALL: dict[str, Any] = {
    "F": 4,
    "steps": 2,
    "in_channels": 1,
    "num_classes": 3,
    "stem_channels": (4, 4, 8),
}


def small_supernet(layers: int = 4) -> tuple[AutoDeepLabSearchNetwork, DartsMutator]:
    torch.manual_seed(0)
    net = AutoDeepLabSearchNetwork(layers=layers, **SMALL)
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    return net, mutator


def brute_force(weights: dict[tuple[int, int], list[float]], num_layers: int):
    """Every path scored on its own: start at level 0 (the stem), move at most one level per
    layer, stay in 0..3; a transition's weight is found by its source level among the
    sources that exist in the layer before (levels 0..layer, the stem only level 0)."""
    best, best_path = -1.0, None
    for path in itertools.product(range(4), repeat=num_layers):
        previous, score = 0, 1.0
        for layer, level in enumerate(path):
            if abs(level - previous) > 1:
                break
            existing = [0] if layer == 0 else list(range(min(layer + 1, 4)))
            sources = [s for s in (level - 1, level, level + 1) if s in existing]
            score *= weights[(layer, level)][sources.index(previous)]
            previous = level
        else:
            if score > best:
                best, best_path = score, list(path)
    return best_path, best


@pytest.mark.parametrize("num_layers", [1, 2, 3, 5, 6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_equals_brute_force(num_layers: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    weights = {
        (layer, level): torch.softmax(
            3 * torch.randn(len(incoming(layer, level)), generator=g), 0
        ).tolist()
        for layer in range(num_layers)
        for level in levels(layer)
    }
    path, score = viterbi_path(weights, num_layers)
    expected_path, expected_score = brute_force(weights, num_layers)
    assert path == expected_path
    assert math.isclose(score, expected_score, rel_tol=1e-9)
    assert math.isclose(path_score(weights, path), expected_score, rel_tol=1e-9)


def test_to_arch_decodes_the_supernet_betas_by_viterbi() -> None:
    net, mutator = small_supernet(layers=5)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for alpha in mutator.arch_parameters():
            alpha.copy_(2 * torch.randn(alpha.shape, generator=g))
    arch = net.to_arch(mutator.search_subnet(), mutator.arch_params)
    expected, _ = brute_force(net.path_weights(mutator.arch_params), 5)
    assert list(arch.path) == expected
    # the cell by the DARTS rule, computed here from the alphas: on each input of a block the
    # strongest op other than 'none'; the two inputs whose op is strongest, strongest first
    ops = net.primitives
    for i, block in enumerate(arch.cell):
        best = []
        for j in range(2 + i):
            probs = torch.softmax(mutator.arch_params[f"cell_node{i}_input{j}"].detach(), 0)
            k = max((k for k in range(len(ops)) if ops[k] != "none"), key=lambda k: probs[k])
            best.append((float(probs[k]), ops[k], j))
        top = sorted(best, key=lambda b: -b[0])[:2]
        assert list(block) == [(op, j) for _, op, j in top]


def test_supernet_forward_runs_a_cell_at_every_resolution() -> None:
    net, _ = small_supernet(layers=4)
    seen: dict[tuple[int, int], tuple[int, ...]] = {}
    for layer in range(4):
        for level in levels(layer):
            net.node(layer, level).register_forward_hook(
                lambda m, i, out, key=(layer, level): seen.__setitem__(key, tuple(out.shape))
            )
    out = net(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 3, 64, 64)
    expected = {
        (layer, level): (2, 2 * 4 * 2**level, 16 // 2**level, 16 // 2**level)
        for layer in range(4)
        for level in levels(layer)
    }
    assert seen == expected
    assert {level for layer, level in seen} == {0, 1, 2, 3}


def test_supernet_rejects_sizes_it_cannot_halve() -> None:
    net, _ = small_supernet(layers=3)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.randn(1, 1, 48, 40))


def test_beta_gradients_reach_every_transition() -> None:
    net, mutator = small_supernet(layers=4)
    net(torch.randn(2, 1, 32, 32)).square().mean().backward()
    betas = 0
    for layer in range(4):
        for level in levels(layer):
            names = [name for name, _ in incoming(layer, level)]
            edge = net.node(layer, level).edge
            assert list(edge.full_choice_names) == names
            if len(names) > 1:
                grad = mutator.arch_params[path_space_id(layer, level)].grad
                assert grad is not None and torch.isfinite(grad).all()
                assert (grad.abs() > 0).all(), (layer, level, grad)
                betas += 1
            for name in names:  # every transition's weights are trained too
                for p in edge.choices[name].parameters():
                    assert p.grad is not None and p.grad.abs().sum() > 0
    # cells with two or more inputs: layer 1 levels 0, 1; layer 2 levels 0..2; layer 3 levels 0..3
    assert betas == 2 + 3 + 4


def test_derived_network_has_only_the_path_cells() -> None:
    arch = AutoDeepLabArch(
        [[("sep_conv_3x3", 1), ("skip_connect", 0)], [("dil_conv_3x3", 2), ("max_pool_3x3", 1)]],
        path=[1, 2, 2, 1, 0],
    )
    net = AutoDeepLabNetwork(arch, F=4, num_classes=3, in_channels=1, stem_channels=(4, 4, 8))
    assert len(net.cells) == len(arch.path) == len(net.transitions)
    for cell, level in zip(net.cells, arch.path):
        C = 4 * 2**level
        assert len(cell.nodes) == 2 and cell.concat == [2, 3]
        blocks = [sorted(name.split("_", 1)[1] for name in node.choices) for node in cell.nodes]
        assert blocks == [
            ["sep_conv_3x3_input1", "skip_connect_input0"],
            ["dil_conv_3x3_input2", "max_pool_3x3_input1"],
        ]
        assert cell.preprocess0[1].out_channels == C
    # nothing else holds weights: stem + transitions + cells + head is the whole network
    parts = [net.stem, net.transitions, net.cells, net.head]
    assert sum(p.numel() for m in parts for p in m.parameters()) == sum(
        p.numel() for p in net.parameters()
    )
    out = net(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 3, 32, 32)


def test_derived_network_of_a_decoded_path() -> None:
    """Betas that favour one path decode to it, and its network has one cell per layer at
    that path's resolutions, with fewer weights than the supernet's cells."""
    net, mutator = small_supernet(layers=4)
    wanted = [1, 2, 3, 2]
    with torch.no_grad():
        previous = 0
        for layer, level in enumerate(wanted):
            if len(incoming(layer, level)) > 1:
                beta = mutator.arch_params[path_space_id(layer, level)]
                sources = [s for _, s in incoming(layer, level)]
                beta.fill_(-5.0)
                beta[sources.index(previous)] = 5.0
            previous = level
    arch = net.to_arch(mutator.search_subnet(), mutator.arch_params)
    assert list(arch.path) == wanted
    derived = AutoDeepLabNetwork(arch, F=4, num_classes=3, in_channels=1, stem_channels=(4, 4, 8))
    widths = [cell.preprocess0[1].out_channels for cell in derived.cells]
    assert widths == [4 * 2**level for level in wanted]


def test_arch_text_and_json_round_trip() -> None:
    for arch in (AUTO_DEEPLAB, AutoDeepLabArch([[("skip_connect", 0)]], [0])):
        assert AutoDeepLabArch.parse(str(arch)) == arch
        assert AutoDeepLabArch.from_json(arch.to_json()) == arch
    assert str(AUTO_DEEPLAB).endswith("path=0,0,0,1,2,1,2,2,3,3,2,1")
    assert AUTO_DEEPLAB.rates == (4, 4, 4, 8, 16, 8, 16, 16, 32, 32, 16, 8)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: AutoDeepLabArch([[("sep_conv_3x3", 0)]], [0, 2]), "at most one level"),
        (lambda: AutoDeepLabArch([[("sep_conv_3x3", 0)]], [2]), "at most one level"),
        (lambda: AutoDeepLabArch([[("sep_conv_3x3", 0)]], [0, 1, 2, 3, 4]), "0..3"),
        (lambda: AutoDeepLabArch([[("sep_conv_3x3", 0)]], []), "at least one layer"),
        (lambda: AutoDeepLabArch([[("conv_9x9", 0)]], [0]), "unknown op 'conv_9x9'"),
        (lambda: AutoDeepLabArch([[("sep_conv_3x3", 2)]], [0]), "out of range 0..1"),
        (lambda: AutoDeepLabArch([[]], [0]), "at least one input"),
        (lambda: AutoDeepLabArch.parse("cell=sep_conv_3x3 path=0"), "op@input"),
        (lambda: AutoDeepLabArch.parse("__import__('os')"), "expected 'cell="),
        (lambda: AutoDeepLabArch.parse("cell=sep_conv_3x3@0 path=0,x"), r"path\[1\]"),
        (lambda: AutoDeepLabArch.from_json('{"cell": [[["skip_connect", 0]]]}'), "missing"),
        (lambda: AutoDeepLabArch.from_dict({"cell": [], "path": [0], "x": 1}), "unknown key"),
    ],
)
def test_bad_architectures_are_named(make, message: str) -> None:
    with pytest.raises(GenotypeError, match=message):
        make()


# Liu et al., "Auto-DeepLab", CVPR 2019, Table 3 (Cityscapes): Auto-DeepLab-S / M / L
# (F = 20 / 32 / 48) have 10.15M / 21.62M / 44.42M parameters.
PUBLISHED = {20: 10.15e6, 32: 21.62e6, 48: 44.42e6}


def release_atrous_difference(net: AutoDeepLabNetwork) -> int:
    """Weights the release's atrous ops have beyond gradnas' dil_conv: the release builds
    'atrous_kxk' as a full k x k convolution (C * C * k * k weights, nas_cell.py), gradnas as
    depthwise k x k plus pointwise 1x1 (C * k * k + C * C); the BatchNorms are the same."""
    extra = 0
    for cell in net.cells:
        for m in cell.modules():
            # a SepConv's blocks are DilConvs of dilation 1: only the dil_conv ops count
            if type(m) is DilConv and m[1].dilation[0] > 1:
                depthwise = m[1]
                C, k = depthwise.in_channels, depthwise.kernel_size[0]
                extra += C * C * k * k - (C * k * k + C * C)
    return extra


def deeplabv3plus_decoder_weights(low_level_channels: int) -> int:
    """DeepLabv3+'s decoder (Chen et al., ECCV 2018), which the paper's networks end with and
    gradnas does not build: a 1x1 conv of the 1/4 feature to 48 channels + BN, then two 3x3
    convs of 256 filters + BN over the concat with the 256 ASPP channels."""
    return (
        low_level_channels * 48 + 2 * 48 + (256 + 48) * 256 * 9 + 2 * 256 + 256 * 256 * 9 + 2 * 256
    )


@pytest.mark.parametrize("F", [20, 32, 48])
def test_published_auto_deeplab_weight_counts(F: int) -> None:
    net = AutoDeepLabNetwork(AUTO_DEEPLAB, F=F, num_classes=19)
    ours = sum(p.numel() for p in net.parameters())
    measured = {20: 4_262_591, 32: 8_530_355, 48: 16_529_699}  # the README's table
    assert ours == measured[F]
    release = (
        ours + release_atrous_difference(net) + deeplabv3plus_decoder_weights(net.stem.out_channels)
    )
    # the paper rounds to 0.01M
    assert round(release / 1e4) == round(PUBLISHED[F] / 1e4), (ours, release)


def test_published_network_runs() -> None:
    net = AutoDeepLabNetwork(AUTO_DEEPLAB, F=4, num_classes=5, stem_channels=(4, 4, 8))
    net.eval()
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 5, 32, 32)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.randn(1, 3, 48, 48))


def test_a_darts_step_on_the_digit_canvases_moves_betas_and_alphas() -> None:
    """The supernet fits the library's algorithms as they are: per-pixel cross entropy on
    (N, classes, H, W) logits, one first-order DARTS step on the bundled canvases."""
    from gradnas.algorithms import Darts
    from gradnas.data.segmentation import DigitCanvasSegmentation

    data = DigitCanvasSegmentation(8, canvas=32, seed=0)
    net = AutoDeepLabSearchNetwork(layers=3, **{**SMALL, "num_classes": data.num_classes})
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    before = {k: v.detach().clone() for k, v in mutator.arch_params.items()}
    darts = Darts(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9),
        torch.optim.Adam(mutator.arch_parameters(), lr=3e-3),
    )
    batch = (data.images[:4], data.labels[:4])
    darts.step(batch, (data.images[4:], data.labels[4:]))
    for space_id, alpha in mutator.arch_params.items():
        assert not torch.equal(alpha.detach(), before[space_id]), space_id
    arch = net.to_arch(mutator.search_subnet(), mutator.arch_params)
    assert len(arch.path) == 3 and len(arch.cell) == 2
