"""Genotypes: the discrete architecture a search exports and a retrain builds.

A genotype is a plain immutable value (no torch), so it can be written to a
run folder, read back, compared and hashed without building a model. Each cell
is a tuple of nodes and each node a tuple of ``(op_name, input_index)`` edges,
so a node may keep any number of inputs: DARTS keeps two, argmax derivations
(SNAS, NAS-Bench-201 style) may keep none or three. Input indices follow
DARTS: 0 is c_{k-2}, 1 is c_{k-1}, 2.. are the cell's intermediate nodes.

``Genotype.parse`` reads the notation of the published DARTS-family
``genotypes.py`` files with a small parser instead of ``eval``, so a genotype
string from a log or a config can never run code.

>>> g = Genotype.parse(
...     "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)],"
...     " normal_concat=range(2, 3), reduce=[('max_pool_3x3', 0),"
...     " ('max_pool_3x3', 1)], reduce_concat=[2])"
... )
>>> g.normal
((('sep_conv_3x3', 0), ('skip_connect', 1)),)
>>> g.validate(steps=1) == Genotype.from_dict(g.to_dict())
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from .errors import GradnasError

PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

Edge = tuple[str, int]
Node = tuple[Edge, ...]
Cell = tuple[Node, ...]
# What the constructor accepts: lists or tuples at every level, as JSON and
# the published genotypes.py files write them; it freezes them into a Cell.
EdgeLike = tuple[str, int] | Sequence[str | int]
CellLike = Sequence[Sequence[EdgeLike]]

_CELLS = ("normal", "reduce")
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


class GenotypeDict(TypedDict):
    """``Genotype.to_dict()``, as written to a run folder's JSON: each cell a
    list of nodes, each node a list of ``[op, index]`` edges."""

    normal: list[list[list[str | int]]]
    normal_concat: list[int]
    reduce: list[list[list[str | int]]]
    reduce_concat: list[int]


class GenotypeError(GradnasError, ValueError):
    """A genotype, or the text/dict it was read from, is malformed."""


def _is_int(x: Any) -> bool:
    # bool is an int subclass; True as an input index is almost surely a bug.
    return isinstance(x, int) and not isinstance(x, bool)


def _op_name(op: Any, where: str) -> str:
    # Quotes, backslashes and control characters are refused so that __str__
    # can quote every name plainly and parse(str(g)) == g holds without escapes.
    if not isinstance(op, str) or not op or not op.isprintable() or any(c in op for c in "'\"\\"):
        raise GenotypeError(
            f"{where}: op name must be a non-empty string without quotes, "
            f"backslashes or control characters, got {op!r}"
        )
    return op


def _index(i: Any, where: str) -> int:
    if not _is_int(i):
        raise GenotypeError(f"{where}: index must be an int, got {i!r}")
    index: int = i  # _is_int checked it
    if index < 0:
        raise GenotypeError(f"{where}: index must be >= 0, got {index}")
    return index


def _as_cell(value: Any, key: str) -> Cell:
    """Check the shape of one cell and freeze it into nested tuples."""
    if not isinstance(value, (list, tuple)):
        raise GenotypeError(f"{key}: expected a list of nodes, got {type(value).__name__}")
    nodes: list[Node] = []
    for j, node in enumerate(value):
        if not isinstance(node, (list, tuple)):
            raise GenotypeError(f"{key}, node {j}: expected a list of edges, got {node!r}")
        edges: list[Edge] = []
        for e, edge in enumerate(node):
            where = f"{key}, node {j}, edge {e}"
            if not isinstance(edge, (list, tuple)) or len(edge) != 2:
                raise GenotypeError(f"{where}: expected an (op, index) pair, got {edge!r}")
            edges.append((_op_name(edge[0], where), _index(edge[1], where)))
        nodes.append(tuple(edges))
    return tuple(nodes)


def _as_concat(value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple, range)):
        raise GenotypeError(f"{key}: expected a list of ints, got {type(value).__name__}")
    return tuple(_index(i, f"{key}[{n}]") for n, i in enumerate(value))


@dataclass(frozen=True, init=False)
class Genotype:
    """Two cells (normal, reduce) and the node indices each cell concatenates.

    The constructor takes lists or tuples (and a ``range`` for a concat) and
    checks and freezes them, so the fields are always nested tuples.
    """

    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]

    def __init__(
        self,
        normal: CellLike,
        normal_concat: Sequence[int],
        reduce: CellLike,
        reduce_concat: Sequence[int],
    ) -> None:
        # Lists become tuples so that equal content means equal and hashable.
        # Frozen: the fields are set once, here, past the dataclass' __setattr__.
        object.__setattr__(self, "normal", _as_cell(normal, "normal"))
        object.__setattr__(self, "normal_concat", _as_concat(normal_concat, "normal_concat"))
        object.__setattr__(self, "reduce", _as_cell(reduce, "reduce"))
        object.__setattr__(self, "reduce_concat", _as_concat(reduce_concat, "reduce_concat"))

    @classmethod
    def from_flat(
        cls,
        normal_pairs: Sequence[Edge],
        normal_concat: Iterable[int],
        reduce_pairs: Sequence[Edge],
        reduce_concat: Iterable[int],
        inputs_per_node: int = 2,
    ) -> Genotype:
        """Build from DARTS' flat (op, index) lists, ``inputs_per_node`` pairs per node."""
        if not _is_int(inputs_per_node) or inputs_per_node < 1:
            raise GenotypeError(f"inputs_per_node must be a positive int, got {inputs_per_node!r}")
        cells: list[list[list[Edge]]] = []
        for key, given in (("normal", normal_pairs), ("reduce", reduce_pairs)):
            pairs = list(given)
            if len(pairs) % inputs_per_node:
                raise GenotypeError(
                    f"{key}: {len(pairs)} pairs is not a multiple of "
                    f"inputs_per_node={inputs_per_node}"
                )
            cells.append(
                [pairs[i : i + inputs_per_node] for i in range(0, len(pairs), inputs_per_node)]
            )
        return cls(cells[0], tuple(normal_concat), cells[1], tuple(reduce_concat))

    def to_dict(self) -> GenotypeDict:
        """JSON-friendly dict: cells as lists of nodes of [op, index] lists."""

        def cell(nodes: Cell) -> list[list[list[str | int]]]:
            return [[[op, i] for op, i in node] for node in nodes]

        return {
            "normal": cell(self.normal),
            "normal_concat": list(self.normal_concat),
            "reduce": cell(self.reduce),
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Genotype:
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
        return cls(**{k: d[k] for k in _FIELDS})

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            d = json.loads(text)
        # ValueError: malformed JSON, or an int past Python's digit limit;
        # RecursionError: arrays nested deeper than the decoder can follow.
        except (ValueError, TypeError, RecursionError) as err:
            raise GenotypeError(f"invalid genotype JSON: {err}") from None
        return cls.from_dict(d)

    @classmethod
    def parse(cls, text: str) -> Genotype:
        """Read ``Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)``.

        Flat cell lists are grouped two pairs per node (DARTS); a list of lists
        of pairs gives one node per inner list (any in-degree).
        """
        return _Parser(text).genotype()

    def __str__(self) -> str:
        # Flat DARTS form when every node has two inputs, else one list per node.
        flat = all(len(node) == 2 for key in _CELLS for node in getattr(self, key))

        def edges(es: Iterable[Edge]) -> str:
            return ", ".join(f"('{op}', {i})" for op, i in es)

        def cell(nodes: Cell) -> str:
            if flat:
                return "[" + edges(e for node in nodes for e in node) + "]"
            return "[" + ", ".join(f"[{edges(node)}]" for node in nodes) + "]"

        return (
            f"Genotype(normal={cell(self.normal)}, normal_concat={list(self.normal_concat)}, "
            f"reduce={cell(self.reduce)}, reduce_concat={list(self.reduce_concat)})"
        )

    def validate(
        self, primitives: Iterable[str] = PRIMITIVES, steps: int | None = None
    ) -> Genotype:
        """Check op names, each node's reachable inputs, concat and node count; return self."""
        allowed = tuple(primitives)
        for key in _CELLS:
            nodes: Cell = getattr(self, key)
            if steps is not None and len(nodes) != steps:
                raise GenotypeError(f"{key} cell has {len(nodes)} nodes, expected steps={steps}")
            for j, node in enumerate(nodes):
                for e, (op, i) in enumerate(node):
                    where = f"{key} cell, node {j}, edge {e}"
                    if op not in allowed:
                        raise GenotypeError(
                            f"{where}: unknown op {op!r}; known ops: {list(allowed)}"
                        )
                    # Node j sees the two cell inputs and the j nodes before it.
                    if i > j + 1:
                        raise GenotypeError(f"{where}: input index {i} out of range 0..{j + 1}")
            concat, top = getattr(self, f"{key}_concat"), len(nodes) + 1
            if not concat:
                raise GenotypeError(f"{key}_concat is empty")
            if max(concat) > top:
                raise GenotypeError(f"{key}_concat: index {max(concat)} out of range 0..{top}")
            if key == "reduce" and min(concat) < 2:
                # A reduction cell's inputs 0 and 1 keep the size before the reduction, so
                # concatenating one with its (halved) nodes cannot work.
                raise GenotypeError(
                    f"reduce_concat: index {min(concat)} is an input of the reduction cell; "
                    f"it concatenates intermediate nodes 2..{top}"
                )
            if len(set(concat)) != len(concat):
                raise GenotypeError(f"{key}_concat has duplicate indices: {list(concat)}")
        return self


# ---------------------------------------------------------------------------
# Parser for the genotypes.py notation. Grammar (Python literal subset):
#   top   := [NAME '='] 'Genotype' '(' kw (',' kw)* [','] ')'
#   kw    := NAME '=' value
#   value := STR | INT | '[' items ']' | '(' items ')' | 'range' '(' INT [',' INT] ')'
# ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<skip>\s+|\#[^\n]*|\\\n)
  | (?P<str>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<int>-?\d+)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<punct>[()\[\],=])
