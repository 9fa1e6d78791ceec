"""Tests for the DARTS search space: op table, search network, weight sharing, derivation."""

import pytest
import torch
from torch import nn

from gradnas.genotype import PRIMITIVES, Genotype
from gradnas.mutables import DifferentiableEdge, DifferentiableOP
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import OPS, DartsSearchNetwork, build_op

C = 16
NUM_EDGES = 14  # 2 + 3 + 4 + 5 inputs into the 4 intermediate nodes of a DARTS cell


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The tensors here are tiny: OpenMP threads bring nothing, and on a loaded
    # 2-core machine their spin-waits cost seconds per op.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def prepared(net: nn.Module) -> DartsMutator:
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    return mutator


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- the full-size supernet ---------------------------------------------------


def test_search_network_has_the_published_number_of_weights():
    # DARTS search log for CIFAR-10 (C=16, 8 layers), quark0/darts train_search
    # output: "param size = 1.930618MB", i.e. 1,930,618 weights, alphas excluded.
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=16, layers=8, num_classes=10, in_channels=3)
    assert num_params(net) == 1_930_618


def test_mutator_has_one_8_way_alpha_per_edge_and_cell_type():
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=16, layers=8, num_classes=10, in_channels=3)
    mutator = prepared(net)
    alphas = list(mutator.arch_parameters())
    # normal and reduce, like alphas_normal / alphas_reduce (14, 8)
    assert len(alphas) == 2 * NUM_EDGES
    assert all(a.shape == (len(PRIMITIVES),) for a in alphas)
    assert sum(a.numel() for a in alphas) == 224  # 2 cell types x 14 edges x 8 ops


def test_node_edges_are_decisions_without_alpha():
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=16, layers=8, num_classes=10, in_channels=3)
    mutator = prepared(net)
    edges = {
        sid
        for sid, members in mutator.search_spaces.items()
        if isinstance(members[0], DifferentiableEdge)
    }
    assert edges == {f"{t}_node{i}" for t in ("normal", "reduce") for i in range(4)}
    assert not edges & set(mutator.arch_params.keys())
    assert all(m.arch_param is None for sid in edges for m in mutator.search_spaces[sid])


def test_no_alpha_is_a_supernet_parameter():
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=16, layers=8, num_classes=10, in_channels=3)
    mutator = prepared(net)
    weight_ids = {id(p) for p in net.parameters()}
    assert not weight_ids & {id(a) for a in mutator.arch_parameters()}


# -- the op table -------------------------------------------------------------


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("search", [False, True])
def test_op_keeps_shape_at_stride_1(name, search):
    op = build_op(name, C, 1, affine=True, search=search)
    assert op(torch.randn(2, C, 8, 8)).shape == (2, C, 8, 8)


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("size,expected", [(8, 4), (7, 4)])  # ceil(size / 2)
def test_op_halves_resolution_at_stride_2(name, size, expected):
    op = build_op(name, C, 2, affine=True, search=True)
    assert op(torch.randn(2, C, size, size)).shape == (2, C, expected, expected)


def test_op_table_holds_exactly_the_primitives():
    assert tuple(OPS) == PRIMITIVES


def test_unknown_op_name_raises_naming_it():
    with pytest.raises(ValueError, match="'nope'"):
        build_op("nope", C, 1, affine=False)


@pytest.mark.parametrize("name", ["max_pool_3x3", "avg_pool_3x3"])
def test_search_pool_is_followed_by_affine_free_batchnorm(name):
    op = build_op(name, C, 1, affine=False, search=True)
    assert isinstance(op, nn.Sequential) and len(op) == 2
    assert isinstance(op[0], (nn.MaxPool2d, nn.AvgPool2d))
    assert isinstance(op[1], nn.BatchNorm2d) and not op[1].affine
    assert num_params(op) == 0


@pytest.mark.parametrize("name", ["max_pool_3x3", "avg_pool_3x3"])
def test_pool_outside_search_has_no_batchnorm(name):
    op = build_op(name, C, 1, affine=False, search=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in op.modules())


