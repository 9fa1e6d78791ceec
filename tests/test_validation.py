"""Bad numbers and bad files end with one `gradnas: error:` line before anything is written."""

import json

import pytest
import torch
import yaml

from gradnas.cli import main
from gradnas.config import ConfigError, SearchConfig, TrainConfig, config_from_dict, load_config
from gradnas.data.sources import load_splits
from gradnas.engine.files import RunDirError, load_checkpoint
from gradnas.limits import split_sizes


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("gradnas: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "section, key",
    [("optim", "weight_lr"), ("optim", "weight_decay"), ("gdas", "tau_max"), ("snas", "tau_end")],
)
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_are_refused_before_the_run_folder_exists(
    tmp_path, capsys, section, key, value
):
    config = tmp_path / "c.yaml"
    config.write_text(f"{section}:\n  {key}: {value}\n")
    assert main(["search", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert f"'{section}.{key}': must be a finite number" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seeds_outside_numpys_range_are_refused(tmp_path, capsys, seed):
    assert main(["search", "--seed", str(seed), "--out", str(tmp_path / "run")]) == 2
    assert "'seed': must be in 0..2**32-1" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_the_largest_seed_is_accepted():
    assert config_from_dict({"seed": 2**32 - 1}).seed == 2**32 - 1


@pytest.mark.parametrize(
    "data, key",
    [
        ({"network": {"C": 100_000}}, "network.C"),
        ({"network": {"layers": 100_000}}, "network.layers"),
        ({"random": {"C": 100_000}}, "random.C"),
        ({"space": "nb201", "nb201": {"C": 100_000}}, "nb201.C"),
    ],
)
def test_huge_widths_are_refused_naming_the_memory_they_would_need(data, key):
    with pytest.raises(ConfigError, match=rf"'{key}'.*would need at least [\d,]+ [MG]iB"):
        config_from_dict(data)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"threads": 10**9}, "threads"),
        ({"network": {"stem_multiplier": 10**6}}, "network.stem_multiplier"),
        ({"network": {"steps": 1000, "multiplier": 4}}, "network.steps"),
        ({"data": {"batch_size": 10**9}}, "data.batch_size"),
        ({"epochs": 10**12}, "epochs"),
    ],
)
def test_huge_counts_are_refused(data, key):
    with pytest.raises(ConfigError, match=rf"'{key}': must be"):
        config_from_dict(data)


@pytest.mark.parametrize(
    "val_fraction, test_fraction", [(0.5, 0.2), (0.1, 0.3), (0.9, 0.05), (0.0007, 0.2)]
)
def test_split_sizes_are_those_the_data_splits_have(val_fraction, test_fraction):
    sizes = split_sizes("digits", val_fraction, test_fraction)
    splits = load_splits("digits", val_fraction=val_fraction, test_fraction=test_fraction)
    assert sizes == {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}


@pytest.mark.parametrize("data", [{"val_fraction": 0.0001}, {"test_fraction": 0.0002}])
def test_a_split_that_would_be_empty_is_refused(tmp_path, capsys, data):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": data}))
    assert main(["search", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "split of digits empty" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_the_auxiliary_head_on_8x8_digits_is_refused(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("network: {auxiliary: true}\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "'network.auxiliary'" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()
    cifar = {"data": {"name": "cifar10", "data_dir": "x"}, "network": {"auxiliary": True}}
    assert config_from_dict(cifar, TrainConfig).network.auxiliary  # 32x32 gives 8x8 maps


def test_a_duplicate_yaml_key_is_refused_with_its_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 2\nseed: 1\nepochs: 3\n")
    with pytest.raises(ConfigError, match="line 3, column 1: duplicate key 'epochs'"):
        load_config(config)


def test_a_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: [1,\n  2\nseed: {\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert "\n" not in str(info.value) and "line 3, column 5" in str(info.value)


def test_a_huge_value_is_not_echoed_whole(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: " + "x" * 1_000_000 + "\n")
    assert main(["search", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert len(one_error_line(capsys)) < 300


GOOD = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"
)


@pytest.mark.parametrize(
    "content, message",
    [
        (GOOD.replace("reduce_concat=[2]", "reduce_concat=[0]").encode(), "intermediate nodes"),
        (b"\xff\xfe\x00 Genotype(", "not UTF-8 text (byte 0)"),
        (GOOD.replace("reduce=", "\n\n   extra=1, reduce=").encode(), "line 3, column 4"),
        (b"x" * (2 << 20), "larger than 1 MiB"),
        (GOOD.replace("'max_pool_3x3', 1", "'warp_drive', 1").encode(), "unknown op 'warp_drive'"),
    ],
)
def test_a_bad_genotype_file_is_one_line_naming_file_and_place(tmp_path, capsys, content, message):
    path = tmp_path / "g.txt"
    path.write_bytes(content)
    assert main(["train", "--genotype", str(path), "--out", str(tmp_path / "run")]) == 2
    err = one_error_line(capsys)
    assert str(path) in err and message in err and len(err) < 400
    assert not (tmp_path / "run").exists()


def test_plot_refuses_a_run_whose_genotype_has_an_unknown_op(tmp_path, capsys):
    bad = GOOD.replace("'max_pool_3x3', 1", "'warp_drive', 1")
    from gradnas.genotype import Genotype

    data = Genotype.parse(bad).to_dict()  # the parser itself does not check op names
    (tmp_path / "genotype.json").write_text(json.dumps(data))
    assert main(["plot", str(tmp_path)]) == 2
    assert "unknown op 'warp_drive'" in one_error_line(capsys)


def test_plot_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "taken.txt"
    target.write_text("mine\n")
    assert main(["plot", "--genotype", "DARTS_V2", "--out", str(target)]) == 2
    assert "exists and is not a folder" in one_error_line(capsys)
    assert target.read_text() == "mine\n"


@pytest.mark.parametrize("flag", ["--layers", "--image-size", "--C"])
def test_inspect_refuses_sizes_that_would_exhaust_memory(capsys, flag):
    assert main(["inspect", "DARTS_V2", flag, "100000"]) == 2
    assert "GiB" in one_error_line(capsys)


def test_a_checkpoint_error_never_advises_an_unsafe_load(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "gradnas-search-1", "module": torch.nn.Linear(1, 1)}, path)
    with pytest.raises(RunDirError) as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    config = out.parent / "c.yaml"
    config.write_text(yaml.safe_dump({"epochs": 1, "threads": 1, "network": {"C": 4}}))
    assert main(["train", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.parametrize("damage", ["truncate", "foreign", "other width"])
def test_export_of_a_damaged_model_is_one_line(tmp_path, capsys, train_run, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(train_run, run)
    model = run / "model.pt"
    if damage == "truncate":
        model.write_bytes(model.read_bytes()[:1000])
    elif damage == "foreign":
        torch.save({"net": torch.nn.Linear(2, 2)}, model)
    else:
        torch.save({"stem.weight": torch.zeros(3)}, model)
    assert main(["export", str(run)]) == 2
    err = one_error_line(capsys)
    assert str(model) in err and "weights_only" not in err
    assert not (run / "model.onnx").exists()


def test_search_config_default_passes_the_new_bounds():
    assert SearchConfig().validate() == SearchConfig()
