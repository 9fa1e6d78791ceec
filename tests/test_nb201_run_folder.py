"""Every command on a NAS-Bench-201 search run folder: --then-train, train RUN_DIR, plot, inspect."""

import json

import pytest
import yaml

from gradnas.cli import main
from gradnas.spaces.nb201 import NB201Arch, NB201Network

SEARCH = {
    "space": "nb201",
    "epochs": 1,
    "threads": 1,
    "data": {"batch_size": 256},
    "nb201": {"C": 2, "N": 1},
}
TRAIN = {"epochs": 1, "threads": 1, "data": {"batch_size": 256}}


@pytest.fixture(scope="module")
def nb201_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb201")
    (root / "search.yaml").write_text(yaml.safe_dump(SEARCH))
    (root / "train.yaml").write_text(yaml.safe_dump(TRAIN))
    argv = ["search", "--config", str(root / "search.yaml"), "--out", str(root / "run")]
    argv += ["--then-train", "--train-config", str(root / "train.yaml"), "--no-progress"]
    assert main(argv) == 0
    return root


def test_then_train_retrains_the_found_arch(nb201_run):
    run = nb201_run / "run"
    arch = NB201Arch.from_json((run / "arch.json").read_text())
    assert NB201Arch.from_json((run / "train" / "arch.json").read_text()) == arch
    result = json.loads((run / "train" / "result.json").read_text())
    # The retrained network is the benchmark network of the arch at the search's size.
    net = NB201Network(arch, C=2, N=1, num_classes=10, in_channels=1)
    assert result["parameters"] == sum(p.numel() for p in net.parameters())


def test_train_run_dir(nb201_run, tmp_path):
    argv = [
        "train",
        "--genotype",
        str(nb201_run / "run"),
        "--config",
        str(nb201_run / "train.yaml"),
    ]
    assert main([*argv, "--out", str(tmp_path / "t"), "--no-progress"]) == 0
    assert (tmp_path / "t" / "arch.json").read_text() == (
        nb201_run / "run" / "arch.json"
    ).read_text()
    assert main(["export", str(tmp_path / "t"), "--format", "pt2"]) == 0


def test_plot_run_dir_draws_the_curves(nb201_run, capsys):
    assert main(["plot", str(nb201_run / "run")]) == 0
    printed = capsys.readouterr().out.split()
    assert {p.rsplit("/", 1)[-1] for p in printed} == {"curves.png", "curves.svg"}


@pytest.mark.parametrize("what", ["folder", "arch.txt", "string"])
def test_inspect_counts_the_fixed_network(nb201_run, capsys, what):
    run = nb201_run / "run"
    arch_text = (run / "arch.txt").read_text().strip()
    spec = {"folder": str(run), "arch.txt": str(run / "arch.txt"), "string": arch_text}[what]
    assert main(["inspect", spec]) == 0
    out = capsys.readouterr().out
    arch = NB201Arch.parse(arch_text)
    # The run folder knows its size and shapes; a bare arch is the benchmark's (C=16, N=5, 32x32).
    size, channels = ((2, 1), 1) if what == "folder" else ((16, 5), 3)
    net = NB201Network(arch, C=size[0], N=size[1], num_classes=10, in_channels=channels)
    assert f"weights       {sum(p.numel() for p in net.parameters()):,}" in out
    assert arch_text in out
