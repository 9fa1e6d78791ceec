"""The published configs, shipped inside the package so that ``--config NAME`` works after a plain
``pip install`` (no clone needed).

``search/NAME.yaml`` are ``gradnas search`` configs and ``train/NAME.yaml`` are ``gradnas train``
configs; the first comment line of each says what it reproduces. ``gradnas configs`` lists them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..config import ConfigError

KINDS = ("search", "train")


def shipped_configs(kind: str) -> dict[str, Path]:
    """Name -> file of every shipped config of ``kind`` (``search`` or ``train``), sorted by name.

    >>> sorted(shipped_configs("train"))
    ['darts-cifar10', 'fashion-mnist']
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = Path(str(resources.files(__name__) / kind))
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def describe(path: Path) -> str:
    """The first comment line of a shipped config, without its ``#``."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip().rstrip(":,")
    return ""


def resolve_config(ref: str, kind: str) -> Path:
    """The file ``ref`` names: a path to a YAML file, or the name of a shipped ``kind`` config.

    A ``ref`` with a folder separator or a ``.yaml`` / ``.yml`` ending, or that names an existing
    file, is a path (read later, with its own error when missing); anything else must be a
    shipped config's name.
    """
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1 or path.is_file():
        return path
    configs = shipped_configs(kind)
    if ref in configs:
        return configs[ref]
    raise ConfigError(
        f"--config {ref!r} is neither a file nor a shipped {kind} config; shipped {kind} configs: "
        f"{', '.join(configs)} (see `gradnas configs`)"
    )
