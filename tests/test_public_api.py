"""The public API: what the packages export, what the README uses, and what importing costs."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gradnas

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PUBLIC_PACKAGES = ["gradnas", "gradnas.mutables", "gradnas.mutators", "gradnas.algorithms"]


def library_section() -> str:
    start = README.index("## The library\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_name_in_all_exists(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_top_level_all_lists_exactly_the_lazy_exports():
    assert sorted(gradnas.__all__) == sorted(["__version__", *gradnas._EXPORTS])


def test_top_level_names_are_the_packages_own_objects():
    for name, module in gradnas._EXPORTS.items():
        assert getattr(gradnas, name) is getattr(importlib.import_module(module), name)


def test_an_unknown_top_level_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Dartz'"):
        gradnas.Dartz  # noqa: B018


def test_every_gradnas_import_in_the_readme_resolves():
    names = []
    for block in python_blocks(README):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gradnas"):
                names += [(node.module, alias.name) for alias in node.names]
    assert len(names) >= 5  # the README's examples import from gradnas
    unresolved = [
        f"{mod}.{name}" for mod, name in names if not hasattr(importlib.import_module(mod), name)
    ]
    assert unresolved == []


def test_the_names_the_readme_lists_per_package_are_exported():
    # "- `gradnas.mutables`: `DifferentiableOP` ..., `GumbelOP` ..." in the library section
    section = library_section()
    for package in ("gradnas.mutables", "gradnas.mutators", "gradnas.algorithms"):
        item = re.search(rf"^- `{re.escape(package)}`:(.*?)(?=^- |\Z)", section, flags=re.S | re.M)
        assert item is not None, package
        listed = set(re.findall(r"`([A-Za-z_]+)`", item.group(1)))
        exported = set(importlib.import_module(package).__all__)
        # `export`, `step` and the like are methods; names that look like classes must be exported
        classes = {name for name in listed if name[0].isupper()}
        assert classes and classes <= exported, (package, classes - exported)


def test_the_readme_library_example_runs_as_written(capsys):
    blocks = python_blocks(library_section())
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    genotype = namespace["genotype"]
    assert isinstance(genotype, gradnas.Genotype)
    assert str(genotype) in capsys.readouterr().out
    # the example's step ran: its metrics are finite numbers
    assert set(namespace["metrics"]) >= {"train_loss", "val_loss"}
    assert namespace["out"].shape == (2, 8, 4, 4)


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_import_gradnas_and_building_the_cli_do_not_import_torch():
    # `gradnas --help` must start fast; torch alone takes seconds to import
    out = _run(
        "import sys, gradnas, gradnas.cli\n"
        "gradnas.cli.build_parser().format_help()\n"
        "print('torch' in sys.modules)"
    )
    assert out.strip() == "False"


def test_version_is_the_packages_and_the_cli_prints_it():
    from importlib.metadata import version

    assert version("gradnas") == gradnas.__version__
    out = subprocess.run(
        [sys.executable, "-m", "gradnas", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"gradnas {gradnas.__version__}"


def test_the_package_ships_its_type_information():
    assert (Path(gradnas.__file__).parent / "py.typed").is_file()
