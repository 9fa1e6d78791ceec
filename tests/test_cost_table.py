"""The cost table: per-choice MACs and weights measured at the shapes a supernet gives them."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from torch import nn

from gradnas.cost import build_cost_table
from gradnas.genotype import DARTS_V2, Genotype
from gradnas.inspect import count_macs, count_parameters
from gradnas.mutables import DifferentiableEdge, DifferentiableOP, GumbelOP
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import DartsSearchNetwork
from gradnas.spaces.darts.network import NetworkCIFAR
from gradnas.spaces.darts.search_network import edge_space_id, op_space_id


def genotype_subnet(genotype: Genotype) -> dict[str, dict[str, list[str]]]:
    """The subnet of the DARTS search network that a genotype names."""
    subnet: dict[str, dict[str, list[str]]] = {}
    for cell_type, spec in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        for i, node in enumerate(spec):
            subnet[edge_space_id(cell_type, i)] = {"chosen": [f"input{j}" for _, j in node]}
            for op, j in node:
                subnet[op_space_id(cell_type, i, j)] = {"chosen": [op]}
    return subnet


def test_darts_v2_adds_up_to_its_published_size_macs():
    """DARTS_V2's ops from the DARTS space's cost table plus the fixed parts
    (stem, cell preprocessing, classifier) are the 528,359,040 MACs that
    ``gradnas inspect`` measures on the derived NetworkCIFAR (C=36, 20 cells,
    32x32; tests/test_inspect.py pins that figure).

    The search supernet of a run is smaller (C=16, 8 cells), and a choice's
    MACs depend on the channels and resolution it sees, so the table is built
    on a supernet of the derived network's size: same C, cells, stem and
    classifier as NetworkCIFAR, every op on every edge. Its ops are the search
    variants (affine-free BatchNorms, a BatchNorm after pools), which differ
    from the derived ones only in normalisation parameters, never in MACs.
    """
    supernet = DartsSearchNetwork(C=36, layers=20, in_channels=3, num_classes=10)
    table = build_cost_table(supernet, (3, 32, 32))
    subnet = genotype_subnet(DARTS_V2)
    assert table.subnet_cost(subnet, "macs") == 528_359_040
    # Weights: the derived network's (3,349,342 without the auxiliary head, DARTS'
    # published count) less the affine BatchNorm parameters of its cells, which
    # the affine-free search ops do not have.
    derived = NetworkCIFAR(DARTS_V2, C=36, num_classes=10, layers=20, auxiliary=False)
    affine = sum(
        p.numel()
        for cell in derived.cells
        for m in cell.modules()
        if isinstance(m, nn.BatchNorm2d)
        for p in m.parameters()
    )
    assert count_parameters(derived) == 3_349_342
    assert table.subnet_cost(subnet, "weights") == 3_349_342 - affine


def small_supernet() -> DartsSearchNetwork:
    return DartsSearchNetwork(C=4, layers=3, steps=2, multiplier=2, in_channels=1)


def test_a_choice_costs_what_its_op_costs_alone_at_the_cell_size():
    """normal_node0_input1's sep_conv_3x3 in the one normal cell of a 3-cell
    supernet on 8x8 inputs sees C=4 channels at 8x8: its MACs are those of the
    op module run alone on that shape, by an independent count."""
    supernet = small_supernet()
    table = build_cost_table(supernet, (1, 8, 8))
    cell = supernet.cells[0]
    op = cell.nodes[0].choices["input1"]
    expected = count_macs(op.choices["sep_conv_3x3"], (4, 8, 8))
    assert table.decisions["normal_node0_input1"].choices["sep_conv_3x3"].macs == expected
    assert expected > 0
    weights = sum(p.numel() for p in op.choices["sep_conv_3x3"].parameters())
    assert table.decisions["normal_node0_input1"].choices["sep_conv_3x3"].weights == weights


def test_a_shared_decision_sums_its_members_at_their_own_shapes():
    """Reduction cells 1 and 2 of a 3-cell supernet share reduce_* decisions at
    different channels and resolutions; the table sums both."""
    supernet = small_supernet()
    table = build_cost_table(supernet, (1, 8, 8))
    # cell 1 reduces 8x8 -> 4x4 at C=8; cell 2 reduces 4x4 -> 2x2 at C=16
    ops = [supernet.cells[k].nodes[0].choices["input0"] for k in (1, 2)]
    shapes = [(8, 8, 8), (16, 4, 4)]
    expected = sum(count_macs(op.choices["sep_conv_3x3"], s) for op, s in zip(ops, shapes))
    decision = table.decisions["reduce_node0_input0"]
    assert decision.members == 2
    assert decision.choices["sep_conv_3x3"].macs == expected


def test_fixed_part_and_every_choice_add_up_to_the_whole_supernet():
    """Every weight of the supernet is either fixed or in exactly one choice."""
    supernet = small_supernet()
    table = build_cost_table(supernet, (1, 8, 8))
    in_choices = sum(c.weights for d in table.decisions.values() for c in d.choices.values())
    assert table.fixed.weights + in_choices == sum(p.numel() for p in supernet.parameters())
    stem_and_classifier = sum(
        p.numel() for m in (supernet.stem, supernet.classifier) for p in m.parameters()
    )
    assert table.fixed.weights > stem_and_classifier  # plus the cells' preprocessing


def test_a_users_space_and_its_nesting():
    """An edge whose choices are mixed ops costs nothing itself; the ops carry the cost."""
    op = DifferentiableOP({"conv": nn.Conv2d(2, 2, 3, padding=1), "skip": nn.Identity()}, "op")
    edge = DifferentiableEdge({"a": op, "b": nn.Identity()}, "edge", with_arch_param=True)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 2, 1)
            self.edge = edge

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = self.stem(x)
            out: torch.Tensor = self.edge([s, s])
            return out

    net = Net()
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    table = build_cost_table(net, (1, 5, 5))
    assert table.decisions["op"].choices["conv"].macs == 2 * 2 * 9 * 25
    assert table.decisions["op"].choices["conv"].weights == 2 * 2 * 9 + 2
    assert table.decisions["edge"].choices["a"].macs == 0
    assert table.decisions["edge"].nested == {"a": ("op",)}
    assert table.top_level == ("edge",)
    assert table.fixed.macs == 2 * 25 and table.fixed.weights == 4
    assert net.edge.arch_param is mutator.arch_params["edge"]  # bindings left as they were
    assert table.subnet_cost({"edge": {"chosen": ["a"]}, "op": {"chosen": ["conv"]}}, "macs") == (
        2 * 25 + 2 * 2 * 9 * 25
    )
    assert table.subnet_cost({"edge": {"chosen": ["b"]}}, "macs") == 2 * 25


def test_latency_is_measured_when_asked():
    supernet = small_supernet()
    table = build_cost_table(supernet, (1, 8, 8), latency=True, warmup=1, repeats=3, batch_size=2)
    cost = table.decisions["normal_node0_input0"].choices["sep_conv_3x3"]
    assert cost.latency_ms is not None and cost.latency_ms > 0
    assert table.decisions["normal_node0_input0"].choices["none"].macs == 0
    without = build_cost_table(supernet, (1, 8, 8))
    with pytest.raises(ValueError, match="latency was not measured"):
        without.fixed.get("latency")
    assert without.fixed.macs == table.fixed.macs  # MACs per example whatever the batch


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="holds no mutable"):
        build_cost_table(nn.Conv2d(1, 1, 1), (1, 4, 4))
    with pytest.raises(ValueError, match="input_shape"):
        build_cost_table(small_supernet(), (1, 0, 8))
    table = build_cost_table(small_supernet(), (1, 8, 8))
    with pytest.raises(ValueError, match="metric must be one of"):
        table.fixed.get("flops")
    with pytest.raises(ValueError, match="no 'chosen' entry for decision"):
        table.subnet_cost({}, "macs")


def test_an_edge_choice_is_measured_on_its_own_input():
    """Choice i of an edge runs on input i: the same conv costs 4x on the
    input of twice the resolution."""
    edge = DifferentiableEdge(
        {"big": nn.Conv2d(2, 3, 1), "small": nn.Sequential(nn.Conv2d(2, 3, 1), nn.Upsample(8))},
        "edge",
        with_arch_param=True,
    )

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.edge = edge

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.edge([x, x[:, :, ::2, ::2]])  # (N, 2, 8, 8), (N, 2, 4, 4)
            return out

    table = build_cost_table(Net(), (2, 8, 8))
    assert table.decisions["edge"].choices["big"].macs == 2 * 3 * 64
    assert table.decisions["edge"].choices["small"].macs == 2 * 3 * 16


def test_partial_channels_and_sampling_mutables_are_costed_like_darts():
    """PC-DARTS' edge choice wraps the mixed op in a PartialChannelOp: the wrapper
    costs nothing itself, the op is costed at the C / K channels it sees, and
    the fixed part is that of the plain supernet; hard Gumbel ops (GDAS),
    which run one sampled choice, cost each choice as DARTS' ops do."""
    plain = build_cost_table(DartsSearchNetwork(C=8, layers=3, in_channels=1), (1, 8, 8))
    pc_net = DartsSearchNetwork(C=8, layers=3, in_channels=1, partial_channels=2, edge_alpha=True)
    pc = build_cost_table(pc_net, (1, 8, 8))
    assert pc.fixed == plain.fixed
    assert {c.macs for c in pc.decisions["normal_node1"].choices.values()} == {0}
    assert pc.decisions["normal_node1"].nested["input2"] == ("normal_node1_input2",)
    op = pc_net.cells[0].nodes[0].choices["input0"].op
    assert pc.decisions["normal_node0_input0"].choices["sep_conv_3x3"].macs == count_macs(
        op.choices["sep_conv_3x3"], (4, 8, 8)
    )
    gdas_net = DartsSearchNetwork(
        C=8, layers=3, in_channels=1, op_mutable=functools.partial(GumbelOP, tau=10.0, hard=True)
    )
    gdas = build_cost_table(gdas_net, (1, 8, 8))
    assert gdas.fixed == plain.fixed
    assert gdas.decisions == plain.decisions


def test_the_table_as_json():
    table = build_cost_table(small_supernet(), (1, 8, 8))
    data = json.loads(json.dumps(table.to_dict()))
    assert data["input_shape"] == [1, 8, 8]
    assert data["fixed"]["macs"] == table.fixed.macs
    sep = data["decisions"]["reduce_node1_input2"]["sep_conv_3x3"]
    assert sep["weights"] == table.decisions["reduce_node1_input2"].choices["sep_conv_3x3"].weights
    assert sep["latency_ms"] is None
