"""Tests for PC-DARTS: the partial channel supernet, its derivation with edge
normalisation, and the warm-up of the search step."""

import copy
import math

import pytest
import torch
from torch import nn

from gradnas.algorithms.darts import Darts
from gradnas.algorithms.pcdarts import PCDarts
from gradnas.genotype import Genotype
from gradnas.mutables import DifferentiableEdge, DifferentiableOP
from gradnas.mutators import DartsMutator, deploy_subnet
from gradnas.spaces.darts import DartsSearchNetwork
from gradnas.spaces.darts.partial_channel import PartialChannelOp, channel_shuffle


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class Scale(nn.Module):
    """A parameter-free op ``x -> factor * x``, subsampled by ``stride``."""

    def __init__(self, factor: float, stride: int = 1) -> None:
        super().__init__()
        self.factor, self.stride = factor, stride

    def forward(self, x):
        return self.factor * x[:, :, :: self.stride, :: self.stride]


def fixed_op(factor: float, stride: int = 1) -> DifferentiableOP:
    # A single-choice mutable without alpha sums its one choice: exactly Scale.
    return DifferentiableOP({"scale": Scale(factor, stride)}, "op", with_arch_param=False)


# -- the supernet ---------------------------------------------------------------


def test_pc_supernet_has_the_published_number_of_weights():
    # PC-DARTS CIFAR-10 search log (C=16, 8 layers, K=4): "param size = 0.299578MB",
    # i.e. 299,578 weights (yuhuixu1993/PC-DARTS model_search.py builds the same network).
    torch.manual_seed(0)
    net = DartsSearchNetwork(
        C=16, layers=8, num_classes=10, in_channels=3, partial_channels=4, edge_alpha=True
    )
    assert num_params(net) == 299_578


def test_partial_channels_1_builds_the_plain_darts_supernet():
    torch.manual_seed(0)
    plain = DartsSearchNetwork(C=8, layers=3, steps=2, multiplier=2, in_channels=1, num_classes=3)
    torch.manual_seed(0)
    one = DartsSearchNetwork(
        C=8, layers=3, steps=2, multiplier=2, in_channels=1, num_classes=3, partial_channels=1
    )
    assert [(k, v.shape) for k, v in one.state_dict().items()] == [
        (k, v.shape) for k, v in plain.state_dict().items()
    ]
    assert not any(isinstance(m, PartialChannelOp) for m in one.modules())


def test_every_edge_choice_is_a_wrapper_around_a_mutable_op_for_c_over_k_channels():
    net = DartsSearchNetwork(
        C=8, layers=3, steps=2, multiplier=2, in_channels=1, num_classes=3, partial_channels=4
    )
    edges = [m for m in net.modules() if isinstance(m, DifferentiableEdge)]
    assert edges
    for edge in edges:
        for wrapper in edge.choices.values():
            assert isinstance(wrapper, PartialChannelOp) and isinstance(
                wrapper.op, DifferentiableOP
            )
    # normal cell: C=8 -> ops on 8/4 = 2 channels; the sep conv's first depthwise conv shows it.
    normal_op = net.cells[0].nodes[0].choices["input0"].op
    assert normal_op.choices["sep_conv_3x3"][0][1].weight.shape == (2, 1, 3, 3)


@pytest.mark.parametrize("bad", [0, -4, 2.0, True])
def test_partial_channels_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="partial_channels must be an int >= 1"):
        DartsSearchNetwork(C=8, layers=3, partial_channels=bad)


def test_c_must_be_a_multiple_of_partial_channels():
    with pytest.raises(ValueError, match=r"C \(6\) must be a multiple of partial_channels \(4\)"):
        DartsSearchNetwork(C=6, layers=3, partial_channels=4)


# -- the channel split --------------------------------------------------------------


def channel_coded_input(channels: int, size: int) -> torch.Tensor:
    """Channel c holds 100 * c + pixel index, so every value names its channel and pixel."""
    pixels = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size)
    return 100.0 * torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1) + pixels


def test_channel_shuffle_interleaves_the_groups():
    x = channel_coded_input(8, 1)
    # 4 groups of 2 channels [0 1 | 2 3 | 4 5 | 6 7] -> one from each group in turn.
    assert channel_shuffle(x, 4).flatten().tolist() == [100.0 * c for c in (0, 2, 4, 6, 1, 3, 5, 7)]


def test_stride_1_edge_sends_the_first_quarter_through_the_op_and_passes_the_rest():
    x = channel_coded_input(8, 4)
    out = PartialChannelOp(fixed_op(-1.0), k=4, stride=1)(x)
    # Before the shuffle: [-x0, -x1, x2, x3, x4, x5, x6, x7]; after it (4 groups of 2):
    expected = torch.cat(
        [-x[:, 0:1], x[:, 2:3], x[:, 4:5], x[:, 6:7], -x[:, 1:2], x[:, 3:4], x[:, 5:6], x[:, 7:8]],
        1,
    )
    assert torch.equal(out, expected)


