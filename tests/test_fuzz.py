"""Property-based tests: genotype round trips, and arbitrary input to the parsers.

Text or data from a user (a genotype string, a genotype.json, a YAML config)
must either load or fail with the module's documented error
(:class:`GenotypeError`, :class:`ConfigError`), never with another exception.
Each test calls the function and lets any other exception fail the test.

The examples are derandomised (the same ones every run, so a CI failure
reproduces) and no example database is written into the repository.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gradnas.config import (
    ConfigError,
    SearchConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from gradnas.genotype import DARTS_V2, PC_DARTS, PRIMITIVES, Genotype, GenotypeError

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None)

# ---------------------------------------------------------------------------
# Genotypes
# ---------------------------------------------------------------------------

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
# Any name Genotype accepts: printable (no control or separator characters but
# the space), without quotes or backslashes.
printable_names = st.text(
    st.characters(blacklist_categories=("C", "Z"), blacklist_characters="'\"\\") | st.just(" "),
    min_size=1,
    max_size=12,
)
op_names = st.sampled_from(PRIMITIVES) | identifiers | printable_names


@st.composite
def cells(draw, steps: int) -> list[list[tuple[str, int]]]:
    """``steps`` nodes; node j has any in-degree and reads inputs 0..j+1."""
    return [
        draw(st.lists(st.tuples(op_names, st.integers(0, j + 1)), max_size=4)) for j in range(steps)
    ]


@st.composite
def genotypes(draw) -> Genotype:
    """Valid genotypes: any node count per cell, any in-degree, any non-empty concat subset."""
    parts = {}
    for key in ("normal", "reduce"):
        # A reduction cell concatenates intermediate nodes only (its inputs are not reduced).
        first = 2 if key == "reduce" else 0
        steps = draw(st.integers(1 if key == "reduce" else 0, 5))
        parts[key] = draw(cells(steps))
        parts[f"{key}_concat"] = draw(
            st.lists(st.integers(first, steps + 1), min_size=1, max_size=steps + 2, unique=True)
        )
    return Genotype(**parts)


@FUZZ
@given(genotypes())
def test_generated_genotypes_pass_validation(g):
    """The strategy's genotypes are valid ones, so the round trips below cover valid genotypes."""
    names = {op for key in ("normal", "reduce") for node in getattr(g, key) for op, _ in node}
    assert g.validate(primitives=names | set(PRIMITIVES)) is g


@FUZZ
@given(genotypes())
def test_parse_reads_back_what_str_writes(g):
    assert Genotype.parse(str(g)) == g


@FUZZ
@given(genotypes())
def test_from_json_reads_back_what_to_json_writes(g):
    assert Genotype.from_json(g.to_json()) == g


def _parse_or_genotype_error(text: str) -> None:
    with contextlib.suppress(GenotypeError):
        Genotype.parse(text)


@FUZZ
@given(st.text())
def test_parse_of_arbitrary_text_raises_only_genotype_error(text):
    _parse_or_genotype_error(text)


# Pieces of the genotype notation, so that random sequences get deep into the grammar.
_GENOTYPE_TOKENS = [
    "Genotype",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    " ",
    "normal",
    "normal_concat",
    "reduce",
    "reduce_concat",
    "range",
    "'sep_conv_3x3'",
    "'none'",
    "''",
    "'",
    '"',
    "0",
    "1",
    "5",
    "-1",
    "99999999999999999999",
    "1" * 4400,
    "#",
    "\n",
    "\\\n",
    "DARTS_V2",
    "x",
    "range(2, 99999999999)",
    "(" * 1100,
    "[" * 1100,
]


@FUZZ
@given(st.lists(st.sampled_from(_GENOTYPE_TOKENS), max_size=24).map("".join))
def test_parse_of_genotype_token_soup_raises_only_genotype_error(text):
    _parse_or_genotype_error(text)


@st.composite
def mutated(draw, text: str) -> str:
    """``text`` after a few random edits: deleted, inserted, replaced or duplicated slices."""
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        edit = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        if edit == "delete":
            text = text[:i] + text[j:]
        elif edit == "duplicate":
            text = text[:j] + text[i:j] * draw(st.integers(1, 30)) + text[j:]
        else:
            piece = draw(st.text(max_size=6) | st.sampled_from(_GENOTYPE_TOKENS))
            text = text[:i] + piece + (text[j:] if edit == "replace" else text[i:])
    return text


