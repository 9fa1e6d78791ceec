"""Derived DARTS networks: published sizes, shapes, genotype fidelity, drop-path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradnas.genotype import DARTS_V2, Genotype, GenotypeError
from gradnas.spaces.darts.drop_path import DropPath, drop_path, drop_path_schedule
from gradnas.spaces.darts.network import NO_INPUT, NetworkCIFAR, NetworkImageNet, edge_choice_name
from gradnas.spaces.darts.ops import build_op


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# A genotype that repeats an (op, input) pair and uses every kind of op.
REPEATS = Genotype(
    normal=[
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 0)],
        [("skip_connect", 1), ("dil_conv_5x5", 2)],
        [("avg_pool_3x3", 3), ("none", 0)],
        [("sep_conv_5x5", 4), ("dil_conv_3x3", 1)],
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        [("max_pool_3x3", 0), ("skip_connect", 1)],
        [("skip_connect", 2), ("sep_conv_3x3", 0)],
        [("skip_connect", 0), ("skip_connect", 0)],
        [("avg_pool_3x3", 1), ("skip_connect", 3)],
    ],
    reduce_concat=[2, 3, 4, 5],
)

# Variable in-degree (as an argmax derivation like SNAS can give): 1, 0, 3 and 1 inputs.
VARIABLE = Genotype(
    normal=[
        [("sep_conv_3x3", 0)],
        [],
        [("skip_connect", 0), ("max_pool_3x3", 1), ("dil_conv_3x3", 2)],
        [("sep_conv_3x3", 4)],
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        [("max_pool_3x3", 1)],
        [],
        [("skip_connect", 2), ("avg_pool_3x3", 0), ("skip_connect", 1)],
        [("sep_conv_3x3", 4)],
    ],
    reduce_concat=[2, 3, 4, 5],
)


# -- published sizes --------------------------------------------------------


def test_darts_v2_cifar_has_published_parameter_count():
    # DARTS (Liu et al., ICLR 2019) train.py log of DARTS_V2, C=36, 20 layers: "param size =
    # 3.349342MB".
    assert (
        num_params(NetworkCIFAR(DARTS_V2, C=36, num_classes=10, layers=20, auxiliary=False))
        == 3_349_342
    )


def test_darts_v2_cifar_with_auxiliary_head_has_published_parameter_count():
    # mmrazor's DARTS retrain config reports 3.83M parameters counting the auxiliary head.
    assert (
        num_params(NetworkCIFAR(DARTS_V2, C=36, num_classes=10, layers=20, auxiliary=True))
        == 3_825_768
    )


def test_darts_v2_imagenet_has_published_parameter_count():
    # DARTS' ImageNet network of DARTS_V2 (C=48, 14 layers, 1000 classes, no auxiliary head):
    # 4.718752M.
    assert (
        num_params(NetworkImageNet(DARTS_V2, C=48, num_classes=1000, layers=14, auxiliary=False))
        == 4_718_752
    )


def test_imagenet_auxiliary_head_has_no_batchnorm_after_its_768_conv():
    net = NetworkImageNet(DARTS_V2, C=8, num_classes=7, layers=4, auxiliary=True)
    C = net.aux_channels
    # conv 1x1 C->128, BN(128) weight+bias, conv 2x2 128->768, linear 768->7; no BN(768).
    assert num_params(net.auxiliary_head) == C * 128 + 2 * 128 + 128 * 768 * 4 + 768 * 7 + 7


# -- shapes -----------------------------------------------------------------


def test_cifar_forward_returns_logits_and_aux_logits_in_training():
    net = NetworkCIFAR(DARTS_V2, C=8, num_classes=10, layers=5, auxiliary=True).train()
    logits, logits_aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and logits_aux.shape == (2, 10)


def test_cifar_forward_returns_only_logits_in_eval():
    net = NetworkCIFAR(DARTS_V2, C=8, num_classes=10, layers=5, auxiliary=True).eval()
    out = net(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_imagenet_forward_shapes():
    net = NetworkImageNet(DARTS_V2, C=8, num_classes=7, layers=4, auxiliary=True).train()
    logits, logits_aux = net(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 7) and logits_aux.shape == (2, 7)


def cell_output_sizes(net: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    sizes = []
    hooks = [
        cell.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[1:])))
        for cell in net.cells
    ]
    net(x)
    for hook in hooks:
        hook.remove()
    return sizes


def test_digits_inputs_are_reduced_at_one_and_two_thirds_of_the_depth():
    net = NetworkCIFAR(DARTS_V2, C=4, num_classes=10, layers=6, in_channels=1).eval()
    sizes = cell_output_sizes(net, torch.randn(2, 1, 8, 8))
    # Reductions at cells 6 // 3 = 2 and 2 * 6 // 3 = 4 halve 8x8 and double C; 4 nodes
    # concatenated.
    assert sizes == [(16, 8, 8), (16, 8, 8), (32, 4, 4), (32, 4, 4), (64, 2, 2), (64, 2, 2)]


def test_imagenet_reduces_224_to_7():
    net = NetworkImageNet(DARTS_V2, C=8, num_classes=7, layers=3).eval()
    sizes = cell_output_sizes(net, torch.randn(1, 3, 224, 224))
    assert [s[1:] for s in sizes] == [(28, 28), (14, 14), (7, 7)]


def test_auxiliary_head_on_too_small_input_raises_in_training():
    net = NetworkCIFAR(
        DARTS_V2, C=4, num_classes=10, layers=3, in_channels=1, auxiliary=True
    ).train()
    with pytest.raises(
        ValueError, match="auxiliary head needs feature maps of at least 8x8.*got 2x2"
    ):
        net(torch.randn(2, 1, 8, 8))


def test_auxiliary_head_is_not_run_in_eval_so_small_inputs_work():
    net = NetworkCIFAR(
        DARTS_V2, C=4, num_classes=10, layers=3, in_channels=1, auxiliary=True
    ).eval()
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


# -- the network computes the genotype and nothing else -------------------


def cell_channels(cell: nn.Module) -> int:
    return cell.preprocess1[1].out_channels  # ReLU, Conv2d(C_prev, C), BN


def test_each_cell_holds_exactly_the_genotypes_ops():
    net = NetworkCIFAR(REPEATS, C=4, num_classes=10, layers=3)
    for cell in net.cells:
        spec = REPEATS.reduce if cell.reduction else REPEATS.normal
        C = cell_channels(cell)
        assert cell.node_inputs == [[j for _, j in node] for node in spec]
        for edge, node in zip(cell.nodes, spec):
            assert list(edge.choices) == [
                edge_choice_name(e, op, j) for e, (op, j) in enumerate(node)
            ]
            for choice, (op, j) in zip(edge.choices.values(), node):
                expected = build_op(op, C, 2 if cell.reduction and j < 2 else 1, affine=True)
                built = choice if isinstance(choice, nn.Identity) else choice[0]
                assert repr(built) == repr(expected)


def test_forward_runs_each_genotype_op_once():
    net = NetworkCIFAR(REPEATS, C=4, num_classes=10, layers=3).eval()
    calls: dict[tuple[int, int, str], int] = {}
    for c, cell in enumerate(net.cells):
        for n, edge in enumerate(cell.nodes):
            for name, choice in edge.choices.items():

                def hook(module, inputs, output, key=(c, n, name)):
                    calls[key] = calls.get(key, 0) + 1

                choice.register_forward_hook(hook)
    net(torch.randn(1, 3, 8, 8))
    expected = {
        (c, n, edge_choice_name(e, op, j)): 1
        for c, cell in enumerate(net.cells)
        for n, node in enumerate(REPEATS.reduce if cell.reduction else REPEATS.normal)
        for e, (op, j) in enumerate(node)
    }
    assert calls == expected


def test_network_has_no_architecture_parameters_or_search_ops():
    net = NetworkCIFAR(REPEATS, C=4, num_classes=10, layers=3)
    # Derived cells use affine BatchNorms everywhere and bind no alpha.
    assert all(m.affine for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(
        edge.arch_param is None and not edge.with_arch_param
        for cell in net.cells
        for edge in cell.nodes
    )


# -- drop-path ----------------------------------------------------------------


def test_drop_path_is_identity_in_eval_mode():
    x = torch.randn(8, 3, 4, 4)
    assert torch.equal(drop_path(x, 0.5, training=False), x)


def test_drop_path_is_identity_in_training_with_zero_probability():
    x = torch.randn(8, 3, 4, 4)
    assert torch.equal(DropPath(0.0).train()(x), x)


def test_drop_path_zeroes_samples_and_scales_the_rest_by_one_over_keep_prob():
    x = torch.randn(64, 3, 4, 4)
    torch.manual_seed(0)
    out = drop_path(x, 0.3, training=True)
    torch.manual_seed(0)
    kept = torch.rand(64) < 0.7  # one Bernoulli(0.7) draw per sample
    expected = torch.where(kept.reshape(64, 1, 1, 1), x / 0.7, torch.zeros_like(x))
    assert 0 < int(kept.sum()) < 64  # the seed exercises both branches
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_drop_path_mask_is_per_sample_not_per_element():
    x = torch.ones(256, 2, 3, 3)
    torch.manual_seed(1)
    out = drop_path(x, 0.5, training=True)
    per_sample = out.flatten(1)
    assert set(per_sample.min(1).values.tolist()) == {0.0, 2.0}
    assert torch.equal(per_sample.min(1).values, per_sample.max(1).values)


def test_drop_path_prob_reaches_every_non_identity_op():
    net = NetworkCIFAR(REPEATS, C=4, num_classes=10, layers=3)
    net.drop_path_prob = 0.25
    for cell in net.cells:
        for edge in cell.nodes:
            for choice in edge.choices.values():
                if isinstance(choice, nn.Identity):
                    continue
                assert isinstance(choice[-1], DropPath) and choice[-1].p == 0.25


def test_identity_ops_get_no_drop_path():
    net = NetworkCIFAR(REPEATS, C=4, num_classes=10, layers=3)
    normal = net.cells[0]
    skip = normal.nodes[1].choices[edge_choice_name(0, "skip_connect", 1)]
    assert type(skip) is nn.Identity
    # In a reduction cell skip_connect from a cell input is a strided FactorizedReduce, which gets
    # drop-path.
    reduce = net.cells[1]
    strided = reduce.nodes[0].choices[edge_choice_name(1, "skip_connect", 1)]
    assert isinstance(strided[-1], DropPath)


def test_drop_path_prob_does_not_change_eval_outputs():
    net = NetworkCIFAR(DARTS_V2, C=4, num_classes=10, layers=3).eval()
    x = torch.randn(2, 3, 8, 8)
    before = net(x)
    net.drop_path_prob = 0.5
    assert torch.equal(net(x), before)


def test_drop_path_prob_changes_training_outputs():
    net = NetworkCIFAR(DARTS_V2, C=4, num_classes=10, layers=3).train()
    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(0)
    without = net(x)
    net.drop_path_prob = 0.5
    torch.manual_seed(0)
    assert not torch.allclose(net(x), without)


def test_drop_path_prob_of_one_is_rejected():
    net = NetworkCIFAR(DARTS_V2, C=4, num_classes=10, layers=3)
    with pytest.raises(ValueError, match=r"drop-path probability must be a number in \[0, 1\)"):
        net.drop_path_prob = 1.0


def test_drop_path_schedule_ramps_linearly_from_zero():
    # DARTS train.py: drop_path_prob * epoch / epochs, with the 0-based epoch.
    assert [drop_path_schedule(e, 600, 0.2) for e in (0, 300, 599)] == [
        0.0,
        0.2 * 300 / 600,
        0.2 * 599 / 600,
    ]


def test_drop_path_schedule_rejects_epoch_out_of_range():
    with pytest.raises(ValueError, match="epoch must be an int in 0..9"):
        drop_path_schedule(10, 10, 0.2)


# -- state dict ----------------------------------------------------------------


def test_reloaded_state_dict_gives_identical_eval_outputs():
    torch.manual_seed(0)
    net = NetworkCIFAR(REPEATS, C=4, num_classes=10, layers=3, auxiliary=False).train()
    net(torch.randn(4, 3, 8, 8))  # moves the BatchNorm running statistics away from their init
    torch.manual_seed(1)
    fresh = NetworkCIFAR(REPEATS, C=4, num_classes=10, layers=3, auxiliary=False)
    x = torch.randn(2, 3, 8, 8)
    assert not torch.equal(fresh.eval()(x), net.eval()(x))
    fresh.load_state_dict(net.state_dict())
    assert torch.equal(fresh.eval()(x), net.eval()(x))


# -- variable in-degree ------------------------------------------------------------


def test_variable_in_degree_genotype_builds_and_runs():
    net = NetworkCIFAR(VARIABLE, C=4, num_classes=10, layers=3).train()
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert [len(node.choices) for node in net.cells[0].nodes] == [1, 1, 3, 1]


def test_node_without_inputs_contributes_zeros_to_the_cell_output():
    net = NetworkCIFAR(VARIABLE, C=4, num_classes=10, layers=3).eval()
    outputs = []
    for cell in net.cells:
        cell.register_forward_hook(lambda m, i, out: outputs.append(out))
    net(torch.randn(2, 3, 8, 8))
    for cell, out in zip(net.cells, outputs):
        C = cell_channels(cell)
        assert NO_INPUT in cell.nodes[1].choices
        # Node 1 is state 3, the second of the concatenated states 2..5: channels C..2C.
        assert torch.count_nonzero(out[:, C : 2 * C]) == 0
        assert torch.count_nonzero(out[:, :C]) > 0


def test_node_without_inputs_has_no_parameters():
    with_zero = NetworkCIFAR(VARIABLE, C=4, num_classes=10, layers=3)
    assert all(num_params(cell.nodes[1]) == 0 for cell in with_zero.cells)


# -- bad input ----------------------------------------------------------------------


def test_unknown_op_in_genotype_is_rejected():
    bad = Genotype(
        normal=[[("conv_9x9", 0)]],
        normal_concat=[2],
        reduce=[[("skip_connect", 1)]],
        reduce_concat=[2],
    )
    with pytest.raises(GenotypeError, match="normal cell, node 0, edge 0: unknown op 'conv_9x9'"):
        NetworkCIFAR(bad, C=4, layers=3)


def test_input_index_out_of_range_is_rejected():
    bad = Genotype(
        normal=[[("skip_connect", 0)]],
        normal_concat=[2],
        reduce=[[("skip_connect", 2)]],
        reduce_concat=[2],
    )
    with pytest.raises(
        GenotypeError, match="reduce cell, node 0, edge 0: input index 2 out of range 0..1"
    ):
        NetworkCIFAR(bad, C=4, layers=3)


def test_node_count_other_than_steps_is_rejected():
    with pytest.raises(GenotypeError, match="normal cell has 4 nodes, expected steps=5"):
        NetworkCIFAR(DARTS_V2, C=4, layers=3, steps=5)


def test_genotype_must_be_a_genotype():
    with pytest.raises(ValueError, match="genotype must be a gradnas Genotype, got str"):
        NetworkCIFAR("DARTS_V2", C=4, layers=3)


def test_imagenet_needs_even_channels():
    with pytest.raises(ValueError, match="NetworkImageNet needs an even C"):
        NetworkImageNet(DARTS_V2, C=5, layers=3)
