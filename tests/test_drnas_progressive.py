"""DrNAS' progressive schedule: warm-up per stage, pruning to the top ops,
widening the partial channels, the optimizers carried across, exact resume."""

import copy
import json
import os
import signal

import pytest
import torch
import yaml

from gradnas.algorithms.drnas import DrNas, ProgressiveStage, check_stages
from gradnas.cli import main
from gradnas.engine.files import load_checkpoint
from gradnas.genotype import PRIMITIVES, Genotype
from gradnas.mutables.dirichlet_op import DirichletOP
from gradnas.mutators import DartsMutator
from gradnas.spaces.darts import DartsSearchNetwork, build_op, op_space_id
from gradnas.spaces.darts.partial_channel import PartialChannelOp
from gradnas.spaces.darts.widen import widen_op

OPS_WITHOUT_NONE = tuple(p for p in PRIMITIVES if p != "none")
# Two stages of 2 epochs, the first one a warm-up; K 4 -> 2 on C = 4, 7 -> 4 ops.
STAGES = (
    ProgressiveStage(epochs=2, warmup_epochs=1, partial_channels=4, num_ops=7),
    ProgressiveStage(epochs=2, warmup_epochs=1, partial_channels=2, num_ops=4),
)


def build(seed=0, stages=STAGES):
    """A tiny progressive DrNAS search with the release's optimizers (SGD 0.1
    momentum 0.9 wd 3e-4; Adam 6e-4 betas (0.5, 0.999) wd 1e-3), alphas spread
    out so that the ranking of the ops is clear."""
    torch.manual_seed(seed)
    net = DartsSearchNetwork(
        C=4,
        layers=3,
        steps=2,
        multiplier=2,
        in_channels=1,
        num_classes=3,
        op_mutable=DirichletOP,
        primitives=OPS_WITHOUT_NONE,
        partial_channels=stages[0].partial_channels,
    )
    mutator = DartsMutator()
    mutator.prepare_from_supernet(net)
    with torch.no_grad():
        for alpha in mutator.arch_parameters():
            alpha.normal_()
    weight_opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    arch_opt = torch.optim.Adam(
        mutator.arch_parameters(), lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3
    )
    return net, mutator, DrNas(net, mutator, weight_opt, arch_opt, stages=stages)


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(4, 1, 8, 8, generator=gen), torch.randint(0, 3, (4,), generator=gen)


def run_epochs(algo, epochs, num_epochs=4):
    for epoch in epochs:
        algo.on_epoch_start(epoch, num_epochs)
        algo.step(batch(epoch), batch(100 + epoch))


def alphas_of(mutator):
    return {sid: a.detach().clone() for sid, a in mutator.arch_params.items()}


# -- pruning -------------------------------------------------------------------------


def test_pruning_keeps_exactly_the_top_k_ops_of_every_edge_by_the_distribution():
    _, mutator, algo = build()
    run_epochs(algo, range(2))
    before = alphas_of(mutator)
    names_before = {
        sid: members[0].full_choice_names
        for sid, members in mutator.search_spaces.items()
        if sid in before
    }
    algo.on_epoch_start(2, 4)
    assert len(before) == 2 * 5  # 5 edges (2 + 3 inputs) per cell type, each one op decision
    for sid, alpha in before.items():
        top = torch.topk(torch.softmax(alpha, dim=-1), k=4).indices.tolist()
        expected = {names_before[sid][i] for i in top}
        for mutable in mutator.search_spaces[sid]:
            assert set(mutable.full_choice_names) == expected == set(mutable.choices)
        kept_alpha = dict(
            zip(mutator.search_spaces[sid][0].full_choice_names, mutator.arch_params[sid].tolist())
        )
        assert kept_alpha == {
            names_before[sid][i]: alpha[i].item() for i in top
        }  # alphas kept as they were


