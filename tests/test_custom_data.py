"""Any Dataset of (image, label): factories named on the command line, objects in Python."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch.utils.data import TensorDataset

from gradnas.cli import main
from gradnas.config import SearchConfig, TrainConfig, config_from_dict
from gradnas.data.errors import DataError
from gradnas.data.sources import load_splits
from gradnas.import_path import ImportPathError, load_object

TINY = {
    "epochs": 1,
    "threads": 1,
    "plots": False,
    "data": {"batch_size": 8},
    "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
}

FACTORY = """
import torch
from torch.utils.data import TensorDataset

def make(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 2, 10, 10, generator=g)
    y = torch.arange(40) % 4
    return TensorDataset(x[:32], y[:32]), TensorDataset(x[32:], y[32:])

def boom(seed):
    raise RuntimeError("no data today")

def pairs_of_three(seed):
    x = torch.zeros(16, 1, 8, 8)
    return TensorDataset(x, x, x), TensorDataset(x, x, x)

def int_images(seed):
    x = torch.zeros(16, 1, 8, 8, dtype=torch.uint8)
    return TensorDataset(x, torch.arange(16) % 2), TensorDataset(x, torch.arange(16) % 2)

class WithClasses(torch.utils.data.Dataset):
    classes = ["a", "b"]
    def __init__(self, labels):
        self.labels = labels
    def __len__(self):
        return len(self.labels)
    def __getitem__(self, i):
        return torch.zeros(1, 8, 8), self.labels[i]

def out_of_range(seed):
    return WithClasses([0, 1] * 8), WithClasses([0, 1, 2, 1])
"""


@pytest.fixture
def factory_file(tmp_path):
    path = tmp_path / "my_data.py"
    path.write_text(textwrap.dedent(FACTORY))
    return path


def test_load_object_resolves_modules_and_files(factory_file):
    assert load_object("json:dumps", "--data") is json.dumps
    assert callable(load_object(f"{factory_file}:make", "--data"))


@pytest.mark.parametrize(
    "ref, message",
    [
        ("no_colon", "expected MODULE:NAME or FILE.py:NAME"),
        ("missing_dir/none.py:make", "no file 'missing_dir/none.py'"),
        ("gradnas_no_such_module:make", "no module named 'gradnas_no_such_module'"),
        ("json:no_such_name", "'json' has no attribute 'no_such_name'"),
    ],
)
def test_load_object_errors(ref, message):
    with pytest.raises(ImportPathError, match=message.replace(".", r"\.")):
        load_object(ref, "--data")


def test_factory_data_sizes_shape_and_classes(factory_file):
    s = load_splits(f"{factory_file}:make", seed=3)
    assert (len(s.train_all), len(s.test), s.num_classes) == (32, 8, 4)
    assert (s.in_channels, s.image_size) == (2, 10)
    expected = torch.randn(40, 2, 10, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s.test[0][0], expected[32])  # used as it comes: no normalisation


@pytest.mark.parametrize(
    "factory, message",
    [
        ("boom", r"raised RuntimeError: no data today"),
        ("pairs_of_three", r"training item 0 is tuple, not a pair \(image tensor"),
        ("int_images", r"the image is a torch.uint8 tensor of shape \(1, 8, 8\), not a float"),
        ("out_of_range", r"test label 2 out of range 0\.\.1 \(len\(train.classes\)\)"),
    ],
)
def test_factory_errors(factory_file, factory, message):
    with pytest.raises(DataError, match=message):
        load_splits(f"{factory_file}:{factory}")


def test_cli_search_and_train_on_a_factory(tmp_path, factory_file):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "run"
    args = ["--data", f"{factory_file}:make", "--no-progress"]
    assert main(["search", "--config", str(cfg), "--out", str(out), *args]) == 0
    info = json.loads((out / "data.json").read_text())
    assert (info["in_channels"], info["image_size"], info["num_classes"]) == (2, 10, 4)
    assert info["sizes"] == {"train": 16, "val": 16, "train_all": 32, "test": 8}
    train_out = tmp_path / "train"
    code = main(
        ["train", "--genotype", str(out), "--epochs", "1", "--batch-size", "8", "--out",
         str(train_out), *args]
    )  # fmt: skip
    assert code == 0 and json.loads((train_out / "result.json").read_text())["test_acc"] >= 0
    # export reads the input shape (2 channels, 10x10) from data.json, not from a table
    assert main(["export", str(train_out), "--format", "pt2"]) == 0
    program = torch.export.load(train_out / "model.pt2").module()
    assert program(torch.zeros(3, 2, 10, 10)).shape == (3, 4)


def test_python_api_takes_dataset_objects(tmp_path):
    from gradnas.engine.search import run_search
    from gradnas.engine.train import run_train

    g = torch.Generator().manual_seed(0)
    train = TensorDataset(torch.randn(24, 3, 8, 8, generator=g), torch.arange(24) % 3)
    test = TensorDataset(torch.randn(6, 3, 8, 8, generator=g), torch.arange(6) % 3)
    cfg = config_from_dict({**TINY, "data": {"batch_size": 8, "name": "datasets"}}, SearchConfig)
    result = run_search(
        cfg, tmp_path / "s", progress=False, log=lambda _: None, datasets=(train, test)
    )
    assert json.loads((tmp_path / "s" / "data.json").read_text())["num_classes"] == 3
    tcfg = config_from_dict(
        {"genotype": str(result.out_dir / "genotype.json"), "epochs": 1, "threads": 1,
         "data": {"batch_size": 8, "name": "datasets"}},
        TrainConfig,
    )  # fmt: skip
    trained = run_train(
        tcfg, tmp_path / "t", progress=False, log=lambda _: None, datasets=(train, test)
    )
    assert 0 <= trained.test_acc <= 1
    with pytest.raises(DataError, match="stands for the datasets=\\(train, test\\) objects"):
        run_search(cfg, tmp_path / "s2", progress=False, log=lambda _: None)
    assert not (tmp_path / "s2").exists()