""",
    re.VERBOSE,
)


# Bounds on what a text may ask the parser to build. A genotype nests three
# levels (cell, node, edge), a few more with redundant parentheses; deeper text
# would exhaust Python's recursion limit. A concat range indexes a cell's
# nodes; a huge one would exhaust memory.
_MAX_DEPTH = 16
_MAX_RANGE = 10_000


def _int(token: str, pos: int) -> int:
    try:
        return int(token)
    except ValueError:  # past Python's limit on digits converted (4300 by default)
        raise GenotypeError(
            f"at position {pos}: integer of {len(token)} digits is too long"
        ) from None


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise GenotypeError(f"expected genotype text, got {type(text).__name__}")
        self.tokens: list[tuple[str, Any, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None and text[pos] in "'\"":
                raise GenotypeError(
                    f"at position {pos}: unterminated string, or one with a backslash or newline"
                )
            if m is None:
                raise GenotypeError(f"unexpected character {text[pos]!r} at position {pos}")
            kind, tok = m.lastgroup, m.group()
            if kind is None:  # never: every alternative of _TOKEN is a named group
                raise GenotypeError(f"unexpected character {text[pos]!r} at position {pos}")
            if kind != "skip":
                value = tok[1:-1] if kind == "str" else _int(tok, pos) if kind == "int" else tok
                self.tokens.append((kind, value, pos))
            pos = m.end()
        self.tokens.append(("end", "", len(text)))
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, Any, int]:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]  # 'end' repeats

    def fail(self, expected: str) -> GenotypeError:
        kind, value, pos = self.peek()
        found = "end of text" if kind == "end" else repr(value)
        return GenotypeError(f"at position {pos}: expected {expected}, found {found}")

    def take(self, kind: str, value: str | None = None) -> Any:
        k, v, _ = self.peek()
        if k != kind or (value is not None and v != value):
            raise self.fail(repr(value) if value is not None else kind)
        self.i += 1
        return v

    def accept(self, value: str) -> bool:
        if self.peek()[0] == "punct" and self.peek()[1] == value:
            self.i += 1
            return True
        return False

    def genotype(self) -> Genotype:
        if self.peek()[0] == "name" and self.peek(1)[:2] == ("punct", "="):
            self.i += 2  # optional "NAME =" assignment, as in genotypes.py
        self.take("name", "Genotype")
        self.take("punct", "(")
        fields: dict[str, Any] = {}
        while not self.accept(")"):
            key_pos = self.peek()[2]
            key = self.take("name")
            if key not in _FIELDS:
                raise GenotypeError(
                    f"at position {key_pos}: unknown keyword {key!r}; "
                    f"expected one of {list(_FIELDS)}"
                )
            if key in fields:
                raise GenotypeError(f"at position {key_pos}: keyword {key!r} given twice")
            self.take("punct", "=")
            fields[key] = self.value()
            if not self.accept(","):
                self.take("punct", ")")
                break
        self.take("end")
        missing = [k for k in _FIELDS if k not in fields]
        if missing:
            raise GenotypeError(f"missing keyword(s): {', '.join(missing)}")
        cells = {k: _group_cell(fields[k], k) for k in _CELLS}
        return Genotype(
            cells["normal"], fields["normal_concat"], cells["reduce"], fields["reduce_concat"]
        )

    def value(self, depth: int = 0) -> Any:
        kind, v, pos = self.peek()
        if kind in ("str", "int"):
            self.i += 1
            return v
        if kind == "name" and v == "range":
            self.i += 1
            self.take("punct", "(")
            args = [self.take("int")]
            if self.accept(",") and self.peek()[0] == "int":
                args.append(self.take("int"))
                self.accept(",")
            self.take("punct", ")")
            r = range(*args)
            if r.stop - r.start > _MAX_RANGE:
                raise GenotypeError(f"at position {pos}: range of more than {_MAX_RANGE} indices")
            return list(r)
        if depth >= _MAX_DEPTH and self.peek()[:2] in (("punct", "["), ("punct", "(")):
            raise GenotypeError(f"at position {pos}: lists nested more than {_MAX_DEPTH} deep")
        if self.accept("["):
            items, _ = self.items("]", depth + 1)
            return items
        if self.accept("("):
            items, comma = self.items(")", depth + 1)
            # "(x)" is just x in Python; "(x,)" and "()" are tuples.
            return items[0] if len(items) == 1 and not comma else items
        raise self.fail("a string, int, list, tuple or range(...)")

    def items(self, close: str, depth: int) -> tuple[list[Any], bool]:
        out: list[Any] = []
        comma = False
        while not self.accept(close):
            out.append(self.value(depth))
            comma = self.accept(",")
            if not comma:
                self.take("punct", close)
                break
        return out, comma


def _is_edge(x: Any) -> bool:
    return isinstance(x, list) and len(x) == 2 and isinstance(x[0], str)


def _group_cell(items: Any, key: str) -> list[Any]:
    """Flat pair list -> 2 per node (DARTS); list of pair lists -> one node each."""
    if not isinstance(items, list):
        raise GenotypeError(f"{key}: expected a list, got {items!r}")
    if all(_is_edge(x) for x in items):
        if len(items) % 2:
            raise GenotypeError(f"{key}: flat form needs an even number of pairs, got {len(items)}")
        return [items[i : i + 2] for i in range(0, len(items), 2)]
    if all(isinstance(x, list) and not _is_edge(x) for x in items):
        return items
    raise GenotypeError(f"{key}: mixes flat (op, index) pairs with per-node lists")


# ---------------------------------------------------------------------------
# Published genotypes (facts only). DARTS_V1/V2: Liu et al., "DARTS", ICLR
# 2019, genotypes.py of github.com/quark0/darts, as reproduced verbatim in
# github.com/yuhuixu1993/PC-DARTS genotypes.py (commit 283b086); the DARTS
# repository also sets DARTS = DARTS_V2. PC_DARTS / PC_DARTS_IMAGENET: Xu et
# al., "PC-DARTS", ICLR 2020, same file, PC_DARTS_cifar (aliased PCDARTS there)
# and PC_DARTS_image.
# ---------------------------------------------------------------------------

DARTS_V1 = Genotype.from_flat(
    [
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("skip_connect", 2),
    ],
    [2, 3, 4, 5],
    [
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("avg_pool_3x3", 0),
    ],
    [2, 3, 4, 5],
)
DARTS_V2 = Genotype.from_flat(
    [
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ],
    [2, 3, 4, 5],
    [
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ],
    [2, 3, 4, 5],
)
PC_DARTS = Genotype.from_flat(
    [
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 0),
        ("dil_conv_3x3", 1),
        ("sep_conv_5x5", 0),
        ("sep_conv_3x3", 1),
        ("avg_pool_3x3", 0),
        ("dil_conv_3x3", 1),
    ],
    range(2, 6),
    [
        ("sep_conv_5x5", 1),
        ("max_pool_3x3", 0),
        ("sep_conv_5x5", 1),
        ("sep_conv_5x5", 2),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 3),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 2),
    ],
    range(2, 6),
)
PC_DARTS_IMAGENET = Genotype.from_flat(
    [
        ("skip_connect", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 0),
        ("skip_connect", 1),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 3),
        ("sep_conv_3x3", 1),
        ("dil_conv_5x5", 4),
    ],
    range(2, 6),
    [
        ("sep_conv_3x3", 0),
        ("skip_connect", 1),
        ("dil_conv_5x5", 2),
        ("max_pool_3x3", 1),
        ("sep_conv_3x3", 2),
        ("sep_conv_3x3", 1),
        ("sep_conv_5x5", 0),
        ("sep_conv_3x3", 3),
    ],
    range(2, 6),
)
# GDAS (Dong & Yang, CVPR 2019), the CIFAR cell of the paper ("GDAS_V1": 3.36M
# weights in DARTS' CIFAR network): D-X-Y/AutoDL-Projects
# lib/nas_infer_model/DXYs/genotypes.py, which lists each node's two edges in
# this order (the GDAS release's genotypes.py gives the same edges with weights).
GDAS_V1 = Genotype.from_flat(
    [
        ("skip_connect", 0),
        ("skip_connect", 1),
        ("skip_connect", 0),
        ("sep_conv_5x5", 2),
        ("sep_conv_3x3", 3),
        ("skip_connect", 0),
        ("sep_conv_5x5", 4),
        ("sep_conv_3x3", 3),
    ],
    range(2, 6),
    [
        ("sep_conv_5x5", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_5x5", 2),
        ("sep_conv_5x5", 1),
        ("dil_conv_5x5", 2),
        ("sep_conv_3x3", 1),
        ("sep_conv_5x5", 0),
        ("sep_conv_5x5", 1),
    ],
    range(2, 6),
)
# DrNAS (Chen et al., ICLR 2021), the CIFAR-10 cell: xiangning-chen/DrNAS
# (DARTS space) genotypes.py ("DrNAS_cifar10").
DRNAS_CIFAR10 = Genotype.from_flat(
    [
        ("sep_conv_3x3", 0),
        ("sep_conv_5x5", 1),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 2),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 2),
        ("dil_conv_5x5", 3),
    ],
    range(2, 6),
    [
        ("max_pool_3x3", 0),
        ("sep_conv_5x5", 1),
        ("dil_conv_5x5", 2),
        ("sep_conv_5x5", 1),
        ("sep_conv_5x5", 1),
        ("dil_conv_5x5", 3),
        ("skip_connect", 4),
        ("sep_conv_5x5", 1),
    ],
    range(2, 6),
)

PUBLISHED: dict[str, Genotype] = {
    "DARTS": DARTS_V2,
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
    "PC_DARTS": PC_DARTS,
    "PC_DARTS_IMAGENET": PC_DARTS_IMAGENET,
    "GDAS_V1": GDAS_V1,
    "DRNAS_CIFAR10": DRNAS_CIFAR10,
}


def get_genotype(name: str) -> Genotype:
    """Look a published genotype up by name (a dict lookup, never ``eval``)."""
    try:
        return PUBLISHED[name]
    except (KeyError, TypeError):
        raise GenotypeError(
            f"unknown genotype {name!r}; known: {', '.join(sorted(PUBLISHED))}"
        ) from None