@pytest.mark.parametrize("name,kernel", [("sep_conv_3x3", 3), ("sep_conv_5x5", 5)])
def test_sep_conv_is_two_relu_depthwise_pointwise_bn_blocks_strided_once(name, kernel):
    op = build_op(name, C, 2, affine=True)
    layers = [m for m in op.modules() if isinstance(m, (nn.ReLU, nn.Conv2d, nn.BatchNorm2d))]
    assert [type(m) for m in layers] == [nn.ReLU, nn.Conv2d, nn.Conv2d, nn.BatchNorm2d] * 2
    depthwise, pointwise = [layers[1], layers[5]], [layers[2], layers[6]]
    assert all(m.groups == C and m.kernel_size == (kernel, kernel) for m in depthwise)
    assert all(m.groups == 1 and m.kernel_size == (1, 1) for m in pointwise)
    strides = [m.stride for m in layers if isinstance(m, nn.Conv2d)]
    assert strides == [(2, 2), (1, 1), (1, 1), (1, 1)]


# Hand-computed at C=16, affine=True: depthwise k*k*C, pointwise C*C, BN 2C.
@pytest.mark.parametrize(
    "name,stride,expected",
    [
        ("sep_conv_3x3", 1, 2 * (C * 9 + C * C + 2 * C)),  # 864
        ("sep_conv_5x5", 1, 2 * (C * 25 + C * C + 2 * C)),  # 1376
        ("dil_conv_3x3", 1, C * 9 + C * C + 2 * C),  # 432
        ("dil_conv_5x5", 1, C * 25 + C * C + 2 * C),  # 688
        (
            "skip_connect",
            2,
            2 * (C * C // 2) + 2 * C,
        ),  # factorized reduce: two 1x1 C->C/2 convs + BN(C)
        ("skip_connect", 1, 0),
        ("none", 2, 0),
    ],
)
def test_op_parameter_count(name, stride, expected):
    assert num_params(build_op(name, C, stride, affine=True)) == expected


def test_none_outputs_zeros():
    x = torch.randn(2, C, 7, 7)
    assert torch.equal(build_op("none", C, 2, affine=False)(x), torch.zeros(2, C, 4, 4))


# -- the network on 1x8x8 digits ---------------------------------------------


def small_digits_net() -> DartsSearchNetwork:
    torch.manual_seed(0)
    return DartsSearchNetwork(C=8, layers=5, in_channels=1)


def test_digits_network_gives_logits_per_class():
    net = small_digits_net()
    prepared(net)
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_reduction_cells_at_one_and_two_thirds_of_depth():
    net = small_digits_net()
    # layers // 3 = 1 and 2 * layers // 3 = 3
    assert [cell.reduction for cell in net.cells] == [False, True, False, True, False]


def test_spatial_size_after_each_cell_on_digits():
    net = small_digits_net()
    prepared(net)
    sizes = []
    hooks = [
        cell.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[2:])))
        for cell in net.cells
    ]
    try:
        net(torch.randn(2, 1, 8, 8))
    finally:
        for h in hooks:
            h.remove()
    assert sizes == [(8, 8), (4, 4), (4, 4), (2, 2), (2, 2)]


# -- sharing of decisions between cells --------------------------------------


def test_cells_of_a_type_share_their_alphas():
    net = small_digits_net()  # 3 normal cells, 2 reduction cells
    mutator = prepared(net)
    for cell in net.cells:
        cell_type = "reduce" if cell.reduction else "normal"
        for i, node in enumerate(cell.nodes):
            for j in range(2 + i):
                op = node.choices[f"input{j}"]
                assert isinstance(op, DifferentiableOP)
                assert op.space_id == f"{cell_type}_node{i}_input{j}"
                assert op.arch_param is mutator.arch_params[op.space_id]


def test_normal_and_reduce_alphas_are_distinct_objects():
    net = small_digits_net()
    mutator = prepared(net)
    normal = net.cells[0].nodes[0].choices["input0"].arch_param
    reduce = net.cells[1].nodes[0].choices["input0"].arch_param
    assert normal is not reduce
    assert len({id(a) for a in mutator.arch_parameters()}) == 2 * NUM_EDGES


# -- derivation by the DARTS rule ---------------------------------------------