def test_stride_2_edge_max_pools_the_bypassed_channels():
    x = channel_coded_input(8, 4)
    out = PartialChannelOp(fixed_op(-1.0, stride=2), k=4, stride=2)(x)

    # The op subsamples the pixels (0, 0), (0, 2), (2, 0), (2, 2); the 2x2 max-pool of
    # a channel keeps its pixels (1, 1), (1, 3), (3, 1), (3, 3), i.e. indices 5, 7, 13, 15.
    def op(c):
        return [-(100.0 * c + p) for p in (0, 2, 8, 10)]

    def pooled(c):
        return [100.0 * c + p for p in (5, 7, 13, 15)]

    expected = [op(0), pooled(2), pooled(4), pooled(6), op(1), pooled(3), pooled(5), pooled(7)]
    assert out.shape == (1, 8, 2, 2)
    assert out.view(8, 4).tolist() == expected


def test_stride_2_edge_on_an_odd_input_matches_the_strided_ops_size():
    x = torch.randn(1, 8, 5, 5)
    op = DifferentiableOP(
        {"pool": nn.MaxPool2d(3, stride=2, padding=1)}, "op", with_arch_param=False
    )
    assert PartialChannelOp(op, k=4, stride=2)(x).shape == (1, 8, 3, 3)


def test_pc_supernet_forward_and_backward_reach_every_weight_and_alpha():
    torch.manual_seed(0)
    net = DartsSearchNetwork(
        C=4,
        layers=3,
        steps=2,
        multiplier=2,
        in_channels=1,
        num_classes=3,
        partial_channels=2,
        edge_alpha=True,
    )
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    loss = net(torch.randn(2, 1, 4, 4)).logsumexp(1).sum()
    loss.backward()
    # 'none' and the pools carry no weights; everything else must get a gradient.
    assert all(p.grad is not None for p in net.parameters())
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in mutator.arch_parameters())


# -- derivation with edge normalisation ---------------------------------------------------

PRIMS = ("none", "skip_connect", "sep_conv_3x3", "max_pool_3x3")


def small_pc_network() -> tuple[DartsSearchNetwork, DartsMutator]:
    torch.manual_seed(0)
    net = DartsSearchNetwork(
        C=8,
        layers=3,
        steps=2,
        multiplier=2,
        in_channels=1,
        num_classes=3,
        primitives=PRIMS,
        partial_channels=4,
        edge_alpha=True,
    )
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    return net, mutator


def set_probs(mutator: DartsMutator, space_id: str, probs) -> None:
    # softmax(log p) = p when p sums to 1, so the probabilities are set exactly.
    with torch.no_grad():
        mutator.arch_params[space_id].copy_(torch.tensor(probs).log())


def hand_set_alphas(mutator: DartsMutator) -> None:
    for cell in ("normal", "reduce"):
        for space_id in mutator.arch_params:
            if space_id.startswith(cell):
                n = mutator.arch_params[space_id].numel()
                set_probs(mutator, space_id, [1.0 / n] * n)
    #                                   none  skip  sep3  max3
    set_probs(mutator, "normal_node0_input0", [0.1, 0.2, 0.6, 0.1])
    set_probs(mutator, "normal_node0_input1", [0.1, 0.5, 0.2, 0.2])
    set_probs(mutator, "normal_node0", [0.5, 0.5])
    set_probs(mutator, "normal_node1_input0", [0.1, 0.1, 0.6, 0.2])
    set_probs(mutator, "normal_node1_input1", [0.1, 0.5, 0.2, 0.2])
    set_probs(mutator, "normal_node1_input2", [0.7, 0.05, 0.1, 0.15])
    set_probs(mutator, "normal_node1", [0.1, 0.45, 0.45])
    set_probs(mutator, "reduce_node0_input0", [0.1, 0.1, 0.2, 0.6])
    set_probs(mutator, "reduce_node0_input1", [0.1, 0.3, 0.3, 0.3])
    set_probs(mutator, "reduce_node0", [0.2, 0.8])
    set_probs(mutator, "reduce_node1_input0", [0.4, 0.3, 0.2, 0.1])
    set_probs(mutator, "reduce_node1_input1", [0.25, 0.25, 0.25, 0.25])
    set_probs(mutator, "reduce_node1_input2", [0.1, 0.8, 0.05, 0.05])
    set_probs(mutator, "reduce_node1", [0.6, 0.3, 0.1])


def test_derivation_multiplies_op_weights_by_the_edge_softmax():
    net, mutator = small_pc_network()
    hand_set_alphas(mutator)
    # Worked by hand, strength = best non-none op weight x edge weight:
    # normal node0: in0 sep3 0.6*0.5=0.30, in1 skip 0.5*0.5=0.25 -> in0, in1.
    # normal node1: in0 sep3 0.6*0.1=0.06, in1 skip 0.5*0.45=0.225, in2 max3 (none ignored)
    #   0.15*0.45=0.0675 -> in1, in2 (without the edge weights it would be in0, in1).
    # reduce node0: in0 max3 0.6*0.2=0.12, in1 skip (first of the ties) 0.3*0.8=0.24 -> in1, in0.
    # reduce node1: in0 skip 0.3*0.6=0.18, in1 skip 0.25*0.3=0.075, in2 skip 0.8*0.1=0.08 -> in0,
    # in2.
    expected = Genotype(
        normal=[
            [("sep_conv_3x3", 0), ("skip_connect", 1)],
            [("skip_connect", 1), ("max_pool_3x3", 2)],
        ],
        normal_concat=[2, 3],
        reduce=[
            [("skip_connect", 1), ("max_pool_3x3", 0)],
            [("skip_connect", 0), ("skip_connect", 2)],
        ],
        reduce_concat=[2, 3],
    )
    assert net.to_genotype(mutator.search_subnet()) == expected


