"""The ``SearchSpace`` contract: everything the engine needs of a search space.

The engine builds, derives, writes, retrains and plots through these
methods only; it never checks which space it has. The implementations are
:class:`gradnas.spaces.darts.DartsSpace` (DARTS cells),
:class:`gradnas.spaces.nb201.NB201Space` (NAS-Bench-201 cells) and
:class:`gradnas.spaces.module_space.ModuleSpace` (any ``nn.Module`` built from
gradnas mutables).

A method asks for a supernet with a :class:`SupernetRequest`: how choices are
weighed (a :class:`~gradnas.mutables.weighing.Weighing`), which derivation
rule picks the final choices, and any structure beyond the mutables
(PC-DARTS' partial channels and edge alphas, DrNAS' progressive op set). A
space that lacks the structure raises :class:`SpaceError`, which the CLI
shows as one line before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from torch import nn

from ..mutables.weighing import Weighing
from ..mutators import DartsMutator, OneShotMutator
from ..path_ops import PathOps, Subnet

# The derivation rules a method may ask for (gradnas.mutators):
# "darts": best op ignoring `none`, then the top num_chosen inputs (DartsMutator);
# "argmax": every decision's argmax, `none` included (SnasMutator);
# "one_path": no alphas, paths set by the method (OneShotMutator).
DERIVATIONS = ("darts", "argmax", "one_path")


# What a space derives with: the DARTS rule (SnasMutator is one), or one-path sampling.
SpaceMutator = DartsMutator | OneShotMutator


class SpaceError(ValueError):
    """A method that needs something a search space does not have."""


@dataclass(frozen=True)
class Structure:
    """What a method asks of a space beyond how its choices are weighed."""

    partial_channels: int = 1  # PC-DARTS' K (1: every op sees all channels)
    edge_alpha: bool = False  # an alpha per node edge (PC-DARTS' edge normalisation)
    primitives: tuple[str, ...] | None = None  # a narrower op set (DrNAS' progressive search)
    widens: bool = False  # the method widens partial channels during the search (DrNAS)

    @property
    def plain(self) -> bool:
        return self == Structure()


@dataclass(frozen=True)
class SupernetRequest:
    """One method's supernet: the weighing, the derivation rule, the structure."""

    method: str  # the method's name, for messages
    weighing: Weighing
    derivation: str = "darts"
    structure: Structure = Structure()


class Architecture(Protocol):
    """A found architecture: an immutable, hashable value with a JSON form."""

    def to_json(self, indent: int | None = None) -> str: ...

    def __str__(self) -> str: ...


@runtime_checkable
class SearchSpace(Protocol):
    """A search space, as the engine sees it."""

    @property
    def name(self) -> str:
        """The space's name, for messages."""
        ...

    @property
    def arch_file(self) -> str:
        """Stem of the architecture files: genotype.json / arch.json / ..."""
        ...

    def build(
        self, request: SupernetRequest, in_channels: int, num_classes: int
    ) -> tuple[nn.Module, SpaceMutator]:
        """The supernet for ``request`` and the mutator that derives from it (prepared)."""
        ...

    def to_arch(self, supernet: nn.Module, subnet: Subnet) -> Any:
        """The architecture value of the mutator's decisions ``subnet``."""
        ...

    def path_ops(self) -> PathOps:
        """Draw, mutate and cross architectures, and each one's path (SPOS, random search)."""
        ...

    def fixed_network(self, arch: Any, in_channels: int, num_classes: int) -> nn.Module:
        """The fixed network of ``arch`` at the space's retraining size."""
        ...

    def fixed_size(self) -> str:
        """At which size :meth:`fixed_network` builds, for the summary line."""
        ...

    def arch_texts(self, arch: Any) -> dict[str, str]:
        """The architecture files to write: file name -> text (JSON and a readable form)."""
        ...

    def read_arch(self, text: str) -> Any:
        """An architecture from the text of one of its files (raises ValueError)."""
        ...

    def describe(self, arch: Any) -> str:
        """A one-line form for the epoch summary."""
        ...

    def warning(self, arch: Any) -> str | None:
        """A warning about the architecture (DARTS' skip collapse), or None."""
        ...

    def draw_plots(
        self,
        out: Path,
        arch: Any,
        history: list[dict[str, Any]],
        has_alphas: bool,
        renderer: str = "auto",
    ) -> list[Path]:
        """Every plot of the run folder that applies to this space; the paths written."""
        ...

    def record(self) -> dict[str, Any]:
        """What the run folder keeps to build this space again (``space.json``)."""
        ...
