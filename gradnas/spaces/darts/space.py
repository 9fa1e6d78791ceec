"""The DARTS cell space as a :class:`~gradnas.spaces.contract.SearchSpace`.

Architectures are :class:`~gradnas.genotype.Genotype` values, written as
``genotype.json`` and ``genotype.txt`` (the notation of DARTS'
``genotypes.py``); the fixed network is :class:`NetworkCIFAR`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ...genotype import PRIMITIVES, Genotype
from ...genotype_sampling import crossover_genotypes, mutate_genotype, sample_genotype
from ...mutables.weighing import reweigh
from ...mutators import DartsMutator, OneShotMutator, SnasMutator
from ...path_ops import PathOps, Subnet
from ..contract import SpaceError, SpaceMutator, SupernetRequest
from .network import NetworkCIFAR
from .search_network import CELL_TYPES, DartsSearchNetwork, edge_space_id, op_space_id


def genotype_path(genotype: Genotype) -> Subnet:
    """The one-path subnet of ``genotype``: node i keeps ``input{j}`` for each
    of its edges and ``{cell_type}_node{i}_input{j}`` chooses that edge's op
    (the inverse of ``DartsSearchNetwork.to_genotype``)."""
    subnet: Subnet = {}
    for cell_type in CELL_TYPES:
        for i, node in enumerate(getattr(genotype, cell_type)):
            inputs = [j for _, j in node]
            if len(set(inputs)) != len(inputs):
                raise ValueError(
                    f"{cell_type} cell, node {i}: input(s) used twice in {list(node)}; "
                    f"a path keeps distinct inputs"
                )
            subnet[edge_space_id(cell_type, i)] = {"chosen": [f"input{j}" for j in inputs]}
            for op, j in node:
                subnet[op_space_id(cell_type, i, j)] = {"chosen": [op]}
    return subnet


@dataclass(frozen=True)
class DartsSpace:
    """DARTS cells: ``C`` channels, ``layers`` cells of ``steps`` nodes, the last
    ``multiplier`` nodes concatenated; the fixed network of a genotype is
    built at ``fixed_C`` channels and ``fixed_layers`` cells."""

    C: int = 16
    layers: int = 8
    steps: int = 4
    multiplier: int = 4
    stem_multiplier: int = 3
    fixed_C: int = 16
    fixed_layers: int = 6
    fixed_auxiliary: bool = False  # the fixed network's auxiliary head (DARTS' CIFAR retraining)
    fixed_label: str = "at the train defaults"
    name: str = "darts"
    arch_file: str = "genotype"

    def build(
        self, request: SupernetRequest, in_channels: int, num_classes: int
    ) -> tuple[nn.Module, SpaceMutator]:
        s = request.structure
        weighing = request.weighing
        supernet = DartsSearchNetwork(
            C=self.C,
            layers=self.layers,
            steps=self.steps,
            multiplier=self.multiplier,
            stem_multiplier=self.stem_multiplier,
            in_channels=in_channels,
            num_classes=num_classes,
            primitives=s.primitives if s.primitives is not None else PRIMITIVES,
            op_mutable=lambda choices, space_id: weighing.op(choices, space_id, 1),
            edge_alpha=s.edge_alpha,
            partial_channels=s.partial_channels,
        )
        mutator: SpaceMutator
        if request.derivation == "one_path":
            # The cells build summing edges: one path runs only its inputs' ops.
            reweigh(supernet, weighing)
            mutator = OneShotMutator()
        elif request.derivation == "argmax":
            mutator = SnasMutator()
        elif request.derivation == "darts":
            mutator = DartsMutator()
        else:
            raise SpaceError(f"the darts space has no derivation rule {request.derivation!r}")
        mutator.prepare_from_supernet(supernet)
        return supernet, mutator

    def to_arch(self, supernet: nn.Module, subnet: Subnet) -> Genotype:
        assert isinstance(supernet, DartsSearchNetwork)
        return supernet.to_genotype(subnet)

    def concat(self) -> list[int]:
        return list(range(2 + self.steps - self.multiplier, 2 + self.steps))

    def path_ops(self) -> PathOps:
        steps, concat = self.steps, self.concat()
        return PathOps(
            sample=lambda rng: sample_genotype(rng, steps=steps, concat=concat),
            mutate=mutate_genotype,
            crossover=crossover_genotypes,
            to_subnet=genotype_path,
        )

    def fixed_network(self, arch: Genotype, in_channels: int, num_classes: int) -> nn.Module:
        return NetworkCIFAR(
            arch,
            C=self.fixed_C,
            layers=self.fixed_layers,
            auxiliary=self.fixed_auxiliary,
            in_channels=in_channels,
            num_classes=num_classes,
        )

    def fixed_size(self) -> str:
        return f"{self.fixed_label} (C={self.fixed_C}, {self.fixed_layers} cells)"

    def arch_texts(self, arch: Genotype) -> dict[str, str]:
        return {"genotype.json": arch.to_json(indent=2) + "\n", "genotype.txt": str(arch) + "\n"}

    def read_arch(self, text: str) -> Genotype:
        return Genotype.from_json(text) if text.lstrip().startswith("{") else Genotype.parse(text)

    def describe(self, arch: Genotype) -> str:
        def cell(nodes: Any) -> str:
            return " | ".join(" ".join(f"{op}@{j}" for op, j in node) for node in nodes)

        return f"normal: {cell(arch.normal)} || reduce: {cell(arch.reduce)}"

    def warning(self, arch: Genotype) -> str | None:
        from ...plots.collapse import collapse_warning

        return collapse_warning(arch)

    def draw_plots(
        self,
        out: Path,
        arch: Genotype,
        history: list[dict[str, Any]],
        has_alphas: bool,
        renderer: str = "auto",
    ) -> list[Path]:
        from ...plots import plot_curves, plot_genotype, plot_run

        if not has_alphas:  # SPOS, random search: curves (when it trained a supernet) and cells
            curves = plot_curves(history, out / "curves") if history else []
            return curves + plot_genotype(arch, out, renderer=renderer)
        return plot_run(out, renderer=renderer)

    def record(self) -> dict[str, Any]:
        return {"space": self.name}
