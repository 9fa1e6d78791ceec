"""Finding an architecture and its space from what a user names: a published
genotype, an architecture file, an arch string, or a search run folder.

A search run folder keeps ``space.json`` (the space and the data's shapes),
so its architecture is rebuilt in the space it was found in, whichever that
is: DARTS cells, NAS-Bench-201 cells or a custom module. Folders and files
from before ``space.json`` existed are read as they were (``genotype.json``:
DARTS cells; ``arch.json``: NAS-Bench-201 cells, sized by the folder's
``config.yaml``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import SPACES, ConfigError
from .engine.files import RunDirError
from .engine.run_record import Shapes, read_space_record
from .genotype import PUBLISHED, GenotypeError
from .genotype_file import read_genotype_file
from .methods import module_space
from .spaces.contract import SearchSpace
from .spaces.darts.space import DartsSpace
from .spaces.module_space import ModuleSpace
from .spaces.nb201.space import NB201Space


@dataclass(frozen=True)
class DartsSize:
    """The size a DARTS genotype's fixed network is built at (the train config's network)."""

    C: int = 16
    layers: int = 6
    auxiliary: bool = False


@dataclass(frozen=True)
class Resolved:
    """An architecture, the space it belongs to, and the data shapes when known."""

    space: SearchSpace
    arch: Any
    shapes: Shapes | None
    record: dict[str, Any]  # what space.json of a run built from it keeps (shapes added there)


def _darts(size: DartsSize) -> DartsSpace:
    return DartsSpace(fixed_C=size.C, fixed_layers=size.layers, fixed_auxiliary=size.auxiliary)


def _nb201_from_config(run_dir: Path) -> NB201Space:
    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        nb = cfg.get("nb201", {})
        return NB201Space(C=int(nb.get("C", 16)), N=int(nb.get("N", 5)))
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return NB201Space()


def space_of_record(record: dict[str, Any], size: DartsSize, factory: Any = None) -> SearchSpace:
    """The space a ``space.json`` names; ``factory`` replaces a custom space's
    recorded reference (the Python API's own factory object)."""
    name = record.get("space")
    shapes = Shapes.from_dict(record)
    if name == "darts":
        return _darts(size)
    if name == "nb201":
        return NB201Space(C=int(record.get("C", 16)), N=int(record.get("N", 5)))
    if factory is not None and name not in SPACES:
        return ModuleSpace(factory, str(name), shapes.image_shape, shapes.num_classes)
    if isinstance(name, str) and name not in SPACES:
        return module_space(name, shapes.image_shape, shapes.num_classes)
    raise RunDirError(f"space.json names no known space: {name!r}")


def _read(space: SearchSpace, path: Path) -> Any:
    if isinstance(space, DartsSpace):  # size cap, UTF-8 check, line and column in errors
        return read_genotype_file(path)
    try:
        return space.read_arch(path.read_text())
    except (GenotypeError, ValueError) as err:
        raise GenotypeError(f"{path}: {err}") from None


def resolve_architecture(spec: str, size: DartsSize = DartsSize(), factory: Any = None) -> Resolved:
    """What ``spec`` names: a published genotype (DARTS_V2), a search or train run
    folder, an architecture file (``genotype.json`` / ``.txt``, ``arch.json`` /
    ``.txt``) or a NAS-Bench-201 arch string."""
    if spec in PUBLISHED:
        return Resolved(_darts(size), PUBLISHED[spec], None, {"space": "darts"})
    path = Path(spec)
    if path.is_dir():
        record = read_space_record(path)
        if record is not None:
            try:
                space = space_of_record(record, size, factory)
            except ConfigError as err:
                raise RunDirError(f"{path}: {err}") from None
            arch_path = path / f"{space.arch_file}.json"
            if not arch_path.is_file():
                raise GenotypeError(
                    f"{path} holds no {arch_path.name}; has its search written an architecture yet?"
                )
            return Resolved(space, _read(space, arch_path), Shapes.from_dict(record), record)
        if (path / "genotype.json").is_file():
            return Resolved(
                _darts(size), _read(_darts(size), path / "genotype.json"), None, {"space": "darts"}
            )
        if (path / "arch.json").is_file():
            space = _nb201_from_config(path)
            return Resolved(space, _read(space, path / "arch.json"), None, space.record())
        raise GenotypeError(
            f"{path} is a folder without space.json, genotype.json or arch.json; "
            f"is it a gradnas search run?"
        )
    if path.is_file():
        try:
            return Resolved(_darts(size), read_genotype_file(path), None, {"space": "darts"})
        except GenotypeError as darts_err:
            try:  # not UTF-8 is a ValueError too
                text = path.read_text()
                return Resolved(
                    NB201Space(), NB201Space().read_arch(text), None, NB201Space().record()
                )
            except (GenotypeError, ValueError):
                pass
            if (path.parent / "space.json").is_file():
                return resolve_architecture(str(path.parent), size)
            raise GenotypeError(str(darts_err)) from None
    if spec.startswith("|"):
        try:
            return Resolved(NB201Space(), NB201Space().read_arch(spec), None, NB201Space().record())
        except (GenotypeError, ValueError) as err:
            raise GenotypeError(f"{spec!r} is not a NAS-Bench-201 arch string: {err}") from None
    raise GenotypeError(
        f"genotype {spec!r} is neither a published name ({', '.join(PUBLISHED)}), "
        f"a genotype or arch file, a NAS-Bench-201 arch string, nor a search run folder"
    )


def plot_search_run(run_dir: Path, renderer: str = "auto") -> list[Path]:
    """Every plot of a search run folder, drawn by its space (``gradnas plot RUN_DIR``).

    A folder without ``space.json`` (written before it existed) is drawn as
    DARTS cells from the files it holds.
    """
    from .plots import plot_run
    from .plots.run import read_metrics

    run_dir = Path(run_dir)
    record = read_space_record(run_dir) if run_dir.is_dir() else None
    if record is None and not (run_dir / "arch.json").is_file():
        return plot_run(run_dir, renderer=renderer)
    resolved = resolve_architecture(str(run_dir))
    metrics = run_dir / "metrics.csv"
    history = read_metrics(metrics) if metrics.is_file() else []
    alphas = run_dir / "alphas.json"
    has_alphas = alphas.is_file() and bool(json.loads(alphas.read_text()).get("choices"))
    return resolved.space.draw_plots(run_dir, resolved.arch, history, has_alphas, renderer)
