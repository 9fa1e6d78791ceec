"""Architectures as values a search can draw and recombine.

SPOS' evolution and random search work on a space's architecture values
(a DARTS ``Genotype``, a custom space's ``ModuleArch``): hashable, drawn
with a ``random.Random``. :class:`PathOps` bundles the four operations a
search space provides for them; it lives apart from both the spaces and the
algorithms, since the spaces provide it and the algorithms use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Subnet = dict[str, dict[str, list[str]]]  # {space_id: {"chosen": [names]}}


@dataclass(frozen=True)
class PathOps:
    """Draw, mutate and cross architectures, and each one's path in the supernet."""

    sample: Callable[[Any], Any]  # (random.Random) -> architecture
    mutate: Callable[[Any, Any, float], Any]  # (architecture, rng, probability) -> architecture
    crossover: Callable[[Any, Any, Any], Any]  # (a, b, rng) -> architecture
    to_subnet: Callable[[Any], Subnet]  # the architecture's path in the one-path supernet
