"""Tests for the NAS-Bench-201 space: op table, cell, supernet, derivation, arch strings, fixed network."""

import functools
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradnas.mutables import DifferentiableOP, GumbelOP, MutableModule
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts.ops import Zero
from gradnas.spaces.nb201.arch import NB201Arch
from gradnas.spaces.nb201.cell import EDGES, NB201Cell, edge_space_id
from gradnas.spaces.nb201.networks import NB201Network, NB201SearchNetwork, ResidualReduction
from gradnas.spaces.nb201.ops import NB201_PRIMITIVES, ReLUConvBN, build_op

# The example of the brief / the benchmark's notation: node 1 <- 0; node 2 <- 0, 1; node 3 <- 0, 1,
# 2.
EXAMPLE = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"
EXAMPLE_OPS = (
    "nor_conv_3x3",
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "avg_pool_3x3",
    "nor_conv_3x3",
)


def all_edges(op: str) -> str:
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def prepared(net: nn.Module) -> DartsMutator:
    mutator = DartsMutator(ignore_choices=())
    mutator.prepare_from_supernet(net)
    return mutator


# -- independent parameter formulas ---------------------------------------------


def skeleton_params(C: int, num_classes: int, in_channels: int = 3) -> int:
    """Weights outside the cells, counted by hand from the benchmark's layer list."""
    stem = 9 * in_channels * C + 2 * C  # 3x3 conv, affine BN

    def reduction(c_in: int, c_out: int) -> int:
        # conv_a, conv_b, 1x1
        return 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out + c_in * c_out

    head = 2 * 4 * C + 4 * C * num_classes + num_classes  # affine BN, linear
    return stem + reduction(C, 2 * C) + reduction(2 * C, 4 * C) + head


def op_params(op: str, c: int, affine: bool) -> int:
    bn = 2 * c if affine else 0
    return {"nor_conv_1x1": c * c + bn, "nor_conv_3x3": 9 * c * c + bn}.get(op, 0)


# -- op table --------------------------------------------------------------------


def test_primitives_are_the_benchmarks_five_ops_in_its_order():
    # AutoDL-Projects lib/models/cell_operations.py, NAS_BENCH_201.
    assert NB201_PRIMITIVES == (
        "none",
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
    )


def test_avg_pool_does_not_count_padding():
    # count_include_pad=False: a constant map stays constant at the borders too (with padding
    # counted a
    # corner would be 4/9 of it).
    op = build_op("avg_pool_3x3", 2, affine=False)
    out = op(torch.ones(1, 2, 5, 5))
    assert out.shape == (1, 2, 5, 5)
    assert torch.allclose(out, torch.ones_like(out))


def test_avg_pool_has_no_batchnorm():
    assert not any(
        isinstance(m, nn.BatchNorm2d) for m in build_op("avg_pool_3x3", 4, affine=False).modules()
    )


