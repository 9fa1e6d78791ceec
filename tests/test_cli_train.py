"""`gradnas train`: retraining a genotype end to end, reload, resume, and bad input."""

import json

import pytest
import torch
import yaml

from gradnas.cli import main
from gradnas.engine.common import evaluate
from gradnas.engine.train import build_train, load_trained
from gradnas.genotype import DARTS_V2, Genotype

TINY = {"epochs": 2, "threads": 1, "data": {"batch_size": 512}, "network": {"C": 4, "layers": 3}}


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    out = root / "run"
    status = main(
        ["train", "--config", str(write(root / "t.yaml", TINY)), "--out", str(out), "--no-progress"]
    )
    return status, out


def test_train_writes_every_file(trained):
    status, out = trained
    assert status == 0
    assert {p.name for p in out.iterdir()} == {
        "config.yaml",
        "data.json",
        "space.json",  # the space and the data shapes: export needs no data set
        "genotype.json",
        "metrics.csv",
        "checkpoint.pt",
        "checkpoint.prev.pt",
        "model.pt",
        "result.json",
        ".gradnas-run",  # the marker of a gradnas run folder
        ".gradnas.lock",  # the lock each run holds
    }
    assert Genotype.from_json((out / "genotype.json").read_text()) == DARTS_V2


def test_reloaded_network_gives_the_reported_test_accuracy(trained):
    out = trained[1]
    result = json.loads((out / "result.json").read_text())
    model, cfg = load_trained(out)
    _, acc = evaluate(model, build_train(cfg).test_loader)
    assert acc == result["test_acc"]
    assert result["parameters"] == sum(p.numel() for p in model.parameters())


def test_metrics_rows_and_drop_path_ramp(tmp_path):
    cfg = {**TINY, "epochs": 3, "network": {**TINY["network"], "drop_path_prob": 0.3}}
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(write(tmp_path / "t.yaml", cfg)),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    rows = (out / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    ramp = [float(r.split(",")[header.index("drop_path_prob")]) for r in rows[1:]]
    assert ramp == pytest.approx([0.0, 0.1, 0.2])  # DARTS: p * epoch / epochs


def test_genotype_from_a_search_run_folder(tmp_path):
    search = {
        "epochs": 1,
        "threads": 1,
        "plots": False,
        "data": {"batch_size": 512},
        "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
    }
    run = tmp_path / "search"
    assert (
        main(
            [
                "search",
                "--config",
                str(write(tmp_path / "s.yaml", search)),
                "--out",
                str(run),
                "--no-progress",
                "--then-train",
                "--train-config",
                str(write(tmp_path / "t.yaml", {**TINY, "epochs": 1})),
            ]
        )
        == 0
    )
    found = Genotype.from_json((run / "genotype.json").read_text())
    assert Genotype.from_json((run / "train" / "genotype.json").read_text()) == found
    assert json.loads((run / "train" / "result.json").read_text())["epochs"] == 1


def test_unknown_genotype_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--genotype", "NOT_A_GENOTYPE", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "NOT_A_GENOTYPE" in err and "DARTS_V2" in err and "Traceback" not in err
    assert not out.exists()


def test_genotype_that_does_not_fit_the_space_exits_2_naming_the_op(tmp_path, capsys):
    bad = DARTS_V2.to_dict()
    bad["normal"][0][0][0] = "conv_9x9"
    path = tmp_path / "g.json"
    path.write_text(json.dumps(bad))
    assert main(["train", "--genotype", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "conv_9x9" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_missing_cifar_files_exit_2_telling_where_to_get_them(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--data",
                "cifar10",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "data_batch_1.bin" in err and "cs.toronto.edu" in err
    assert not (tmp_path / "run").exists()


def test_resume_continues_bit_identically(tmp_path, trained):
    # Run 2 epochs with a checkpoint per step, roll the folder back to the checkpoint one step
    # before the end (as if killed there), resume, and compare with the uninterrupted weights.
    out = tmp_path / "run"
    cfg = {**TINY, "checkpoint_every": 1}
    assert (
        main(
            [
                "train",
                "--config",
                str(write(tmp_path / "t.yaml", cfg)),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    final = torch.load(out / "checkpoint.pt", weights_only=True)
    # the checkpoint one step before the end
    (out / "checkpoint.prev.pt").replace(out / "checkpoint.pt")
    mid = torch.load(out / "checkpoint.pt", weights_only=True)["progress"]
    assert (mid["epoch"], mid["step"]) < (final["progress"]["epoch"], final["progress"]["step"])
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    resumed = torch.load(out / "checkpoint.pt", weights_only=True)
    for key, value in final["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_search_then_train_then_export_end_to_end(tmp_path, capsys):
    search = {
        "epochs": 1,
        "threads": 1,
        "plots": False,
        "data": {"batch_size": 512},
        "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
    }
    run = tmp_path / "search"
    assert (
        main(
            [
                "search",
                "--config",
                str(write(tmp_path / "s.yaml", search)),
                "--out",
                str(run),
                "--no-progress",
                "--then-train",
                "--train-config",
                str(write(tmp_path / "t.yaml", {**TINY, "epochs": 1})),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["export", str(run / "train"), "--format", "onnx"]) == 0
    printed = capsys.readouterr().out
    difference = float(printed.rsplit(":", 1)[1])
    assert (run / "train" / "model.onnx").stat().st_size > 0 and difference <= 1e-4
    assert main(["export", str(run / "train"), "--format", "pt2"]) == 0
    program = torch.export.load(run / "train" / "model.pt2")
    model, _ = load_trained(run / "train")
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(program.module()(x), model(x), atol=1e-5)


def test_export_of_a_folder_that_is_not_a_train_run_names_it(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "config.yaml" in capsys.readouterr().err


def test_inspect_prints_darts_v2_published_size(capsys):
    assert main(["inspect", "DARTS_V2"]) == 0
    out = capsys.readouterr().out
    # DARTS: 3.3M; mmrazor: 3.83M with the head
    assert "3,349,342 (3,825,768 with the auxiliary head)" in out
