"""Config loading: every key typed and checked, unknown keys rejected by name."""

import dataclasses
from pathlib import Path

import pytest

from gradnas.config import (
    ConfigError,
    DataConfig,
    SearchConfig,
    TrainConfig,
    TrainNetworkConfig,
    config_from_dict,
    dump_config,
    load_config,
)
from gradnas.configs import resolve_config, shipped_configs


def test_defaults_round_trip_through_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(SearchConfig()))
    assert load_config(path) == SearchConfig()


def test_shipped_default_config_equals_the_dataclass_defaults():
    # the shipped `digits` search config documents the defaults; it must not drift from them.
    assert load_config(shipped_configs("search")["digits"]) == SearchConfig()


def test_nested_values_override_defaults():
    cfg = config_from_dict({"epochs": 3, "network": {"C": 4, "layers": 3}, "optim": {"arch_lr": 1}})
    assert (cfg.epochs, cfg.network.C, cfg.network.layers) == (3, 4, 3)
    assert cfg.optim.arch_lr == 1.0 and isinstance(cfg.optim.arch_lr, float)
    assert cfg.network.steps == SearchConfig().network.steps


@pytest.mark.parametrize(
    "data, key",
    [
        ({"epoch": 3}, "'epoch'"),
        ({"network": {"channels": 3}}, "'network.channels'"),
        ({"optim": {"lr": 0.1}}, "'optim.lr'"),
    ],
)
def test_unknown_key_is_named(data, key):
    with pytest.raises(ConfigError, match=f"unknown config key {key}"):
        config_from_dict(data)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"epochs": "3"}, "'epochs'"),
        ({"epochs": True}, "'epochs'"),
        ({"epochs": 2.5}, "'epochs'"),
        ({"optim": {"arch_lr": "fast"}}, "'optim.arch_lr'"),
        ({"data": {"name": 5}}, "'data.name'"),
    ],
)
def test_wrong_type_is_named(data, key):
    with pytest.raises(ConfigError, match=f"config key {key}: expected"):
        config_from_dict(data)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"epochs": 0}, "epochs"),
        ({"algorithm": "nope"}, "algorithm"),
        ({"data": {"name": "svhn"}}, "data.name"),
        ({"data": {"val_fraction": 1.0}}, "data.val_fraction"),
        ({"data": {"batch_size": 0}}, "data.batch_size"),
        ({"network": {"C": 3}}, "network.C"),
        ({"network": {"layers": 2}}, "network.layers"),
        ({"network": {"multiplier": 5}}, "network.multiplier"),
        ({"optim": {"momentum": 1.0}}, "optim.momentum"),
        ({"optim": {"weight_decay": -1}}, "optim.weight_decay"),
    ],
)
def test_out_of_range_is_named(data, key):
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        config_from_dict(data)


def test_section_must_be_a_mapping():
    with pytest.raises(ConfigError, match="section 'network' must be a mapping"):
        config_from_dict({"network": [1, 2]})


def test_invalid_yaml_and_missing_file_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml.*not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config file.*missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_every_field_has_a_default_so_an_empty_file_is_the_default(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == SearchConfig()
    assert all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(SearchConfig)
    )


def test_every_shipped_config_loads_and_the_cifar_train_config_builds_darts_published_network():
    from gradnas.config import TrainConfig
    from gradnas.genotype import DARTS_V2
    from gradnas.spaces.darts import NetworkCIFAR

    searches, trains = shipped_configs("search"), shipped_configs("train")
    assert len(searches) == 4 and len(trains) == 2
    for path in searches.values():
        load_config(path)
    for path in trains.values():
        load_config(path, TrainConfig)
    train = load_config(trains["darts-cifar10"], TrainConfig)
    net = NetworkCIFAR(
        DARTS_V2, C=train.network.C, layers=train.network.layers, auxiliary=train.network.auxiliary
    )
    # DARTS_V2 at DARTS' retraining size with its auxiliary head (3,349,342 + the head's 476,426)
    assert sum(p.numel() for p in net.parameters()) == 3_825_768
    search = load_config(searches["darts-cifar10"])
    assert (search.epochs, search.data.batch_size, search.network.C, search.network.layers) == (
        50,
        64,
        16,
        8,
    )


