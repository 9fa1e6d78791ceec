"""What a search run folder records about its space and data: ``space.json``.

``{"space": <name or factory reference>, ..., "in_channels": 1,
"num_classes": 10, "image_shape": [1, 8, 8]}``: enough for ``--resume``,
``gradnas train RUN_DIR``, ``gradnas export`` and ``gradnas inspect`` to
build the space and its networks again without reloading the data set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spaces.contract import SearchSpace
from .files import RunDirError, write_text

SPACE_FILE = "space.json"


@dataclass(frozen=True)
class Shapes:
    """The data's image shape and class count."""

    image_shape: tuple[int, ...]  # (channels, height, width) of one image
    num_classes: int

    @property
    def in_channels(self) -> int:
        return self.image_shape[0]

    @classmethod
    def of(cls, splits: Any) -> Shapes:
        """The shapes of a :class:`~gradnas.data.sources.Splits` (one image is read)."""
        image = splits.train[0][0]
        return cls(tuple(int(n) for n in image.shape), int(splits.num_classes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "image_shape": list(self.image_shape),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shapes:
        return cls(tuple(int(n) for n in data["image_shape"]), int(data["num_classes"]))


def write_space_record(out: Path, space: SearchSpace, shapes: Shapes) -> None:
    write_text(
        out / SPACE_FILE, json.dumps({**space.record(), **shapes.to_dict()}, indent=2) + "\n"
    )


def read_space_record(run_dir: Path) -> dict[str, Any] | None:
    """The run folder's ``space.json``, or None for a folder written before it existed."""
    path = Path(run_dir) / SPACE_FILE
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        Shapes.from_dict(data)
    except (ValueError, KeyError, TypeError) as err:
        raise RunDirError(f"{path} is not a gradnas space record ({err})") from None
    return data
