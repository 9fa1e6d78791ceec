"""`gradnas search` end to end on a tiny config, and its bad-input behaviour."""

import csv
import json

import pytest
import torch
import yaml

from gradnas.cli import main
from gradnas.config import load_config
from gradnas.genotype import Genotype

TINY = {
    "epochs": 2,
    "data": {"batch_size": 256},
    "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
}
RUN_FILES = {
    "config.yaml",
    "data.json",
    "space.json",  # the space and the data shapes, for train RUN_DIR and export
    "metrics.csv",
    "alphas.json",
    "genotype.json",
    "genotype.txt",
    "checkpoint.pt",
    "checkpoint.prev.pt",
}
PLOT_FILES = {
    f"{name}.{ext}"
    for name in ("alphas_normal", "alphas_reduce", "curves", "cell_normal", "cell_reduce")
    for ext in ("png", "svg")
} | {"cell_normal.dot", "cell_reduce.dot"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = root / "run"
    status = main(
        ["search", "--config", str(config), "--out", str(out), "--seed", "3", "--no-progress"]
    )
    return status, out


def test_search_exits_zero_and_writes_every_run_file(tiny_run):
    status, out = tiny_run
    assert status == 0
    assert {p.name for p in out.iterdir()} == RUN_FILES | PLOT_FILES | {
        ".gradnas-run",
        ".gradnas.lock",
    }  # and no temporary files


def test_run_folder_keeps_the_resolved_config_with_flag_overrides(tiny_run):
    cfg = load_config(tiny_run[1] / "config.yaml")
    assert cfg.seed == 3 and cfg.epochs == 2 and cfg.network.C == 2


def test_metrics_has_one_row_per_epoch(tiny_run):
    rows = list(csv.DictReader((tiny_run[1] / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0.0 <= float(r["val_acc"]) <= 1.0 for r in rows)


def test_alphas_history_has_start_and_every_epoch_as_distributions(tiny_run):
    alphas = json.loads((tiny_run[1] / "alphas.json").read_text())
    history = alphas["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    # steps=2: edges 2 + 3 per cell type, 2 cell types
    assert len(history[-1]["probs"]) == 10
    for space_id, probs in history[-1]["probs"].items():
        assert len(probs) == len(alphas["choices"][space_id]) == 8
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert history[0]["probs"] != history[-1]["probs"]  # the architecture step moved the alphas


def test_genotype_files_agree_and_fit_the_space(tiny_run):
    out = tiny_run[1]
    from_json = Genotype.from_json((out / "genotype.json").read_text())
    from_text = Genotype.parse((out / "genotype.txt").read_text())
    assert from_json == from_text
    from_json.validate(steps=2)
    assert all(len(node) == 2 for node in from_json.normal + from_json.reduce)


def test_checkpoint_loads_with_weights_only_and_holds_the_alphas(tiny_run):
    state = torch.load(tiny_run[1] / "checkpoint.pt", weights_only=True)
    assert {"supernet", "mutator", "weight_optimizer", "arch_optimizer", "scheduler", "rng"} <= set(
        state
    )
    assert state["progress"]["epoch"] == 2 and state["progress"]["step"] == 0
    assert len(state["mutator"]) == 10 and all(
        k.startswith("arch_params.") for k in state["mutator"]
    )


def test_unknown_config_key_exits_2_naming_it_and_writes_nothing(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("network:\n  chanels: 4\n")
    out = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradnas: error:") and "network.chanels" in err and "Traceback" not in err
    assert not out.exists()


def test_existing_run_folder_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "genotype.json").write_text("precious")
    assert main(["search", "--epochs", "1", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "genotype.json").read_text() == "precious"


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--config", "--epochs", "--batch-size", "--seed", "--out", "--algorithm"):
        assert flag in text


@pytest.mark.parametrize(
    "algorithm", ["darts", "darts2", "gdas", "pcdarts", "snas", "drnas", "spos"]
)
def test_every_algorithm_runs_end_to_end_from_the_cli(tmp_path, algorithm):
    # C=8 so that PC-DARTS' quarter of the channels is still even.
    cfg = {
        **TINY,
        "network": {**TINY["network"], "C": 8},
        "threads": 1,
        "plots": False,
        "spos": {"population": 6, "generations": 2, "parents": 2},
    }
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert (
        main(
            [
                "search",
                "--config",
                str(config),
                "--algorithm",
                algorithm,
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    genotype = Genotype.from_json((out / "genotype.json").read_text()).validate(steps=2)
    if algorithm != "snas":  # SNAS keeps every edge whose argmax is not `none`
        assert all(len(node) == 2 for node in genotype.normal + genotype.reduce)
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    taus = [float(r["tau"]) if r["tau"] else None for r in rows]
    expected = {"gdas": [10.0, 0.1], "snas": [1.0, 0.03]}.get(algorithm, [None, None])
    assert taus == pytest.approx(expected) if expected[0] else taus == expected
    assert load_config(out / "config.yaml").algorithm == algorithm


def test_search_summary_names_best_accuracy_genotype_and_files(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "epochs": 1, "plots": False}))
    assert (
        main(["search", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"])
        == 0
    )
    out = capsys.readouterr().out
    for part in (
        "search finished in",
        "best val acc",
        "genotype       Genotype(",
        "derived net",
        "weights at the train defaults",
        "files",
        "genotype.json",
    ):
        assert part in out
    (epoch_line,) = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epoch_line) <= 120
    assert "train_loss" in epoch_line and "decisions changed" in epoch_line


def test_plot_command_draws_a_published_genotype(tmp_path, capsys):
    assert (
        main(["plot", "--genotype", "DARTS_V2", "--out", str(tmp_path), "--renderer", "matplotlib"])
        == 0
    )
    written = {p.name for p in tmp_path.iterdir()}
    assert {"cell_normal.png", "cell_reduce.svg", "cell_normal.dot"} <= written
    assert "sep_conv_3x3" in (tmp_path / "cell_normal.dot").read_text()


def test_plot_command_needs_exactly_one_source(tmp_path, capsys):
    assert main(["plot"]) == 2
    assert "RUN_DIR or --genotype" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("algorithm", ["darts", "darts2", "gdas", "snas", "drnas"])
def test_nb201_space_searches_and_writes_the_benchmark_arch_string(tmp_path, algorithm):
    from gradnas.spaces.nb201 import NB201Arch

    config = tmp_path / "nb.yaml"
    config.write_text(
        yaml.safe_dump(
            {"epochs": 1, "threads": 1, "data": {"batch_size": 256}, "nb201": {"C": 4, "N": 1}}
        )
    )
    out = tmp_path / "run"
    assert (
        main(
            [
                "search",
                "--config",
                str(config),
                "--space",
                "nb201",
                "--algorithm",
                algorithm,
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    arch = NB201Arch.parse((out / "arch.txt").read_text().strip())
    assert NB201Arch.from_json((out / "arch.json").read_text()) == arch
    assert {"curves.png", "curves.svg"} <= {p.name for p in out.iterdir()}


def test_pcdarts_on_nb201_is_refused_by_name(tmp_path, capsys):
    assert (
        main(
            ["search", "--space", "nb201", "--algorithm", "pcdarts", "--out", str(tmp_path / "run")]
        )
        == 2
    )
    assert "pcdarts does not apply to the nb201 space" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_random_search_logs_every_trial_and_keeps_the_best(tmp_path):
    config = tmp_path / "rs.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "threads": 1,
                "data": {"batch_size": 256},
                "network": {"steps": 2, "multiplier": 2},
                "random": {"trials": 3, "epochs": 1, "C": 4, "layers": 3},
            }
        )
    )
    out = tmp_path / "run"
    assert (
        main(["search", "--config", str(config), "--algorithm", "random", "--out", str(out)]) == 0
    )
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [int(r["trial"]) for r in rows] == [1, 2, 3]
    best = max(rows, key=lambda r: float(r["val_acc"]))  # max keeps the earliest among equals
    assert Genotype.parse((out / "genotype.txt").read_text()) == Genotype.parse(best["genotype"])
    assert [float(r["best_val_acc"]) for r in rows] == pytest.approx(
        [max(float(x["val_acc"]) for x in rows[: i + 1]) for i in range(3)]
    )


def test_tensorboard_logs_step_and_epoch_scalars_and_alpha_histograms(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "plots": False}))
    out = tmp_path / "run"
    assert (
        main(
            ["search", "--config", str(config), "--out", str(out), "--tensorboard", "--no-progress"]
        )
        == 0
    )
    events = EventAccumulator(
        str(out / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0}
    ).Reload()
    steps = [e.step for e in events.Scalars("step/train_loss")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 2 * 3  # 2 epochs x 3 steps
    assert [e.step for e in events.Scalars("epoch/val_acc")] == [1, 2]
    assert "alphas/normal_node0_input0" in events.Tags()["histograms"]
