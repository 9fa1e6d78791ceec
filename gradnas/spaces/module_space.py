"""Any ``nn.Module`` built from gradnas mutables, as a search space.

A user writes a supernet once, with the seed's mutables (``DifferentiableOP``,
``DifferentiableEdge``, ``GumbelOP``, ...), and a factory
``FACTORY(in_channels, num_classes) -> nn.Module``. Every method searches it:
the method decides how choices are weighed (:func:`gradnas.mutables.weighing.reweigh`
turns each mutable into the method's kind, keeping its choices).

- The architecture is the mutator's decisions, a :class:`ModuleArch`: JSON
  ``{space_id: {"chosen": [names]}}``, the shape ``search_subnet()`` returns.
- The fixed network is a freshly built supernet with every mutable exported
  to its chosen choices (:func:`gradnas.mutators.deploy_subnet`).
- Methods that need structure a plain module lacks (PC-DARTS' partial
  channels and edge alphas, DrNAS' progressive widening) are refused with a
  :class:`SpaceError` naming what is missing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..mutables import MutableModule
from ..mutables.weighing import is_edge, reweigh
from ..mutators import DartsMutator, OneShotMutator, SnasMutator
from ..mutators.deploy import deploy_subnet
from ..mutators.diff_mutator import group_mutables
from ..path_ops import PathOps, Subnet
from .contract import SpaceError, SpaceMutator, SupernetRequest

Factory = Callable[[int, int], nn.Module]


@dataclass(frozen=True, order=True)
class ModuleArch:
    """The chosen names of every decision, as an immutable, hashable value."""

    chosen: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def from_dict(cls, subnet: Mapping[str, Any]) -> ModuleArch:
        """From ``{space_id: {"chosen": [names]}}``; raises ValueError on any other shape."""
        if not isinstance(subnet, Mapping) or not subnet:
            raise ValueError('an architecture is a non-empty {space_id: {"chosen": [names]}} map')
        items = []
        for space_id, entry in subnet.items():
            chosen = entry.get("chosen") if isinstance(entry, Mapping) else None
            if not isinstance(chosen, (list, tuple)) or not all(isinstance(n, str) for n in chosen):
                raise ValueError(f'In {space_id}: expected {{"chosen": [names]}}, got {entry!r}')
            items.append((str(space_id), tuple(chosen)))
        return cls(tuple(sorted(items)))

    def to_dict(self) -> Subnet:
        return {space_id: {"chosen": list(names)} for space_id, names in self.chosen}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> ModuleArch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not valid JSON ({err})") from None
        return cls.from_dict(data)

    def __str__(self) -> str:
        return " ".join(f"{space_id}={'+'.join(names) or '-'}" for space_id, names in self.chosen)


@dataclass(frozen=True)
class Decision:
    """One decision of a module: its choices, how many are kept, and whether it is an edge."""

    space_id: str
    names: tuple[str, ...]
    num_chosen: int
    edge: bool


def decisions_of(module: nn.Module) -> list[Decision]:
    """Every decision of ``module`` (raises ValueError when it holds no mutable)."""
    return [
        Decision(sid, tuple(ms[0].full_choice_names), ms[0].num_chosen, is_edge(ms[0]))
        for sid, ms in group_mutables(module).items()
    ]


def _draw(decision: Decision, rng: random.Random) -> tuple[str, ...]:
    if decision.edge:
        kept = sorted(rng.sample(range(len(decision.names)), decision.num_chosen))
        return tuple(decision.names[i] for i in kept)
    return (rng.choice(decision.names),)


@dataclass(frozen=True)
class ModuleSpace:
    """The search space of the modules ``factory(in_channels, num_classes)`` builds.

    ``reference`` is how the factory was named (``pkg.module:factory`` or
    ``path/file.py:factory``), kept in the run folder so that ``--resume`` and
    ``gradnas train RUN_DIR`` build the same space again.
    """

    factory: Factory
    reference: str = "<python object>"
    image_shape: tuple[int, ...] = (3, 32, 32)  # (channels, height, width) of the data's images
    num_classes: int = 10
    name: str = "custom"
    arch_file: str = "arch"
    _decisions: list[Decision] = field(default_factory=list, compare=False, repr=False)

    def _supernet(self, in_channels: int, num_classes: int) -> nn.Module:
        try:
            module = self.factory(in_channels, num_classes)
        except Exception as err:  # noqa: BLE001 - the user's factory: its message, one line
            raise SpaceError(
                f"space {self.reference}: the factory raised {type(err).__name__}: {err}"
            ) from None
        if not isinstance(module, nn.Module):
            raise SpaceError(
                f"space {self.reference}: the factory returned {module!r:.40} "
                f"({type(module).__name__}), not an nn.Module"
            )
        if not any(isinstance(m, MutableModule) for m in module.modules()):
            raise SpaceError(
                f"space {self.reference}: the module holds no gradnas mutable "
                f"(DifferentiableOP, DifferentiableEdge, ...), so there is nothing to search"
            )
        return module

    def build(
        self, request: SupernetRequest, in_channels: int, num_classes: int
    ) -> tuple[nn.Module, SpaceMutator]:
        s = request.structure
        missing = []
        if s.partial_channels != 1 or s.widens:
            missing.append("partial channel connections")
        if s.edge_alpha:
            missing.append("edge normalisation alphas")
        if s.primitives is not None:
            missing.append("a DARTS op table to narrow")
        if missing:
            raise SpaceError(
                f"{request.method} needs {' and '.join(missing)}, which a custom space "
                f"({self.reference}) does not have; use darts, darts2, gdas, snas, drnas "
                f"(progressive: false), spos or random"
            )
        supernet = reweigh(self._supernet(in_channels, num_classes), request.weighing)
        mutator: SpaceMutator
        if request.derivation == "one_path":
            mutator = OneShotMutator(exclude=())
        elif request.derivation == "argmax":
            mutator = SnasMutator()
        else:
            mutator = DartsMutator()
        try:
            mutator.prepare_from_supernet(supernet)
        except ValueError as err:
            raise SpaceError(f"space {self.reference}: {err}") from None
        self._decisions[:] = decisions_of(supernet)
        self._probe(supernet, mutator, num_classes)
        return supernet, mutator

    def _probe(self, supernet: nn.Module, mutator: nn.Module, num_classes: int) -> None:
        """One forward on a batch of the data's shape, so a supernet that does not fit
        the data fails before anything is written. The RNG and the BatchNorm
        statistics are left as they were (eval mode, a forked RNG)."""
        shape = (2, *self.image_shape)
        was_training = supernet.training
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                if isinstance(mutator, OneShotMutator):
                    generator = torch.Generator().manual_seed(0)
                    mutator.set_subnet(mutator.sample_subnet(generator))
                supernet.eval()
                out = supernet(torch.zeros(shape))
        except Exception as err:  # noqa: BLE001 - the user's forward: its message, one line
            raise SpaceError(
                f"space {self.reference}: the supernet's forward fails on a batch of the data's "
                f"shape {tuple(shape)}: {type(err).__name__}: {err}"
            ) from None
        finally:
            supernet.train(was_training)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise SpaceError(
                f"space {self.reference}: the supernet maps a batch of shape {tuple(shape)} to "
                f"{got}; expected logits of shape (2, {num_classes})"
            )

    def to_arch(self, supernet: nn.Module, subnet: Subnet) -> ModuleArch:
        return ModuleArch.from_dict(subnet)

    def path_ops(self) -> PathOps:
        decisions = list(self._decisions)
        if not decisions:
            raise RuntimeError("build the supernet before asking for its paths")

        def sample(rng: random.Random) -> ModuleArch:
            return ModuleArch(tuple(sorted((d.space_id, _draw(d, rng)) for d in decisions)))

        def mutate(arch: ModuleArch, rng: random.Random, p: float) -> ModuleArch:
            old = dict(arch.chosen)
            return ModuleArch(
                tuple(
                    sorted(
                        (d.space_id, _draw(d, rng) if rng.random() < p else old[d.space_id])
                        for d in decisions
                    )
                )
            )

        def crossover(a: ModuleArch, b: ModuleArch, rng: random.Random) -> ModuleArch:
            da, db = dict(a.chosen), dict(b.chosen)
            return ModuleArch(
                tuple(
                    sorted(
                        (d.space_id, da[d.space_id] if rng.random() < 0.5 else db[d.space_id])
                        for d in decisions
                    )
                )
            )

        return PathOps(sample, mutate, crossover, lambda arch: arch.to_dict())

    def fixed_network(self, arch: ModuleArch, in_channels: int, num_classes: int) -> nn.Module:
        """A freshly built supernet with every mutable exported to ``arch``'s choices."""
        try:
            return deploy_subnet(self._supernet(in_channels, num_classes), arch.to_dict())
        except ValueError as err:
            raise SpaceError(
                f"the architecture does not fit space {self.reference}: {err}"
            ) from None

    def fixed_size(self) -> str:
        return "(the supernet with every decision exported)"

    def arch_texts(self, arch: ModuleArch) -> dict[str, str]:
        return {"arch.json": arch.to_json(indent=2) + "\n", "arch.txt": str(arch) + "\n"}

    def read_arch(self, text: str) -> ModuleArch:
        return ModuleArch.from_json(text)

    def describe(self, arch: ModuleArch) -> str:
        return str(arch)

    def warning(self, arch: ModuleArch) -> str | None:
        return None

    def draw_plots(
        self,
        out: Path,
        arch: ModuleArch,
        history: list[dict[str, Any]],
        has_alphas: bool,
        renderer: str = "auto",
    ) -> list[Path]:
        from ..plots import plot_alphas_per_decision, plot_curves

        paths = plot_curves(history, out / "curves") if history else []
        alphas = out / "alphas.json"
        if has_alphas and alphas.is_file():
            paths += plot_alphas_per_decision(
                json.loads(alphas.read_text()), arch.to_dict(), out / "alphas"
            )
        return paths

    def record(self) -> dict[str, Any]:
        return {"space": self.reference}
