"""Parameter and MAC counts: layer formulas, DARTS' published sizes."""

import pytest
import torch
from torch import nn

from gradnas.genotype import DARTS_V2
from gradnas.inspect import count_macs, count_parameters, describe_genotype
from gradnas.spaces.darts.network import NetworkCIFAR, NetworkImageNet


def test_count_parameters_matches_layer_shapes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 10))
    conv, bn, linear = 3 * 8 * 3 * 3 + 8, 2 * 8, 8 * 10 + 10
    assert count_parameters(model) == conv + bn + linear


def test_count_parameters_counts_a_shared_layer_once():
    linear = nn.Linear(4, 4)
    assert count_parameters(nn.Sequential(linear, linear)) == 4 * 4 + 4


def test_count_macs_of_a_strided_grouped_conv_is_its_formula():
    conv = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2)
    # 9x9 input, stride 2, padding 1 -> 5x5 outputs; each output channel reads 4/2 input channels.
    assert count_macs(conv, (4, 9, 9)) == 8 * (4 // 2) * 3 * 3 * 5 * 5


def test_count_macs_of_a_linear_layer_is_in_times_out():
    assert count_macs(nn.Linear(20, 7), (20,)) == 20 * 7


class _AttentionLike(nn.Module):
    """A batched matmul and element-wise ops around one linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.bmm(x, x.transpose(1, 2)).softmax(-1)  # (N, 5, 5)
        return self.linear(torch.relu(torch.bmm(scores, x)))  # (N, 5, 3)


def test_count_macs_counts_only_convolutions_and_linear_layers():
    # The two bmm's (2 * 5*5*6 MACs) are left out; the linear layer runs on 5 rows.
    assert count_macs(_AttentionLike(), (5, 6)) == 5 * 6 * 3


def test_count_macs_runs_in_eval_mode_and_restores_the_mode():
    seen = []
    model = nn.Linear(2, 2)
    model.register_forward_hook(lambda module, args, out: seen.append(module.training))
    model.train()
    count_macs(model, (2,))
    assert seen == [False] and model.training


def test_count_macs_of_darts_v2_in_the_imagenet_mobile_setting():
    # 529,911,552 MACs: convolutions and linear layers of DARTS' own NetworkImageNet
    # (github.com/quark0/darts, cnn/model.py) for DARTS_V2, C=48, 14 cells, 224x224,
    # counted the same way; the DARTS paper's 574M counts differently.
    model = NetworkImageNet(DARTS_V2, C=48, layers=14, num_classes=1000)
    assert count_macs(model, (3, 224, 224)) == 529_911_552


@pytest.mark.parametrize("shape", [(), (3, 0, 8), (3, 8.0, 8), "3x8x8", (1, 3, True)])
def test_count_macs_rejects_a_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape must be"):
        count_macs(nn.Linear(2, 2), shape)


def test_count_macs_reports_an_input_too_small_for_the_model():
    with pytest.raises(ValueError, match=r"cannot run on inputs of shape \(3, 2, 2\)"):
        count_macs(nn.Conv2d(3, 4, 5), (3, 2, 2))


def test_describe_genotype_gives_darts_v2_cifar_published_params():
    # DARTS_V2, C=36, 20 cells, CIFAR-10: 3,349,342 parameters without the auxiliary
    # head and 3,825,768 with it, the counts of DARTS' cnn/model.py (quark0/darts).
    info = describe_genotype(DARTS_V2, "cifar")
    assert (info["C"], info["layers"], info["num_classes"], info["image_size"]) == (36, 20, 10, 32)
    assert info["params"] == 3_349_342
    assert info["params_with_auxiliary"] == 3_825_768


def test_describe_genotype_macs_leave_the_auxiliary_head_out():
    info = describe_genotype(
        DARTS_V2, "cifar", C=8, layers=5, num_classes=10, in_channels=1, image_size=8
    )
    without_head = NetworkCIFAR(DARTS_V2, C=8, layers=5, num_classes=10, in_channels=1)
    assert info["macs"] == count_macs(without_head, (1, 8, 8))
    assert info["params"] == count_parameters(without_head)


def test_describe_genotype_imagenet_defaults_are_darts_mobile_setting():
    # DARTS (Liu et al., ICLR 2019, Table 3): DARTS_V2 on ImageNet has 4.7M parameters.
    info = describe_genotype(DARTS_V2, "imagenet", image_size=32)
    assert (info["C"], info["layers"], info["num_classes"]) == (48, 14, 1000)
    assert round(info["params"] / 1e5) == 47


def test_describe_genotype_rejects_an_unknown_network():
    with pytest.raises(ValueError, match="network must be one of"):
        describe_genotype(DARTS_V2, "mnist")
