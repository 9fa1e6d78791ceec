"""A NAS-Bench-201 architecture as an immutable value, in the benchmark's notation.

A cell has 6 edges ``j -> i`` (``0 <= j < i <= 3``), each carrying one of the
five ops. The benchmark writes a cell node by node, each node as its inputs
``|op~source|``, nodes joined by ``+`` (AutoDL-Projects
``cell_searchs/genotypes.py``, ``Structure.tostr``), e.g.

>>> arch = NB201Arch.parse(
...     "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"
... )
>>> arch.op(2, 1)
'skip_connect'
>>> NB201Arch.from_dict(arch.to_dict()) == arch
True
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .cell import EDGES, NUM_NODES
from .ops import NB201_PRIMITIVES


def _check_op(op: Any, where: str) -> str:
    if not isinstance(op, str) or op not in NB201_PRIMITIVES:
        raise ValueError(
            f"{where}: unknown op {op!r}; NAS-Bench-201 ops are {list(NB201_PRIMITIVES)}"
        )
    return op


def _ops_from_nodes(nodes: Sequence[Sequence[Sequence[Any]]]) -> tuple[str, ...]:
    """The 6 ops in :data:`EDGES` order from per-node ``(op, source)`` lists.

    Node ``i`` (1..3) must list each source ``0..i-1`` exactly once, in any order.
    """
    if isinstance(nodes, str) or not isinstance(nodes, Sequence) or len(nodes) != NUM_NODES - 1:
        count = (
            len(nodes)
            if isinstance(nodes, Sequence) and not isinstance(nodes, str)
            else "no list of"
        )
        raise ValueError(
            f"a NAS-Bench-201 cell has {NUM_NODES - 1} nodes (1..{NUM_NODES - 1}), got {count} nodes"
        )
    ops: dict[tuple[int, int], str] = {}
    for i, node in enumerate(nodes, start=1):
        where = f"node {i}"
        if isinstance(node, str) or not isinstance(node, Sequence) or len(node) != i:
            got = (
                len(node)
                if isinstance(node, Sequence) and not isinstance(node, str)
                else repr(node)
            )
            raise ValueError(
                f"{where} needs exactly {i} input(s), one from each of nodes 0..{i - 1}; got {got}"
            )
        for pair in node:
            if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"{where}: each input is an (op, source) pair, got {pair!r}")
            op, j = pair
            _check_op(op, where)
            if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < i:
                raise ValueError(
                    f"{where}: source {j!r} is not an earlier node (expected an int in 0..{i - 1})"
                )
            if (i, j) in ops:
                raise ValueError(f"{where}: source {j} appears more than once")
            ops[(i, j)] = op
    return tuple(ops[edge] for edge in EDGES)


def _parse_node(text: str, i: int) -> list[tuple[str, int]]:
    """``'|op~0|op~1|'`` -> ``[(op, 0), (op, 1)]`` (op names are checked later)."""
    where = f"node {i} {text!r}"
    if len(text) < 2 or not text.startswith("|") or not text.endswith("|"):
        raise ValueError(f"{where} must be written |op~source|...|")
    pairs = []
    for token in text[1:-1].split("|"):
        op, sep, source = token.partition("~")
        if not sep or not op or not source.isdigit() or not source.isascii():
            raise ValueError(f"{where}: input {token!r} must be op~source with an integer source")
        pairs.append((op, int(source)))
    return pairs


@dataclass(frozen=True)
class NB201Arch:
    """The op of each of the 6 edges, in :data:`EDGES` order
    ``(1,0), (2,0), (2,1), (3,0), (3,1), (3,2)``; ``none`` is a valid op.

    ``str(arch)`` is the benchmark's arch string, usable as a key of its API
    (``query_index_by_arch``); :meth:`parse` reads it back.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if (
            isinstance(self.ops, str)
            or not isinstance(self.ops, Sequence)
            or len(self.ops) != len(EDGES)
        ):
            raise ValueError(
                f"NB201Arch needs {len(EDGES)} ops, one per edge {list(EDGES)}; got {self.ops!r}"
            )
        for (i, j), op in zip(EDGES, self.ops):
            _check_op(op, f"edge {j}->{i}")
        object.__setattr__(self, "ops", tuple(self.ops))

    # -- views -------------------------------------------------------------
    def op(self, i: int, j: int) -> str:
        """The op on the edge from node ``j`` into node ``i``."""
        if (i, j) not in EDGES:
            raise ValueError(
                f"no edge {j}->{i} in a NAS-Bench-201 cell; edges are {list(EDGES)} as (target, source)"
            )
        return self.ops[EDGES.index((i, j))]

    def edges(self) -> Iterator[tuple[int, int, str]]:
        """``(target, source, op)`` for every edge, in :data:`EDGES` order."""
        for (i, j), op in zip(EDGES, self.ops):
            yield i, j, op

    @property
    def nodes(self) -> tuple[tuple[tuple[str, int], ...], ...]:
        """Per node 1..3, its ``(op, source)`` inputs by source (the benchmark's ``Structure.nodes``)."""
        return tuple(tuple((self.op(i, j), j) for j in range(i)) for i in range(1, NUM_NODES))

    @classmethod
    def from_nodes(cls, nodes: Sequence[Sequence[Sequence[Any]]]) -> NB201Arch:
        """Inverse of :attr:`nodes`; a node may list its sources in any order."""
        return cls(_ops_from_nodes(nodes))

    # -- the benchmark's string --------------------------------------------
    def __str__(self) -> str:
        return "+".join("|" + "|".join(f"{op}~{j}" for op, j in node) + "|" for node in self.nodes)

    @classmethod
    def parse(cls, text: str) -> NB201Arch:
        """Read an arch string such as ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|``.

        Inputs of a node may come in any order; ``str()`` writes them by source.
        Errors name the node and the problem: wrong number of nodes or inputs,
        an unknown op, a source that is not an earlier node, a repeated source.
        """
        if not isinstance(text, str):
            raise ValueError(
                f"a NAS-Bench-201 arch string must be a str, got {type(text).__name__}"
            )
        parts = text.strip().split("+")
        if len(parts) != NUM_NODES - 1:
            raise ValueError(
                f"a NAS-Bench-201 arch string has {NUM_NODES - 1} nodes joined by '+', "
                f"got {len(parts)} in {text!r}"
            )
        return cls.from_nodes([_parse_node(part, i) for i, part in enumerate(parts, start=1)])

    # -- JSON --------------------------------------------------------------
    def to_dict(self) -> dict[str, list[list[list[str | int]]]]:
        """``{'nodes': [[[op, source], ...] per node 1..3]}``, JSON-friendly."""
        return {"nodes": [[[op, j] for op, j in node] for node in self.nodes]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NB201Arch:
        """Inverse of :meth:`to_dict`; a missing or unknown key is named in the error."""
        if not isinstance(d, Mapping):
            raise ValueError(f"expected a dict with key 'nodes', got {type(d).__name__}")
        unknown = sorted(str(k) for k in d if k != "nodes")
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(unknown)} in a NAS-Bench-201 arch dict; expected ['nodes']"
            )
        if "nodes" not in d:
            raise ValueError("a NAS-Bench-201 arch dict needs the key 'nodes'")
        return cls.from_nodes(d["nodes"])

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> NB201Arch:
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"invalid NAS-Bench-201 arch JSON: {err}") from None
        return cls.from_dict(d)