@pytest.mark.parametrize("name,kernel", [("nor_conv_1x1", 1), ("nor_conv_3x3", 3)])
def test_conv_op_is_relu_conv_bn(name, kernel):
    torch.manual_seed(0)
    op = build_op(name, 3, affine=False)
    x = torch.randn(2, 3, 6, 6)
    conv = next(m for m in op.modules() if isinstance(m, nn.Conv2d))
    expected = F.batch_norm(
        F.conv2d(F.relu(x), conv.weight, padding=kernel // 2), None, None, training=True
    )
    assert conv.weight.shape == (3, 3, kernel, kernel) and conv.bias is None
    assert torch.allclose(op(x), expected, atol=1e-5)


def test_none_op_outputs_zeros_of_the_input_shape():
    out = build_op("none", 3, affine=True)(torch.randn(2, 3, 4, 4))
    assert out.shape == (2, 3, 4, 4) and torch.count_nonzero(out) == 0


def test_skip_connect_is_identity():
    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(build_op("skip_connect", 3, affine=True)(x), x)


def test_build_op_names_an_unknown_op():
    with pytest.raises(ValueError, match="unknown NAS-Bench-201 op 'sep_conv_3x3'"):
        build_op("sep_conv_3x3", 4, affine=True)


def test_search_ops_are_affine_free_and_track_stats():
    # NAS201SearchCell defaults (affine=False, track_running_stats=True), as the documented search
    # commands use.
    net = NB201SearchNetwork(C=4, N=1)
    bns = [
        m
        for cell in net.cells
        if isinstance(cell, NB201Cell)
        for m in cell.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    assert bns and all(not bn.affine and bn.track_running_stats for bn in bns)


def test_fixed_network_ops_are_affine():
    net = NB201Network(all_edges("nor_conv_3x3"), C=4, N=1)
    bns = [
        m
        for cell in net.cells
        if isinstance(cell, NB201Cell)
        for m in cell.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    assert len(bns) == 3 * 6 and all(bn.affine and bn.track_running_stats for bn in bns)


# -- the cell ----------------------------------------------------------------------


def test_cell_sums_incoming_edges_node_by_node():
    # Edges that scale by distinct constants make the cell a polynomial we can write down.
    scale = {(1, 0): 2.0, (2, 0): 3.0, (2, 1): 5.0, (3, 0): 7.0, (3, 1): 11.0, (3, 2): 13.0}

    class Scale(nn.Module):
        def __init__(self, s: float) -> None:
            super().__init__()
            self.s = s

        def forward(self, x):
            return self.s * x

    cell = NB201Cell(lambda i, j: Scale(scale[(i, j)]))
    n1 = 2.0
    n2 = 3.0 + 5.0 * n1
    n3 = 7.0 + 11.0 * n1 + 13.0 * n2
    x = torch.randn(1, 1, 2, 2)
    assert torch.allclose(cell(x), n3 * x)


# -- the supernet -----------------------------------------------------------------


def test_supernet_forward_backward_gives_every_weight_and_alpha_a_gradient():
    torch.manual_seed(0)
    net = NB201SearchNetwork(C=4, N=1, num_classes=10)
    mutator = prepared(net)
    logits = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    F.cross_entropy(logits, torch.tensor([1, 7])).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    for space_id, alpha in mutator.arch_params.items():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, space_id


def test_supernet_has_30_alphas_in_6_decisions():
    net = NB201SearchNetwork(C=4, N=1)
    mutator = prepared(net)
    assert set(mutator.arch_params.keys()) == {f"edge_{i}_{j}" for i, j in EDGES}
    assert all(alpha.shape == (5,) for alpha in mutator.arch_parameters())
    assert sum(alpha.numel() for alpha in mutator.arch_parameters()) == 30


def test_every_cell_shares_one_alpha_per_edge():
    net = NB201SearchNetwork(C=4, N=2)
    mutator = prepared(net)
    cells = [cell for cell in net.cells if isinstance(cell, NB201Cell)]
    assert len(cells) == 3 * 2
    for i, j in EDGES:
        alpha = mutator.arch_params[edge_space_id(i, j)]
        assert all(cell.edge(i, j).arch_param is alpha for cell in cells)


def test_supernet_parameters_hold_no_alpha():
    net = NB201SearchNetwork(C=4, N=1)
    mutator = prepared(net)
    weights = {id(p) for p in net.parameters()}
    assert not weights & {id(a) for a in mutator.arch_parameters()}


def test_supernet_weight_count_matches_the_layer_formula():
    # Per cell, 6 edges each with an affine-free 1x1 and 3x3 conv: 6 * 10 c^2 weights.
    C, N = 16, 5
    cells = N * sum(
        6 * (op_params("nor_conv_1x1", c, False) + op_params("nor_conv_3x3", c, False))
        for c in (C, 2 * C, 4 * C)
    )
    assert num_params(NB201SearchNetwork(C=C, N=N)) == skeleton_params(C, 10) + cells


def test_supernet_edges_are_built_by_the_op_mutable_factory():
    torch.manual_seed(0)
    net = NB201SearchNetwork(C=4, N=1, op_mutable=functools.partial(GumbelOP, tau=1.0, hard=True))
    prepared(net)
    mutables = [m for m in net.modules() if isinstance(m, MutableModule)]
    assert len(mutables) == 3 * 6 and all(isinstance(m, GumbelOP) for m in mutables)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_supernet_edge_mutables_offer_the_five_ops():
    net = NB201SearchNetwork(C=4, N=1)
    cell = net.cells[0]
    assert isinstance(cell.edge(3, 1), DifferentiableOP)
    assert cell.edge(3, 1).full_choice_names == NB201_PRIMITIVES


# -- derivation -------------------------------------------------------------------


def test_derivation_keeps_none_where_it_is_strongest():
    net = NB201SearchNetwork(C=4, N=1)
    mutator = prepared(net)
    wanted = dict(
        zip(EDGES, ("nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "avg_pool_3x3", "none"))
    )
    with torch.no_grad():
        for (i, j), op in wanted.items():
            alpha = mutator.arch_params[edge_space_id(i, j)]
            alpha.zero_()
            alpha[NB201_PRIMITIVES.index(op)] = 1.0
    arch = net.to_arch(mutator.search_subnet())
    assert arch.op(2, 1) == "none" and arch.op(3, 2) == "none"
    assert arch == NB201Arch(tuple(wanted[e] for e in EDGES))


def test_to_arch_names_a_missing_edge():
    net = NB201SearchNetwork(C=4, N=1)
    subnet = prepared(net).search_subnet()
    del subnet["edge_3_1"]
    with pytest.raises(ValueError, match="edge_3_1"):
        net.to_arch(subnet)


def test_to_arch_rejects_an_edge_with_two_ops():
    net = NB201SearchNetwork(C=4, N=1)
    subnet = prepared(net).search_subnet()
    subnet["edge_1_0"] = {"chosen": ["none", "skip_connect"]}
    with pytest.raises(ValueError, match="exactly one op"):
        net.to_arch(subnet)


# -- the arch value ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        EXAMPLE,
        all_edges("none"),
        all_edges("nor_conv_3x3"),
        # the benchmark's ResNet
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|none~2|",
    ],
)
def test_arch_string_round_trips(text):
    assert str(NB201Arch.parse(text)) == text


def test_parse_reads_ops_edge_by_edge():
    arch = NB201Arch.parse(EXAMPLE)
    assert arch.ops == EXAMPLE_OPS
    assert [(i, j, op) for i, j, op in arch.edges()] == [
        (i, j, op) for (i, j), op in zip(EDGES, EXAMPLE_OPS)
    ]
    assert arch.nodes == (
        (("nor_conv_3x3", 0),),
        (("none", 0), ("skip_connect", 1)),
        (("nor_conv_1x1", 0), ("avg_pool_3x3", 1), ("nor_conv_3x3", 2)),
    )


def test_parse_accepts_inputs_in_any_order_and_writes_them_by_source():
    shuffled = (
        "|nor_conv_3x3~0|+|skip_connect~1|none~0|+|nor_conv_3x3~2|nor_conv_1x1~0|avg_pool_3x3~1|"
    )
    assert str(NB201Arch.parse(shuffled)) == EXAMPLE


def test_arch_dict_and_json_round_trip():
    arch = NB201Arch.parse(EXAMPLE)
    d = json.loads(json.dumps(arch.to_dict()))
    assert d == {
        "nodes": [
            [["nor_conv_3x3", 0]],
            [["none", 0], ["skip_connect", 1]],
            [["nor_conv_1x1", 0], ["avg_pool_3x3", 1], ["nor_conv_3x3", 2]],
        ]
    }
    assert NB201Arch.from_dict(d) == arch
    assert NB201Arch.from_json(arch.to_json()) == arch


def test_arch_is_immutable_and_hashable():
    arch = NB201Arch.parse(EXAMPLE)
    with pytest.raises(AttributeError):
        arch.ops = EXAMPLE_OPS
    assert len({arch, NB201Arch(list(EXAMPLE_OPS))}) == 1


@pytest.mark.parametrize(
    "text,message",
    [
        (EXAMPLE.replace("avg_pool_3x3", "max_pool_3x3"), "node 3: unknown op 'max_pool_3x3'"),
        ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", "3 nodes joined by '\\+', got 2"),
        (EXAMPLE + "+|none~0|", "3 nodes joined by '\\+', got 4"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs exactly 2 input"),
        (
            "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|none~2|",
            "node 3 needs exactly 3 input",
        ),
        (
            "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
            "node 1: source 1 is not an earlier node",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|none~2|+|none~0|none~1|none~2|",
            "node 2: source 2 is not an earlier node",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|none~0|+|none~0|none~1|none~2|",
            "node 2: source 0 appears more than once",
        ),
        (
            "|nor_conv_3x3~0|+|none~0|none1|+|none~0|none~1|none~2|",
            "input 'none1' must be op~source",
        ),
        (
            "|nor_conv_3x3~a|+|none~0|none~1|+|none~0|none~1|none~2|",
            "input 'nor_conv_3x3~a' must be op~source",
        ),
        (
            "nor_conv_3x3~0+|none~0|none~1|+|none~0|none~1|none~2|",
            "must be written \\|op~source\\|",
        ),
        ("", "3 nodes joined by"),
    ],
)
def test_parse_names_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        NB201Arch.parse(text)


def test_parse_rejects_a_non_string():
    with pytest.raises(ValueError, match="must be a str"):
        NB201Arch.parse(["nor_conv_3x3"])


def test_arch_needs_six_known_ops():
    with pytest.raises(ValueError, match="needs 6 ops"):
        NB201Arch(EXAMPLE_OPS[:5])
    with pytest.raises(ValueError, match="edge 1->3: unknown op 'conv'"):
        NB201Arch((*EXAMPLE_OPS[:4], "conv", "none"))


def test_from_dict_names_unknown_and_missing_keys():
    with pytest.raises(ValueError, match="unknown key\\(s\\) normal"):
        NB201Arch.from_dict({"nodes": [], "normal": []})
    with pytest.raises(ValueError, match="needs the key 'nodes'"):
        NB201Arch.from_dict({})
    with pytest.raises(ValueError, match="invalid NAS-Bench-201 arch JSON"):
        NB201Arch.from_json("{nodes")


def test_op_names_a_missing_edge():
    with pytest.raises(ValueError, match="no edge 3->1"):
        NB201Arch.parse(EXAMPLE).op(1, 3)


# -- the fixed network ------------------------------------------------------------


def op_kind(module: nn.Module) -> str:
    """Which benchmark op a built module is, recognised from its layers, not from the table."""
    if isinstance(module, Zero):
        return "none"
    if isinstance(module, nn.Identity):
        return "skip_connect"
    if isinstance(module, nn.AvgPool2d):
        return "avg_pool_3x3"
    if isinstance(module, ReLUConvBN):
        return f"nor_conv_{module[1].kernel_size[0]}x{module[1].kernel_size[1]}"
    raise AssertionError(f"unexpected edge module {module}")


def test_fixed_network_computes_exactly_the_archs_ops():
    torch.manual_seed(0)
    arch = NB201Arch.parse(EXAMPLE)
    net = NB201Network(arch, C=4, N=2)
    ran: list[tuple[int, str]] = []
    cells = [cell for cell in net.cells if isinstance(cell, NB201Cell)]
    for c, cell in enumerate(cells):
        for module in cell.edges.values():
            module.register_forward_hook(lambda m, args, out, c=c: ran.append((c, op_kind(m))))
    net(torch.randn(2, 3, 16, 16))
    assert ran == [(c, op) for c in range(len(cells)) for op in EXAMPLE_OPS]
    convs_in_cells = sum(isinstance(m, nn.Conv2d) for cell in cells for m in cell.modules())
    assert convs_in_cells == 3 * len(cells)  # two 3x3 and one 1x1 edge per cell, nothing else


def test_none_edges_add_zeros():
    torch.manual_seed(0)
    arch = NB201Arch.parse(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"
    )
    cell = NB201Network(arch, C=3, N=1).cells[0]
    zero_outputs = []
    for i, j in [(2, 1), (3, 0)]:
        cell.edge(i, j).register_forward_hook(lambda m, args, out: zero_outputs.append(out))
    x = torch.randn(2, 3, 5, 5)
    n1 = cell.edge(1, 0)(x)
    n2 = cell.edge(2, 0)(x)  # + nothing from node 1
    n3 = cell.edge(3, 1)(n1) + cell.edge(3, 2)(n2)  # + nothing from node 0
    out = cell(x)
    assert len(zero_outputs) == 2 and all(torch.count_nonzero(z) == 0 for z in zero_outputs)
    assert torch.allclose(out, n3, atol=1e-6)


@pytest.mark.parametrize(
    "op,num_classes,published",
    [
        # NAS-Bench-201's benchmark data (NAS-Bench-201-v1_1-096897, field `params`, in millions,
        # C=16, N=5):
        # the largest network is all nor_conv_3x3, the smallest has weight-free cells.
        ("nor_conv_3x3", 10, 1.531546),  # cifar10(-valid)
        ("nor_conv_3x3", 100, 1.537396),  # cifar100
        ("nor_conv_3x3", 120, 1.538696),  # ImageNet16-120
        ("skip_connect", 10, 0.073306),
        ("none", 100, 0.079156),
    ],
)
def test_fixed_network_has_the_benchmarks_parameter_count(op, num_classes, published):
    net = NB201Network(all_edges(op), C=16, N=5, num_classes=num_classes)
    assert num_params(net) == round(published * 1e6)


def test_fixed_network_parameter_count_matches_the_layer_formula():
    C, N, classes = 8, 2, 7
    arch = NB201Arch.parse(EXAMPLE)
    cells = N * sum(op_params(op, c, affine=True) for c in (C, 2 * C, 4 * C) for op in arch.ops)
    net = NB201Network(arch, C=C, N=N, num_classes=classes, in_channels=1)
    assert num_params(net) == skeleton_params(C, classes, in_channels=1) + cells


def test_digits_input_is_reduced_only_by_the_two_residual_blocks():
    # An 8x8 digit: stage 1 sees 8x8, stage 2 4x4, stage 3 2x2.
    torch.manual_seed(0)
    net = NB201Network(EXAMPLE, C=4, N=1, num_classes=10, in_channels=1)
    seen = []
    for cell in net.cells:
        cell.register_forward_hook(
            lambda m, args, out: seen.append((type(m).__name__, tuple(out.shape[1:])))
        )
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert seen == [
        ("NB201Cell", (4, 8, 8)),
        ("ResidualReduction", (8, 4, 4)),
        ("NB201Cell", (8, 4, 4)),
        ("ResidualReduction", (16, 2, 2)),
        ("NB201Cell", (16, 2, 2)),
    ]


def test_supernet_runs_on_digits():
    torch.manual_seed(0)
    net = NB201SearchNetwork(C=4, N=1, in_channels=1)
    prepared(net)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_residual_reduction_is_the_sum_of_its_two_branches():
    torch.manual_seed(0)
    block = ResidualReduction(2, 4)
    x = torch.randn(2, 2, 6, 6)
    conv_a, conv_b, shortcut_conv = block.conv_a[1], block.conv_b[1], block.shortcut[1]
    a = F.batch_norm(
        F.conv2d(F.relu(x), conv_a.weight, stride=2, padding=1),
        None,
        None,
        block.conv_a[2].weight,
        block.conv_a[2].bias,
        training=True,
    )
    b = F.batch_norm(
        F.conv2d(F.relu(a), conv_b.weight, padding=1),
        None,
        None,
        block.conv_b[2].weight,
        block.conv_b[2].bias,
        training=True,
    )
    shortcut = F.conv2d(F.avg_pool2d(x, 2), shortcut_conv.weight)
    assert torch.allclose(block(x), shortcut + b, atol=1e-5)


def test_input_sides_must_be_multiples_of_4():
    net = NB201Network(EXAMPLE, C=4, N=1, in_channels=1)
    with pytest.raises(ValueError, match="even spatial sides, got 3x3"):
        net(torch.randn(2, 1, 6, 6))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"N": 0}, "N must be an int >= 1"),
        ({"C": 0}, "C must be an int >= 1"),
        ({"num_classes": 1.5}, "num_classes must be an int >= 1"),
    ],
)
def test_bad_sizes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NB201Network(EXAMPLE, **kwargs)
    with pytest.raises(ValueError, match=message):
        NB201SearchNetwork(**kwargs)


def test_fixed_network_rejects_a_bad_arch():
    with pytest.raises(ValueError, match="unknown op 'conv'"):
        NB201Network("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ValueError, match="NB201Arch or its string"):
        NB201Network(("none",) * 6)