@FUZZ
@given(
    st.sampled_from([DARTS_V2, PC_DARTS]).map(str).flatmap(mutated)
    | genotypes().map(str).flatmap(mutated)
)
def test_parse_of_mutated_genotype_text_raises_only_genotype_error(text):
    _parse_or_genotype_error(text)


def _from_json_or_genotype_error(text: str) -> None:
    with contextlib.suppress(GenotypeError):
        Genotype.from_json(text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(PRIMITIVES),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["normal", "normal_concat", "reduce", "reduce_concat"])
            | st.text(max_size=4),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


_JSON_TOKENS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"normal"',
    '"reduce_concat"',
    '"none"',
    "0",
    "-1",
    "1e999",
    "NaN",
    "null",
    "true",
    '"',
    "1" * 4400,
    "[" * 1100,
]


@FUZZ
@given(
    st.text()
    | json_values.map(json.dumps)
    | st.lists(st.sampled_from(_JSON_TOKENS), max_size=12).map("".join)
    | genotypes().map(Genotype.to_json).flatmap(mutated)
)
def test_from_json_of_arbitrary_text_raises_only_genotype_error(text):
    _from_json_or_genotype_error(text)


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------

# Values at the edges of what the config code converts: ints past 64 bits and
# past float's range, NaN and infinities.
edge_numbers = st.sampled_from([2**64, -(2**70), 10**400, float("nan"), float("inf"), -0.0])
scalars = (
    st.none() | st.booleans() | st.integers() | edge_numbers | st.floats() | st.text(max_size=10)
)
plain_data = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(scalars, inner, max_size=4),
    max_leaves=15,
)


@st.composite
def config_like(draw, cls: type) -> dict:
    """Dicts over ``cls``'s real keys (now and then a wrong one) with arbitrary or plausible values."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if not draw(st.booleans()):
            continue
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out[f.name] = draw(config_like(kind) | plain_data)
        elif kind is float:
            out[f.name] = draw(st.floats() | st.integers(-3, 3) | edge_numbers | plain_data)
        elif kind is int:
            out[f.name] = draw(st.integers(-3, 30) | edge_numbers | plain_data)
        else:
            out[f.name] = draw(
                st.sampled_from(["darts", "digits", "cifar10", "DARTS_V2", ""]) | plain_data
            )
    if draw(st.integers(0, 9)) == 0:
        out[draw(st.text(max_size=5))] = draw(scalars)
    return out


@st.composite
def one_value_replaced(draw, cls: type) -> dict:
    """``cls``'s default config as a dict with one value, top-level or in a section, replaced."""
    data = config_to_dict(cls())
    paths = [(key,) for key in data] + [
        (key, sub) for key, v in data.items() if isinstance(v, dict) for sub in v
    ]
    path = draw(st.sampled_from(paths))
    section = data[path[0]] if len(path) == 2 else data
    section[path[-1]] = draw(edge_numbers | scalars | plain_data)
    return data


config_classes = st.sampled_from([SearchConfig, TrainConfig])


def _config_or_config_error(data, cls: type) -> None:
    try:
        cfg = config_from_dict(data, cls)
    except ConfigError:
        return
    assert isinstance(cfg, cls)


@FUZZ
@given(plain_data, config_classes)
def test_config_from_arbitrary_data_raises_only_config_error(data, cls):
    _config_or_config_error(data, cls)


@FUZZ
@given(st.data())
def test_config_with_real_keys_and_arbitrary_values_raises_only_config_error(data):
    cls = data.draw(config_classes)
    _config_or_config_error(data.draw(config_like(cls)), cls)


@FUZZ
@given(st.data())
def test_config_with_one_arbitrary_value_raises_only_config_error(data):
    cls = data.draw(config_classes)
    _config_or_config_error(data.draw(one_value_replaced(cls)), cls)