def test_pruned_ops_leave_the_supernet_and_both_optimizers():
    net, mutator, algo = build()
    run_epochs(algo, range(2))
    algo.on_epoch_start(2, 4)
    params = list(net.parameters())
    assert [id(p) for p in algo.weight_optimizer.param_groups[0]["params"]] == [
        id(p) for p in params
    ]
    assert [id(p) for p in algo.arch_optimizer.param_groups[0]["params"]] == [
        id(p) for p in mutator.arch_parameters()
    ]
    assert all(
        len(members[0].choices) == 4
        for sid, members in mutator.search_spaces.items()
        if sid in mutator.arch_params
    )


def test_adam_state_of_the_kept_alphas_is_carried_over():
    _, mutator, algo = build()
    run_epochs(algo, range(2))
    old_opt = algo.arch_optimizer
    old = {
        sid: (a, list(mutator.search_spaces[sid][0].full_choice_names))
        for sid, a in mutator.arch_params.items()
    }
    algo.on_epoch_start(2, 4)
    for sid, (old_alpha, old_names) in old.items():
        new_alpha = mutator.arch_params[sid]
        index = [old_names.index(n) for n in mutator.search_spaces[sid][0].full_choice_names]
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(
                algo.arch_optimizer.state[new_alpha][key], old_opt.state[old_alpha][key][index]
            )
        assert torch.equal(
            algo.arch_optimizer.state[new_alpha]["step"], old_opt.state[old_alpha]["step"]
        )


# -- widening ---------------------------------------------------------------------------


