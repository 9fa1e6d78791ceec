"""An Auto-DeepLab architecture: one cell genotype and one network-level path.

A plain immutable value, like :class:`gradnas.genotype.Genotype`: JSON on
disk, a one-line text form read by a small parser (never ``eval``), and
validated on construction so a network is only ever built from a sound one.

Cell input indices follow gradnas' DARTS convention: 0 is h^{l-2} (the output
two layers back), 1 is h^{l-1} (the previous layer's output after its
transition), 2.. are the cell's earlier blocks. Every block is an output of
the cell (Auto-DeepLab concatenates all B blocks).

>>> a = AutoDeepLabArch.parse("cell=sep_conv_3x3@1+skip_connect@0 path=0,1,1")
>>> a.path, a.cell[0]
((0, 1, 1), (('sep_conv_3x3', 1), ('skip_connect', 0)))
>>> AutoDeepLabArch.from_json(a.to_json()) == a == AutoDeepLabArch.parse(str(a))
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...genotype import PRIMITIVES, Cell, CellLike, GenotypeError, _as_cell
from .layout import check_path, rate

_FIELDS = ("cell", "path")
# An op name of the text form: what the op table's names are made of.
_OP = r"[A-Za-z0-9_]+"
_EDGE = re.compile(rf"({_OP})@(\d{{1,4}})")
_TEXT = re.compile(r"cell=(\S+)\s+path=(\S+)")


@dataclass(frozen=True, init=False)
class AutoDeepLabArch:
    """The cell shared by every layer, and the level (rate 4 * 2**level) of each layer."""

    cell: Cell
    path: tuple[int, ...]

    def __init__(
        self, cell: CellLike, path: Sequence[int], primitives: Sequence[str] = PRIMITIVES
    ) -> None:
        frozen = _as_cell(cell, "cell")
        if not frozen:
            raise GenotypeError("cell: a cell needs at least one block")
        for j, node in enumerate(frozen):
            if not node:
                raise GenotypeError(f"cell, block {j}: a block needs at least one input")
            for e, (op, i) in enumerate(node):
                where = f"cell, block {j}, edge {e}"
                if op not in primitives:
                    raise GenotypeError(
                        f"{where}: unknown op {op!r}; known ops: {list(primitives)}"
                    )
                # Block j sees h^{l-2}, h^{l-1} and the j blocks before it.
                if i > j + 1:
                    raise GenotypeError(f"{where}: input index {i} out of range 0..{j + 1}")
        if isinstance(path, (str, bytes)) or not isinstance(path, Sequence):
            raise GenotypeError(f"path: expected a list of levels, got {type(path).__name__}")
        try:
            levels = tuple(check_path(path))
        except ValueError as err:
            raise GenotypeError(f"path: {err}") from None
        object.__setattr__(self, "cell", frozen)
        object.__setattr__(self, "path", levels)

    @property
    def rates(self) -> tuple[int, ...]:
        """The downsampling rate of each layer (4, 8, 16 or 32)."""
        return tuple(rate(level) for level in self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": [[[op, i] for op, i in node] for node in self.cell],
            "path": list(self.path),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AutoDeepLabArch:
        """Inverse of ``to_dict``; missing or unknown keys are named in the error."""
        if not isinstance(d, Mapping):
            raise GenotypeError(
                f"expected a dict with keys {list(_FIELDS)}, got {type(d).__name__}"
            )
        missing = [k for k in _FIELDS if k not in d]
        unknown = sorted(str(k) for k in d if k not in _FIELDS)
        if missing:
            raise GenotypeError(f"missing key(s): {', '.join(missing)}")
        if unknown:
            raise GenotypeError(f"unknown key(s): {', '.join(unknown)}; expected {list(_FIELDS)}")
        return cls(d["cell"], d["path"])

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> AutoDeepLabArch:
        try:
            d = json.loads(text)
        except (ValueError, TypeError, RecursionError) as err:
            raise GenotypeError(f"invalid architecture JSON: {err}") from None
        return cls.from_dict(d)

    def __str__(self) -> str:
        """``cell=op@input+op@input|... path=level,level,...``: blocks split by ``|``."""
        cell = "|".join("+".join(f"{op}@{i}" for op, i in node) for node in self.cell)
        return f"cell={cell} path={','.join(str(level) for level in self.path)}"

    @classmethod
    def parse(cls, text: str) -> AutoDeepLabArch:
        """Read the text form of ``__str__``; a malformed part is named in the error."""
        if not isinstance(text, str):
            raise GenotypeError(f"expected a string, got {type(text).__name__}")
        match = _TEXT.fullmatch(text.strip())
        if match is None:
            raise GenotypeError(
                f"expected 'cell=op@input+op@input|... path=level,level,...', got {text[:80]!r}"
            )
        cell_text, path_text = match.groups()
        cell: list[list[tuple[str, int]]] = []
        for j, block in enumerate(cell_text.split("|")):
            node = []
            for edge in block.split("+"):
                found = _EDGE.fullmatch(edge)
                if found is None:
                    raise GenotypeError(f"cell, block {j}: expected 'op@input', got {edge!r}")
                node.append((found.group(1), int(found.group(2))))
            cell.append(node)
        levels = []
        for layer, token in enumerate(path_text.split(",")):
            if not token.isdigit() or len(token) > 2:
                raise GenotypeError(f"path[{layer}]: expected a level 0..3, got {token!r}")
            levels.append(int(token))
        return cls(cell, levels)


# The architecture Auto-DeepLab found on Cityscapes (Liu et al., CVPR 2019, Figure 3),
# as released in tensorflow/models research/deeplab/core/nas_network.py (``hnasnet``):
# operations ['atrous_5x5', 'separable_3x3_2', 'separable_3x3_2', 'atrous_3x3',
# 'separable_3x3_2', 'separable_3x3_2', 'separable_5x5_2', 'separable_5x5_2',
# 'separable_5x5_2', 'atrous_5x5'] on hidden states [1, 0, 1, 0, 3, 1, 4, 2, 3, 5], and
# backbone [0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1]. In the release state 0 is h^{l-1} and 1 is
# h^{l-2} (nas_cell.py, _cell_base), the reverse of gradnas' order, so 0 and 1 are swapped
# here. 'separable_kxk_2' (two stacked separable convs) is DARTS' sep_conv_kxk; the
# release's 'atrous_kxk' (rate 2) is a full k x k convolution, gradnas' dil_conv_kxk a
# depthwise-separable one (see the weight counts in the README).
AUTO_DEEPLAB = AutoDeepLabArch(
    cell=[
        [("dil_conv_5x5", 0), ("sep_conv_3x3", 1)],
        [("sep_conv_3x3", 0), ("dil_conv_3x3", 1)],
        [("sep_conv_3x3", 3), ("sep_conv_3x3", 0)],
        [("sep_conv_5x5", 4), ("sep_conv_5x5", 2)],
        [("sep_conv_5x5", 3), ("dil_conv_5x5", 5)],
    ],
    path=[0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1],
)