# Pieces of YAML, among them tags and values that PyYAML's safe loader fails on
# with exceptions other than YAMLError (impossible dates, malformed tagged scalars).
_YAML_TOKENS = [
    "epochs",
    "data",
    "network",
    "optim",
    "name",
    "C",
    "weight_lr",
    ":",
    ": ",
    "\n",
    "  ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    '"',
    "&a ",
    "*a",
    "!!int ",
    "!!float ",
    "!!timestamp ",
    "!!binary ",
    "!!python/object:os.system ",
    "2001-13-01",
    "2001-02-03",
    "0x1F",
    "1_000",
    "1:00",
    ".nan",
    ".inf",
    "~",
    "3",
    "-1",
    "1e400",
    "1" * 4400,
    "yes",
    "#",
    "? ",
    "%YAML 1.1\n",
    "---",
    "...",
    "[" * 1100,
]

yaml_texts = (
    st.text()
    | st.lists(st.sampled_from(_YAML_TOKENS), max_size=12).map("".join)
    | st.one_of(config_like(SearchConfig), config_like(TrainConfig))
    .map(lambda d: yaml.safe_dump(d, allow_unicode=True))
    .flatmap(mutated)
)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    """One file that each example overwrites (hypothesis refuses function-scoped fixtures)."""
    return tmp_path_factory.mktemp("fuzz") / "config.yaml"


def _load_or_config_error(path: Path, cls: type) -> None:
    try:
        cfg = load_config(path, cls)
    except ConfigError:
        return
    assert isinstance(cfg, cls)


@FUZZ
@given(yaml_texts, config_classes)
def test_load_config_of_arbitrary_text_raises_only_config_error(config_file, text, cls):
    config_file.write_text(text, encoding="utf-8", errors="surrogatepass")
    _load_or_config_error(config_file, cls)


@FUZZ
@given(
    st.binary(max_size=64) | st.text().map(lambda t: t.encode("utf-16", "surrogatepass")),
    config_classes,
)
def test_load_config_of_arbitrary_bytes_raises_only_config_error(config_file, raw, cls):
    config_file.write_bytes(raw)
    _load_or_config_error(config_file, cls)


# ---------------------------------------------------------------------------
# The crashes these properties found, kept as plain examples with their messages
# ---------------------------------------------------------------------------

_EMPTY = "Genotype(normal=[], normal_concat={}, reduce=[], reduce_concat=[2])"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            _EMPTY.format("[" + "1" * 4400 + "]"),
            "integer of 4400 digits is too long",
        ),  # was ValueError
        (_EMPTY.format("range(2, 100000000000)"), "range of more than"),  # was MemoryError
        (_EMPTY.format("(" * 1100 + ")" * 1100), "nested more than"),  # was RecursionError
    ],
)
def test_parse_refuses_text_that_would_exhaust_python(text, message):
    with pytest.raises(GenotypeError, match=message):
        Genotype.parse(text)


@pytest.mark.parametrize("text", ["1" * 4400, "[" * 100_000])  # were ValueError, RecursionError
def test_from_json_refuses_json_python_cannot_decode(text):
    with pytest.raises(GenotypeError, match="invalid genotype JSON"):
        Genotype.from_json(text)


# Were OverflowError in float(), and ValueError when the message printed the int.
@pytest.mark.parametrize("value", [10**400, 10**5000], ids=["400 digits", "5000 digits"])
def test_config_refuses_an_int_past_64_bits(value):
    with pytest.raises(ConfigError, match="'optim.weight_lr': integer out of range"):
        config_from_dict({"optim": {"weight_lr": value}})


# Were UnicodeDecodeError, IndexError, ValueError, AttributeError and RecursionError.
@pytest.mark.parametrize(
    "raw",
    [
        b"\x80epochs: 3",
        b"epochs: !!int",
        b"epochs: 2001-13-01",
        b"epochs: !!timestamp x",
        b"[" * 10_000,
    ],
    ids=["not utf-8", "empty int", "bad date", "bad timestamp", "deep"],
)
def test_load_config_reports_unreadable_yaml_as_config_error(tmp_path, raw):
    path = tmp_path / "config.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path)


# ---------------------------------------------------------------------------
# Numeric config keys: whatever number a key gets, a config that validates
# holds only finite numbers within the limits a run can meet.
# ---------------------------------------------------------------------------