def old_channel_positions(name, stride, c_old, c_new):
    """Where the old op's output channels sit in the widened op's output: in
    place, except for a factorized reduce (the strided skip), whose two
    halves each grow at their end."""
    if name == "skip_connect" and stride == 2:
        return list(range(c_old // 2)) + list(range(c_new // 2, c_new // 2 + c_old // 2))
    return list(range(c_old))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", OPS_WITHOUT_NONE)
@pytest.mark.parametrize("training", [True, False])
def test_widened_op_computes_the_old_op_on_the_old_channels(float64, name, stride, training):
    c_old, c_new = 4, 6
    torch.manual_seed(0)
    op = build_op(name, c_old, stride, affine=False, search=True)
    for _ in range(3):  # running statistics away from their initial 0 and 1
        op(torch.randn(5, c_old, 8, 8) * 2 + 1)
    old = copy.deepcopy(op)
    widen_op(op, c_new, [])
    op.train(training)
    old.train(training)
    x = torch.randn(5, c_new, 8, 8)
    positions = old_channel_positions(name, stride, c_old, c_new)
    assert torch.allclose(op(x)[:, positions], old(x[:, :c_old]), atol=1e-12, rtol=0)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"])
def test_widened_conv_op_starts_its_new_channels_as_copies_of_old_ones(float64, name, stride):
    c_old, c_new = 4, 7
    torch.manual_seed(0)
    op = build_op(name, c_old, stride, affine=False, search=True)
    old = copy.deepcopy(op)
    widen_op(op, c_new, [])
    x = torch.randn(5, c_new, 8, 8)
    expected = old(x[:, :c_old])[:, [j % c_old for j in range(c_new)]]
    assert torch.allclose(op(x), expected, atol=1e-12, rtol=0)


def test_widened_factorized_reduce_copies_within_each_half(float64):
    c_old, c_new = 4, 8
    torch.manual_seed(0)
    op = build_op("skip_connect", c_old, 2, affine=False, search=True)
    old = copy.deepcopy(op)
    widen_op(op, c_new, [])
    x = torch.randn(5, c_new, 8, 8)
    h_old = c_old // 2
    source = [j % h_old for j in range(c_new // 2)] + [h_old + j % h_old for j in range(c_new // 2)]
    assert torch.allclose(op(x), old(x[:, :c_old])[:, source], atol=1e-12, rtol=0)


def test_widening_sends_the_stage_share_of_each_edge_through_the_ops():
    net, _, algo = build()
    run_epochs(algo, range(2))
    algo.on_epoch_start(2, 4)
    pcs = [m for m in net.modules() if isinstance(m, PartialChannelOp)]
    assert pcs and all(pc.k == 2 for pc in pcs) and net.partial_channels == 2
    # 3 cells: normal with C = 4, then reductions to C = 8 and 16; K = 2 gives the ops C // 2
    # channels.
    for cell, channels in zip(net.cells, (2, 4, 8), strict=True):
        for module in cell.modules():
            if (
                isinstance(module, torch.nn.BatchNorm2d)
                and module not in set(cell.preprocess0.modules())
                and module not in set(cell.preprocess1.modules())
            ):
                assert module.num_features == channels
    net(batch()[0]).sum().backward()  # the widened network runs


def test_momentum_of_widened_weights_keeps_the_old_buffer_in_place():
    net, _, algo = build()
    run_epochs(algo, range(2))
    old_opt = algo.weight_optimizer
    old_convs = {
        name: (m.weight, m.weight.shape)
        for name, m in net.named_modules()
        if isinstance(m, torch.nn.Conv2d) and "nodes" in name
    }
    algo.on_epoch_start(2, 4)
    modules = dict(net.named_modules())
    checked = 0
    for name, (old_weight, shape) in old_convs.items():
        if name not in modules:
            continue  # a pruned op's conv
        new_weight = modules[name].weight
        assert new_weight.shape[0] > shape[0]
        old_buf = old_opt.state[old_weight]["momentum_buffer"]
        new_buf = algo.weight_optimizer.state[new_weight]["momentum_buffer"]
        assert torch.equal(new_buf[: shape[0], : shape[1]], old_buf)
        assert torch.equal(new_weight.detach()[: shape[0], : shape[1]], old_weight.detach())
        checked += 1
    assert checked > 0


# -- warm-up -----------------------------------------------------------------------------


def test_warmup_epochs_make_no_architecture_step_and_the_others_do():
    net, mutator, algo = build()
    changed = []
    for epoch in range(4):
        algo.on_epoch_start(epoch, 4)
        before = alphas_of(mutator)
        weights = [p.detach().clone() for p in net.parameters()]
        metrics = algo.step(batch(epoch), batch(100 + epoch))
        changed.append(
            any(not torch.equal(before[sid], a) for sid, a in mutator.arch_params.items())
        )
        assert any(not torch.equal(w, p) for w, p in zip(weights, net.parameters()))
        assert ("val_loss" in metrics) == changed[-1]
    assert changed == [False, True, False, True]


# -- state ------------------------------------------------------------------------------------


def test_state_dict_round_trips_into_a_fresh_search():
    net, mutator, algo = build()
    run_epochs(algo, range(3))
    state = algo.state_dict()
    assert state["stage"] == 1 and state["epoch"] == 2 and len(state["kept"]) == 1

    # other weights and alphas: everything comes from the state
    net2, mutator2, algo2 = build(seed=1)
    algo2.load_state_dict(copy.deepcopy(state))
    assert algo2.state_dict() == state
    # Deep copies, as from a file: Adam's load_state_dict keeps the given step counters.
    net2.load_state_dict(net.state_dict())
    mutator2.load_state_dict(mutator.state_dict())
    algo2.weight_optimizer.load_state_dict(copy.deepcopy(algo.weight_optimizer.state_dict()))
    algo2.arch_optimizer.load_state_dict(copy.deepcopy(algo.arch_optimizer.state_dict()))
    algo2.load_state_dict(state)  # again: nothing left to rebuild
    for a in (algo, algo2):
        a.on_epoch_start(3, 4)
        torch.manual_seed(5)  # the same Dirichlet samples
        a.step(batch(3), batch(103))
    for p, q in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(mutator.arch_parameters(), mutator2.arch_parameters(), strict=True):
        assert torch.equal(p, q)


def test_state_of_another_pruning_is_refused():
    _, _, algo = build()
    run_epochs(algo, range(3))
    state = algo.state_dict()
    _, _, other = build()
    run_epochs(other, range(3))
    first = next(iter(state["kept"][0]))
    state["kept"][0][first] = list(reversed(OPS_WITHOUT_NONE))[:4]
    if state["kept"][0][first] == other.kept[0][first]:
        state["kept"][0][first] = list(OPS_WITHOUT_NONE)[:4]
    with pytest.raises(ValueError, match="other pruning than this search"):
        other.load_state_dict(state)


def test_state_needs_its_keys():
    _, _, algo = build()
    with pytest.raises(ValueError, match="needs exactly the keys 'epoch', 'stage', 'kept'"):
        algo.load_state_dict({"epoch": 0})


# -- bad schedules ----------------------------------------------------------------------------


def test_stages_must_cover_the_search():
    _, _, algo = build()
    with pytest.raises(
        ValueError, match="the progressive stages cover 4 epochs, the search runs 6"
    ):
        algo.on_epoch_start(0, 6)


@pytest.mark.parametrize(
    "stages, message",
    [
        ((ProgressiveStage(2, 2, 4, 7),), "0 <= warmup_epochs < epochs"),
        ((ProgressiveStage(2, 1, 2, 7), ProgressiveStage(2, 1, 4, 4)), "may only shrink"),
        ((ProgressiveStage(2, 1, 4, 4), ProgressiveStage(2, 1, 2, 7)), "may only shrink"),
        ((ProgressiveStage(2, 1, 1, 7),), "partial_channels >= 2"),
    ],
)
def test_bad_stages_are_refused(stages, message):
    with pytest.raises(ValueError, match=message):
        check_stages(stages)


def test_first_stage_must_match_the_supernet():
    net, mutator, _ = build()
    with pytest.raises(
        ValueError, match="the first stage has K=2, the supernet partial_channels=4"
    ):
        DrNas(
            net,
            mutator,
            torch.optim.SGD(net.parameters(), lr=0.1),
            torch.optim.Adam(mutator.arch_parameters()),
            stages=(ProgressiveStage(2, 1, 2, 7),),
        )


# -- the search from the command line -----------------------------------------------------------

# 719 training samples / batch 256 -> 3 steps per epoch; 2 stages of 2 epochs, 1 warm-up epoch each.
TINY = {
    "epochs": 4,
    "threads": 1,
    "checkpoint_every": 1,
    "plots": False,
    "data": {"batch_size": 256},
    "network": {"C": 4, "layers": 3, "steps": 2, "multiplier": 2},
    "drnas": {"progressive": True, "partial_channels": [4, 2]},
}


def search(tmp_path, name="run"):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    return main(
        [
            "search",
            "--config",
            str(config),
            "--algorithm",
            "drnas",
            "--out",
            str(tmp_path / name),
            "--no-progress",
        ]
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("progressive")
    assert search(root) == 0
    return root / "run"


def test_cli_search_derives_a_genotype_among_the_kept_ops(uninterrupted):
    state = load_checkpoint(uninterrupted / "checkpoint.pt")
    assert state["algorithm"]["stage"] == 1
    kept = state["algorithm"]["kept"][0]
    genotype = Genotype.from_json((uninterrupted / "genotype.json").read_text()).validate(steps=2)
    for cell_type, nodes in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        for i, node in enumerate(nodes):
            assert len(node) == 2
            for op, j in node:
                assert (
                    op in kept[op_space_id(cell_type, i, j)]
                    and len(kept[op_space_id(cell_type, i, j)]) == 4
                )


def test_alphas_history_lists_pruned_ops_with_zero_weight(uninterrupted):
    alphas = json.loads((uninterrupted / "alphas.json").read_text())
    assert all(names == list(OPS_WITHOUT_NONE) for names in alphas["choices"].values())
    for entry in alphas["history"]:
        for probs in entry["probs"].values():
            assert len(probs) == 7 and sum(p == 0 for p in probs) == (
                3 if entry["epoch"] > 2 else 0
            )
            assert sum(probs) == pytest.approx(1, abs=1e-5)


# in stage 1; at its end; in stage 2 (steps count from 1)
@pytest.mark.parametrize("stop_at_step", [5, 6, 8])
def test_resume_is_bit_identical_across_the_stage_boundary(
    tmp_path, uninterrupted, monkeypatch, stop_at_step
):
    real_step, calls = DrNas.step, []

    def step_then_sigterm(self, train_batch, val_batch):
        metrics = real_step(self, train_batch, val_batch)
        calls.append(1)
        if len(calls) == stop_at_step:
            os.kill(os.getpid(), signal.SIGTERM)  # the run checkpoints after this step and stops
        return metrics

    monkeypatch.setattr(DrNas, "step", step_then_sigterm)
    assert search(tmp_path) == 128 + signal.SIGTERM
    progress = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["progress"]
    assert (progress["epoch"], progress["step"]) == divmod(stop_at_step, 3)

    assert main(["search", "--resume", str(tmp_path / "run"), "--no-progress"]) == 0
    resumed = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    full = load_checkpoint(uninterrupted / "checkpoint.pt")
    for key in (
        "supernet",
        "mutator",
        "weight_optimizer",
        "arch_optimizer",
        "scheduler",
        "algorithm",
    ):
        assert_equal(resumed[key], full[key], key)
    for name in ("genotype.json", "alphas.json"):
        assert (tmp_path / "run" / name).read_text() == (uninterrupted / name).read_text()


def assert_equal(a, b, where):
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_shipped_config_is_the_published_schedule():

    from gradnas.algorithms.drnas import PUBLISHED_STAGES
    from gradnas.config import load_config
    from gradnas.configs import shipped_configs
    from gradnas.engine.builders import build_supernet, drnas_stages

    cfg = load_config(shipped_configs("search")["drnas-progressive-cifar10"])
    assert drnas_stages(cfg) == PUBLISHED_STAGES
    assert (cfg.optim.weight_lr, cfg.optim.arch_lr, cfg.optim.weight_lr_min) == (0.1, 6e-4, 0.0)
    cfg.network.C, cfg.network.layers = 12, 3  # the same search space, small enough to build here
    supernet, _ = build_supernet(cfg, in_channels=3, num_classes=10)
    assert supernet.primitives == OPS_WITHOUT_NONE and supernet.partial_channels == 6
    assert all(len(m.choices) == 7 for m in supernet.modules() if isinstance(m, DirichletOP))


# -- pruning a decision by hand ------------------------------------------------------------


def test_pruning_names_unknown_choices_and_decisions():
    _, mutator, _ = build()
    with pytest.raises(
        ValueError, match=r"prune_choices needs distinct names among .*got \['conv_9x9'\]"
    ):
        mutator.prune_choices("normal_node0_input0", ["conv_9x9"])
    with pytest.raises(ValueError, match="no decision 'normal_node9_input0'"):
        mutator.prune_choices("normal_node9_input0", ["skip_connect"])


def test_an_exported_mutable_cannot_be_pruned():
    op = DirichletOP({name: torch.nn.Identity() for name in ("a", "b", "c")}, "op")
    op.export(["a", "b"])
    with pytest.raises(ValueError, match="an exported mutable cannot be pruned"):
        op.prune_choices(["a"])


def test_a_pruned_decision_keeps_searching_with_its_shorter_alpha():
    net, mutator, _ = build()
    alpha = mutator.arch_params["normal_node0_input0"].detach().clone()
    index = mutator.prune_choices("normal_node0_input0", ["avg_pool_3x3", "sep_conv_3x3"])
    assert index.tolist() == [1, 3]
    assert torch.equal(mutator.arch_params["normal_node0_input0"].detach(), alpha[[1, 3]])
    for op in mutator.search_spaces["normal_node0_input0"]:
        assert (
            op.arch_param is mutator.arch_params["normal_node0_input0"]
            and op.choice_mask.tolist() == [True] * 2
        )
    net(batch()[0])