def test_a_partial_section_keeps_the_defaults_of_its_config():
    # TrainConfig's data and network sections differ from DataConfig() and TrainNetworkConfig().
    cfg = config_from_dict({"data": {"batch_size": 32}, "network": {"C": 8}}, TrainConfig)
    assert (cfg.data.batch_size, cfg.network.C) == (32, 8)
    assert cfg.data.cutout == TrainConfig().data.cutout != DataConfig().cutout
    assert (
        cfg.network.drop_path_prob
        == TrainConfig().network.drop_path_prob
        != TrainNetworkConfig().drop_path_prob
    )


@pytest.mark.parametrize(
    "data, key, message",
    [
        ({"drnas": {"num_ops": 4}}, "drnas.num_ops", "expected a list, got int 4"),
        (
            {"drnas": {"partial_channels": [6, "4"]}},
            "drnas.partial_channels[1]",
            "expected int, got str '4'",
        ),
        ({"drnas": {"stage_fractions": [0.5, 0.4]}}, "drnas.stage_fractions", "must add up to 1"),
        ({"drnas": {"stage_fractions": [1.5, -0.5]}}, "drnas.stage_fractions", "must be > 0"),
        ({"drnas": {"warmup_fraction": 1.0}}, "drnas.warmup_fraction", "must be in [0, 1)"),
        ({"drnas": {"partial_channels": [6]}}, "drnas.partial_channels", "one entry per stage (2"),
        ({"drnas": {"partial_channels": [4, 6]}}, "drnas.partial_channels", "must not grow"),
        ({"drnas": {"partial_channels": [2, 1]}}, "drnas.partial_channels", "every K must be >= 2"),
        ({"drnas": {"num_ops": [8, 4]}}, "drnas.num_ops", "the first stage searches all 7 ops"),
        (
            {"algorithm": "drnas", "drnas": {"progressive": True}},
            "network.C",
            "C divisible by every K",
        ),
        (
            {"algorithm": "drnas", "space": "nb201", "drnas": {"progressive": True}},
            "drnas.progressive",
            "DARTS space only",
        ),
        (
            {
                "algorithm": "drnas",
                "epochs": 1,
                "network": {"C": 12},
                "drnas": {"progressive": True},
            },
            "drnas.stage_fractions",
            "gives a stage no epoch of the 1",
        ),
    ],
)
def test_bad_drnas_progressive_values_are_named(data, key, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert str(err.value).startswith(f"config key '{key}': ") and message in str(err.value)


def test_drnas_progressive_defaults_are_the_published_schedule():
    from gradnas.config import stage_epochs, stage_warmup_epochs

    cfg = config_from_dict(
        {"algorithm": "drnas", "epochs": 50, "network": {"C": 36}, "drnas": {"progressive": True}}
    )
    # xiangning-chen/DrNAS, DARTS-space/train_search.py: train_epochs [25, 25], `if epoch >= 10`,
    # ks, num_keeps.
    assert stage_epochs(cfg.drnas.stage_fractions, cfg.epochs) == [25, 25]
    assert stage_warmup_epochs(cfg.drnas.warmup_fraction, 25) == 10
    assert (cfg.drnas.partial_channels, cfg.drnas.num_ops) == ([6, 4], [7, 4])


def test_config_names_resolve_to_shipped_files_and_paths_stay_paths(tmp_path):
    assert resolve_config("darts-cifar10", "search") == shipped_configs("search")["darts-cifar10"]
    assert resolve_config("darts-cifar10", "train") == shipped_configs("train")["darts-cifar10"]
    assert resolve_config("digits", "search").name == "digits.yaml"
    # a file path, even one that does not exist yet, is left to load_config and its error
    for ref in ("my.yaml", "sub/run", str(tmp_path / "x.yml")):
        assert resolve_config(ref, "search") == Path(ref)
    local = tmp_path / "digits"  # an existing file wins over a shipped name
    local.write_text("epochs: 1\n")
    assert resolve_config(str(local), "search") == local


def test_an_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError) as err:
        resolve_config("darts-cifar", "search")
    message = str(err.value)
    assert "'darts-cifar'" in message
    assert all(name in message for name in shipped_configs("search"))
    with pytest.raises(ConfigError, match="shipped train configs: darts-cifar10"):
        resolve_config("digits", "train")


def test_gradnas_configs_lists_and_prints_them(capsys):
    from gradnas.cli import main

    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    for kind in ("search", "train"):
        for name in shipped_configs(kind):
            assert f"  {name} " in out
    assert main(["configs", "--print", "digits"]) == 0
    assert capsys.readouterr().out == shipped_configs("search")["digits"].read_text()
    assert main(["configs", "--print", "nope"]) == 2