def test_derived_pc_supernet_deploys_and_runs():
    net, mutator = small_pc_network()
    hand_set_alphas(mutator)
    deploy_subnet(net, mutator.search_subnet())
    op = net.cells[0].nodes[1].choices["input2"].op
    assert op.choice_names == ["max_pool_3x3"]
    assert net(torch.randn(2, 1, 4, 4)).shape == (2, 3)


# -- the search step ---------------------------------------------------------------


def tiny_setup(warmup_epochs: int):
    torch.manual_seed(0)
    net = DartsSearchNetwork(
        C=4,
        layers=3,
        steps=1,
        multiplier=1,
        in_channels=1,
        num_classes=3,
        partial_channels=2,
        edge_alpha=True,
    )
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    w_opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(
        mutator.arch_parameters(), lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3
    )
    return net, mutator, PCDarts(net, mutator, w_opt, a_opt, warmup_epochs=warmup_epochs)


def batch(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(4, 1, 4, 4, generator=gen), torch.randint(0, 3, (4,), generator=gen)


def snapshot(params):
    return [p.detach().clone() for p in params]


def changed(before, params) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, params))


def test_alphas_stay_frozen_during_warmup_while_weights_train():
    net, mutator, algo = tiny_setup(warmup_epochs=1)
    alphas, weights = snapshot(mutator.arch_parameters()), snapshot(net.parameters())
    algo.on_epoch_start(0, 2)
    metrics = algo.step(batch(0), batch(1))
    assert not changed(alphas, mutator.arch_parameters())
    assert changed(weights, net.parameters())
    assert set(metrics) == {"train_loss", "train_acc"}


def test_alphas_change_after_warmup():
    _net, mutator, algo = tiny_setup(warmup_epochs=1)
    algo.on_epoch_start(1, 2)
    alphas = snapshot(mutator.arch_parameters())
    metrics = algo.step(batch(0), batch(1))
    assert changed(alphas, mutator.arch_parameters())
    assert {"val_loss", "val_acc"} <= set(metrics)


def test_after_warmup_the_step_is_first_order_darts():
    net, mutator, algo = tiny_setup(warmup_epochs=1)
    net2, mutator2 = copy.deepcopy((net, mutator))
    darts = Darts(
        net2,
        mutator2,
        torch.optim.SGD(net2.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4),
        torch.optim.Adam(
            mutator2.arch_parameters(), lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3
        ),
    )
    algo.on_epoch_start(1, 2)
    algo.step(batch(0), batch(1))
    darts.step(batch(0), batch(1))
    for a, b in zip(mutator.arch_parameters(), mutator2.arch_parameters()):
        assert torch.allclose(a, b, atol=1e-7)


def test_state_dict_keeps_the_epoch():
    _, _, algo = tiny_setup(warmup_epochs=1)
    algo.on_epoch_start(1, 3)
    _, _, restored = tiny_setup(warmup_epochs=1)
    restored.load_state_dict(algo.state_dict())
    assert restored.epoch == 1 and not restored.in_warmup


def test_load_state_dict_rejects_unknown_keys():
    _, _, algo = tiny_setup(warmup_epochs=1)
    with pytest.raises(ValueError, match="exactly the key 'epoch'"):
        algo.load_state_dict({"epoch": 1, "tau": 0.5})


@pytest.mark.parametrize("bad", [-1, 1.5, None])
def test_warmup_epochs_must_be_a_non_negative_int(bad):
    net, mutator, _ = tiny_setup(warmup_epochs=0)
    with pytest.raises(ValueError, match="warmup_epochs must be an int >= 0"):
        PCDarts(
            net,
            mutator,
            torch.optim.SGD(net.parameters(), lr=0.1),
            torch.optim.Adam(mutator.arch_parameters()),
            warmup_epochs=bad,
        )


def test_warmup_covering_the_whole_search_is_an_error():
    _, _, algo = tiny_setup(warmup_epochs=15)
    with pytest.raises(ValueError, match="leaves no architecture epoch in a 10-epoch search"):
        algo.on_epoch_start(0, 10)


def test_default_warmup_is_the_published_15_epochs():
    net, mutator, _ = tiny_setup(warmup_epochs=0)
    algo = PCDarts(
        net,
        mutator,
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.Adam(mutator.arch_parameters()),
    )
    # PC-DARTS train_search.py: architect.step only "if epoch >= 15" (of 50 epochs).
    assert algo.warmup_epochs == 15
    assert not math.isnan(algo.step(batch(0), batch(1))["train_loss"])