def _numeric_paths(cls: type, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], type]]:
    hints = typing.get_type_hints(cls)
    paths = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            paths += _numeric_paths(kind, (*prefix, f.name))
        elif kind in (int, float):
            paths.append(((*prefix, f.name), kind))
    return paths


any_number = (
    st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([2**32 - 1, 2**32, -1, 0, 10**9, float("inf"), float("nan"), 1e308])
)


def _assert_runnable(cfg) -> None:
    from gradnas import limits

    for path, _ in _numeric_paths(type(cfg)):
        value = cfg
        for part in path:
            value = getattr(value, part)
        assert math.isfinite(value), path
    assert 0 <= cfg.seed <= limits.SEED_MAX
    assert cfg.threads <= limits.THREADS_MAX and cfg.data.batch_size <= limits.BATCH_MAX
    assert cfg.network.C <= limits.WIDTH_MAX and cfg.network.layers <= limits.CELLS_MAX
    sizes = limits.split_sizes(cfg.data.name, cfg.data.val_fraction, cfg.data.test_fraction)
    assert min(sizes.values()) >= 1


@FUZZ
@given(st.data())
def test_any_number_in_a_numeric_key_gives_a_runnable_config_or_config_error(data):
    cls = data.draw(config_classes)
    path, _ = data.draw(st.sampled_from(_numeric_paths(cls)))
    value = data.draw(any_number)
    cfg = {}
    section = cfg
    for part in path[:-1]:
        section = section.setdefault(part, {})
    section[path[-1]] = value
    try:
        result = config_from_dict(cfg, cls)
    except ConfigError as err:
        assert "\n" not in str(err) and len(str(err)) < 400
        return
    _assert_runnable(result)


# ---------------------------------------------------------------------------
# Checkpoints that load but do not fit: missing or mistyped entries anywhere.
# ---------------------------------------------------------------------------


def _entry_paths(state, prefix=()):
    """Paths to the entries of a checkpoint's nested dicts (tensors' insides excluded)."""
    paths = []
    if isinstance(state, dict):
        for key, value in state.items():
            paths.append((*prefix, key))
            paths += _entry_paths(value, (*prefix, key))
    return paths


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    from gradnas.cli import main

    root = tmp_path_factory.mktemp("fuzz_ckpt")
    config = root / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "epochs": 1,
                "threads": 1,
                "plots": False,
                "data": {"batch_size": 256},
                "network": {"C": 2, "layers": 3, "steps": 2, "multiplier": 2},
            }
        )
    )
    assert (
        main(["search", "--config", str(config), "--out", str(root / "run"), "--no-progress"]) == 0
    )
    return root / "run"


mistyped = st.sampled_from([None, "x", 3, -1, 2.5, [], {}, [1, 2], {"a": 1}])


@settings(max_examples=8, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_a_checkpoint_with_a_missing_or_mistyped_entry_resumes_or_is_one_error(
    finished_search, tmp_path_factory, data
):
    import shutil

    import torch

    from gradnas.cli import main
    from gradnas.engine.files import load_checkpoint

    run = tmp_path_factory.mktemp("case") / "run"
    shutil.copytree(finished_search, run)
    (run / "checkpoint.prev.pt").unlink(
        missing_ok=True
    )  # no fallback: the damaged one must be judged
    state = load_checkpoint(run / "checkpoint.pt")
    # Each top-level entry alike (the config and the weights would crowd out the rest).
    top = data.draw(st.sampled_from(sorted(state, key=str)))
    inner = [p for p in _entry_paths(state) if p[0] == top and len(p) > 1]
    path = (
        data.draw(st.sampled_from(sorted(inner, key=str)))
        if inner and data.draw(st.booleans())
        else (top,)
    )
    parent = state
    for part in path[:-1]:
        parent = parent[part]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(mistyped)
    torch.save(state, run / "checkpoint.pt")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["search", "--resume", str(run), "--no-progress"])
    assert code in (0, 2), (path, err.getvalue())
    if code == 2:
        assert err.getvalue().startswith("gradnas: error:") and err.getvalue().count("\n") == 1
