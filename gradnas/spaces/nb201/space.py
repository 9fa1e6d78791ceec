"""The NAS-Bench-201 cell space as a :class:`~gradnas.spaces.contract.SearchSpace`.

Architectures are :class:`NB201Arch` values, written as ``arch.json`` and
``arch.txt`` (the benchmark's arch string); the fixed network is
:class:`NB201Network`. Only the curves are drawn (the cell diagrams and alpha
panels are drawn for DARTS cells).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ...mutators import DartsMutator
from ...path_ops import PathOps, Subnet
from ..contract import SpaceError, SpaceMutator, SupernetRequest
from .arch import NB201Arch
from .cell import edge_space_id
from .networks import NB201Network, NB201SearchNetwork, subnet_to_arch
from .ops import NB201_PRIMITIVES


def _sample(rng: random.Random) -> NB201Arch:
    return NB201Arch.from_nodes(
        [[(rng.choice(NB201_PRIMITIVES), j) for j in range(i)] for i in range(1, 4)]
    )


@dataclass(frozen=True)
class NB201Space:
    """NAS-Bench-201 cells: ``C`` channels in the first stage, ``N`` cells per stage,
    for the supernet and the fixed network alike."""

    C: int = 16
    N: int = 5
    name: str = "nb201"
    arch_file: str = "arch"

    def build(
        self, request: SupernetRequest, in_channels: int, num_classes: int
    ) -> tuple[nn.Module, SpaceMutator]:
        s = request.structure
        if not s.plain:
            raise SpaceError(
                f"{request.method} needs partial channels, edge alphas or its own op set, "
                f"which the nb201 space does not have"
            )
        if request.derivation == "one_path":
            raise SpaceError(f"{request.method} does not apply to the nb201 space")
        weighing = request.weighing
        supernet = NB201SearchNetwork(
            C=self.C,
            N=self.N,
            num_classes=num_classes,
            in_channels=in_channels,
            op_mutable=lambda choices, space_id: weighing.op(choices, space_id, 1),
        )
        # NAS-Bench-201 keeps every edge's argmax, `none` included.
        mutator = DartsMutator(ignore_choices=())
        mutator.prepare_from_supernet(supernet)
        return supernet, mutator

    def to_arch(self, supernet: nn.Module, subnet: Subnet) -> NB201Arch:
        return subnet_to_arch(subnet)

    def path_ops(self) -> PathOps:
        def mutate(arch: NB201Arch, rng: random.Random, p: float) -> NB201Arch:
            nodes = [
                [(rng.choice(NB201_PRIMITIVES) if rng.random() < p else op, j) for op, j in node]
                for node in arch.nodes
            ]
            return NB201Arch.from_nodes(nodes)

        def crossover(a: NB201Arch, b: NB201Arch, rng: random.Random) -> NB201Arch:
            nodes = [
                [x if rng.random() < 0.5 else y for x, y in zip(na, nb, strict=True)]
                for na, nb in zip(a.nodes, b.nodes, strict=True)
            ]
            return NB201Arch.from_nodes(nodes)

        def to_subnet(arch: NB201Arch) -> Subnet:
            return {edge_space_id(i, j): {"chosen": [op]} for i, j, op in arch.edges()}

        return PathOps(_sample, mutate, crossover, to_subnet)

    def fixed_network(self, arch: NB201Arch, in_channels: int, num_classes: int) -> nn.Module:
        return NB201Network(
            arch, C=self.C, N=self.N, num_classes=num_classes, in_channels=in_channels
        )

    def fixed_size(self) -> str:
        return f"(NAS-Bench-201 network, C={self.C}, N={self.N})"

    def arch_texts(self, arch: NB201Arch) -> dict[str, str]:
        return {"arch.json": arch.to_json(indent=2) + "\n", "arch.txt": str(arch) + "\n"}

    def read_arch(self, text: str) -> NB201Arch:
        return NB201Arch.from_json(text) if text.lstrip().startswith("{") else NB201Arch.parse(text)

    def describe(self, arch: NB201Arch) -> str:
        return str(arch)

    def warning(self, arch: NB201Arch) -> str | None:
        return None

    def draw_plots(
        self,
        out: Path,
        arch: NB201Arch,
        history: list[dict[str, Any]],
        has_alphas: bool,
        renderer: str = "auto",
    ) -> list[Path]:
        from ...plots import plot_curves

        return plot_curves(history, out / "curves") if history else []

    def record(self) -> dict[str, Any]:
        return {"space": self.name, "C": self.C, "N": self.N}
