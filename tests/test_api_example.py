"""The Python API on a user's own Dataset, and the examples/ ResNet-style search at tiny sizes."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

import gradnas
from gradnas.cli import main
from gradnas.import_path import load_object

EXAMPLE = Path(__file__).parents[1] / "examples" / "resnet_search.py"
TINY = {"threads": 1, "plots": False, "data": {"batch_size": 32}}


def user_dataset(n: int, seed: int) -> TensorDataset:
    """Images whose class is the quadrant holding the bright pixel: learnable, not digits."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(4, (n,), generator=g)
    images = torch.randn(n, 1, 6, 6, generator=g) * 0.1
    for i, label in enumerate(labels.tolist()):
        images[i, 0, 3 * (label // 2), 3 * (label % 2)] += 3.0
    return TensorDataset(images, labels)


@pytest.mark.parametrize("algorithm", ["darts", "spos"])
def test_search_and_train_any_dataset_through_the_api(tmp_path, algorithm):
    build = load_object(f"{EXAMPLE}:build", "space")
    data = user_dataset(96, seed=0)
    result = gradnas.search(
        build, data, algorithm=algorithm, epochs=1, out=tmp_path / "search", config=TINY,
        progress=False, log=lambda _: None,
    )  # fmt: skip
    arch = json.loads((tmp_path / "search" / "arch.json").read_text())
    assert result.arch.to_dict() == arch and set(arch) >= {"block0", "sum0"}
    record = json.loads((tmp_path / "search" / "space.json").read_text())
    assert record["space"] == f"{EXAMPLE.resolve()}:build"  # found again by `gradnas train`
    assert (record["num_classes"], record["image_shape"]) == (4, [1, 6, 6])
    trained = gradnas.train(
        result.out_dir, data, user_dataset(40, seed=1), epochs=1, out=tmp_path / "train",
        config={"threads": 1, "data": {"batch_size": 32}}, progress=False, log=lambda _: None,
    )  # fmt: skip
    assert 0.0 <= trained.test_acc <= 1.0 and len(trained.history) == 1
    # The run folder works with the CLI too: export reads the shapes the run recorded.
    assert main(["export", str(tmp_path / "train"), "--format", "pt2"]) == 0
    program = torch.export.load(str(tmp_path / "train" / "model.pt2")).module()
    assert program(torch.zeros(3, 1, 6, 6)).shape == (3, 4)


def test_api_resume_continues_an_interrupted_search(tmp_path):
    """A search stopped after its first epoch and resumed ends where an uninterrupted one does."""
    build = load_object(f"{EXAMPLE}:build", "space")
    data = user_dataset(64, seed=2)
    kwargs = {"algorithm": "gdas", "config": TINY, "progress": False, "log": lambda _: None}
    full = gradnas.search(build, data, epochs=2, out=tmp_path / "full", **kwargs)
    from gradnas.engine import search as engine

    calls = []
    original = engine.SearchJob.after_epoch

    def stop_after_first(self, run):
        original(self, run)
        calls.append(run.epoch)
        if run.epoch == 1:
            raise RuntimeError("crash")  # a crash after the first epoch's checkpoint

    engine.SearchJob.after_epoch = stop_after_first
    try:
        with pytest.raises(RuntimeError, match="crash"):
            gradnas.search(build, data, epochs=2, out=tmp_path / "cut", **kwargs)
    finally:
        engine.SearchJob.after_epoch = original
    resumed = gradnas.search(build, data, epochs=2, out=tmp_path / "cut", resume=True, **kwargs)
    assert calls == [1] and resumed.arch == full.arch
    assert (tmp_path / "cut" / "alphas.json").read_text() == (
        tmp_path / "full" / "alphas.json"
    ).read_text()


def test_the_example_runs_end_to_end(tmp_path):
    example = load_object(f"{EXAMPLE}:main", "example")
    args = ["--algorithm", "gdas", "--epochs", "1", "--train-epochs", "1", "--threads", "1"]
    out = example([*args, "--out", str(tmp_path / "resnet")])
    assert (out / "search" / "arch.json").is_file()
    assert (out / "train" / "model.onnx").is_file() and (out / "train" / "result.json").is_file()