def hand_set_alphas(mutator: DartsMutator) -> None:
    """Deterministic alphas with designed features:
    - normal node 0, input 0: ``none`` strongest by far; the edge is kept anyway
      (node 0 has only two inputs) and must name its best non-none op;
    - normal node 3, input 4: ``none`` strongest by far, so its other ops are weak
      and the input is dropped although its best non-none logit is high;
    - normal node 2: inputs 1 and 3 get identical alphas and are the strongest
      (a tie for first place: input 1 must be listed first);
    - reduce node 1: inputs 0 and 2 tie for second place (input 0 is kept).
    """
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for cell_type in ("normal", "reduce"):
            for i in range(4):
                for j in range(2 + i):
                    alpha = 0.1 * torch.randn(len(PRIMITIVES), generator=gen)
                    chosen = 1 + (3 * i + j) % 7  # cycle through the non-none ops
                    alpha[chosen] += 1.0 + 0.1 * j
                    mutator.arch_params[f"{cell_type}_node{i}_input{j}"].copy_(alpha)
        mutator.arch_params["normal_node0_input0"][0] = 6.0
        strong = torch.tensor([0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0])
        mutator.arch_params["normal_node2_input1"].copy_(strong)
        mutator.arch_params["normal_node2_input3"].copy_(strong)
        mutator.arch_params["normal_node3_input4"].copy_(torch.tensor([9.0, 0, 0, 0, 0, 0, 0, 2.5]))
        second = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
        mutator.arch_params["reduce_node1_input0"].copy_(second)
        mutator.arch_params["reduce_node1_input2"].copy_(second)
        mutator.arch_params["reduce_node1_input1"].copy_(torch.tensor([0.0, 4.0, 0, 0, 0, 0, 0, 0]))


def darts_rule(mutator: DartsMutator, cell_type: str) -> list[list[tuple[str, int]]]:
    """The DARTS derivation written out: per input edge, softmax over all 8 ops and
    take the best op other than ``none``; keep the 2 inputs with the strongest such
    op, strongest first, ties to the earlier input; ties between ops to the earlier op."""
    nodes = []
    none = PRIMITIVES.index("none")
    for i in range(4):
        best = []  # (strength, input, op name)
        for j in range(2 + i):
            probs = torch.softmax(
                mutator.arch_params[f"{cell_type}_node{i}_input{j}"].detach().double(), 0
            )
            k_best = None
            for k in range(len(PRIMITIVES)):
                if k != none and (k_best is None or probs[k] > probs[k_best]):
                    k_best = k
            best.append((probs[k_best].item(), j, PRIMITIVES[k_best]))
        kept = []
        for _ in range(2):  # selection, strict > keeps the earliest input on ties
            top = None
            for cand in best:
                if cand[1] in [k[1] for k in kept]:
                    continue
                if top is None or cand[0] > top[0]:
                    top = cand
            kept.append(top)
        nodes.append([(name, j) for _, j, name in kept])
    return nodes


def derived_small():
    torch.manual_seed(0)
    net = DartsSearchNetwork(C=4, layers=3)
    mutator = prepared(net)
    hand_set_alphas(mutator)
    return net, mutator


def test_derived_genotype_follows_the_darts_rule():
    net, mutator = derived_small()
    expected = Genotype(
        normal=darts_rule(mutator, "normal"),
        normal_concat=[2, 3, 4, 5],
        reduce=darts_rule(mutator, "reduce"),
        reduce_concat=[2, 3, 4, 5],
    )
    assert net.to_genotype(mutator.search_subnet()) == expected


def test_derived_genotype_has_the_designed_features():
    """The hand-set alphas' intended outcome, stated literally (guards darts_rule itself)."""
    net, mutator = derived_small()
    g = net.to_genotype(mutator.search_subnet())
    assert sorted(j for _, j in g.normal[0]) == [0, 1]  # input 0 kept despite `none` dominating it
    assert all(op != "none" for cell in (g.normal, g.reduce) for node in cell for op, _ in node)
    assert g.normal[2] == (("sep_conv_3x3", 1), ("sep_conv_3x3", 3))
    assert 4 not in [j for _, j in g.normal[3]]
    assert g.reduce[1] == (("max_pool_3x3", 1), ("dil_conv_3x3", 0))


def test_derived_genotype_validates():
    net, mutator = derived_small()
    g = net.to_genotype(mutator.search_subnet())
    assert g.validate(steps=4) is g
    assert all(len(node) == 2 for cell in (g.normal, g.reduce) for node in cell)
