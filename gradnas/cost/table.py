"""What every choice of a supernet costs: MACs, weights and (optionally) latency.

The table has one row per decision (``space_id``) and, in it, one cost per
choice: the cost the derived network pays for keeping that choice, summed over
every mutable sharing the decision (a DARTS op decision appears once per cell
of its type). It is measured, not modelled:

1. one forward of the supernet on one zero example records, with a forward
   pre-hook on every mutable, the inputs each mutable receives, so each choice
   is measured at the shape it sees in the supernet (a choice of an edge on
   its own input, a choice of an op on the op's input);
2. each choice's module then runs alone on zeros of that shape under
   :class:`torch.utils.flop_counter.FlopCounterMode`; MACs = FLOPs / 2 (the
   counter counts a multiply and an add per multiply-accumulate; it counts
   convolutions and matrix products, so normalisations, activations and
   poolings add nothing, as in :mod:`gradnas.inspect`).

A choice that holds mutables of its own (a DARTS edge's choice is the mixed
op on that input) costs only what lies outside them: its measured MACs minus
those of the nested mutables run alone on the inputs they received, and its
weights outside them. What lies outside every mutable (stem, cell
preprocessing, classifier) is the table's ``fixed`` cost, measured the same
way: the whole supernet minus its outermost mutables. Hence the cost of a
derived network is ``fixed`` plus the chosen choices' costs
(:meth:`CostTable.subnet_cost`). A mutable may compute a choice from shared
weights (:class:`~gradnas.mutables.WidthConv2d`); it then says what a choice
alone is with ``standalone_choice(name)``, the plain module its export leaves.

Latency (``latency=True``) is the median of timed runs after warm-up runs, on
the device the supernet is on. Unlike MACs it is not exactly additive, so the
fixed part's latency (supernet minus outermost mutables, at least 0) is an
estimate.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..mutables import MutableModule

Metric = Literal["macs", "weights", "latency"]
METRICS: tuple[str, ...] = ("macs", "weights", "latency")
Subnet = Mapping[str, Mapping[str, Sequence[str]]]


@runtime_checkable
class StandaloneChoices(Protocol):
    """A mutable whose choices share weights and so are not modules of their own."""

    def standalone_choice(self, name: str) -> nn.Module: ...


@dataclass(frozen=True)
class Cost:
    """The cost of one choice (or of the fixed part) in the derived network."""

    macs: int  # multiply-accumulates for one example
    weights: int  # parameter elements
    latency_ms: float | None = None  # median forward time, when measured

    def get(self, metric: str) -> float:
        """The value of ``metric`` (``macs``, ``weights`` or ``latency``)."""
        if metric == "macs":
            return float(self.macs)
        if metric == "weights":
            return float(self.weights)
        if metric == "latency":
            if self.latency_ms is None:
                raise ValueError("latency was not measured; build the table with latency=True")
            return self.latency_ms
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")


@dataclass(frozen=True)
class Decision:
    """One row of the table: the cost of every choice of decision ``space_id``."""

    space_id: str
    choices: dict[str, Cost]  # name -> cost, summed over the mutables sharing the decision
    num_chosen: int  # how many choices the derived network keeps
    nested: dict[str, tuple[str, ...]]  # name -> decisions of the mutables inside that choice
    members: int  # how many mutables share the decision


@dataclass(frozen=True)
class CostTable:
    """Per-choice costs of a supernet at one input size, plus its fixed part."""

    decisions: dict[str, Decision]
    fixed: Cost
    input_shape: tuple[int, ...]
    top_level: tuple[str, ...] = field(default=())  # decisions not nested in another

    def choice_cost(self, space_id: str, name: str, metric: str) -> float:
        decision = self.decisions.get(space_id)
        if decision is None or name not in decision.choices:
            raise ValueError(f"the cost table has no choice {name!r} of decision {space_id!r}")
        return decision.choices[name].get(metric)

    def subnet_cost(self, subnet: Subnet, metric: str) -> float:
        """The cost of the derived network of ``subnet`` (``{space_id: {'chosen': [...]}}``):
        the fixed part plus every kept choice, nested decisions entered only
        under kept choices (as :func:`gradnas.mutators.deploy_subnet` does)."""
        total = self.fixed.get(metric)
        pending = list(self.top_level)
        while pending:
            space_id = pending.pop()
            entry = subnet.get(space_id)
            if entry is None or "chosen" not in entry:
                raise ValueError(f"the subnet has no 'chosen' entry for decision {space_id!r}")
            for name in entry["chosen"]:
                total += self.choice_cost(space_id, name, metric)
                pending.extend(self.decisions[space_id].nested.get(name, ()))
        return total

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: ``{input_shape, fixed, decisions: {id: {name: cost}}}``."""

        def row(cost: Cost) -> dict[str, Any]:
            return {"macs": cost.macs, "weights": cost.weights, "latency_ms": cost.latency_ms}

        return {
            "input_shape": list(self.input_shape),
            "fixed": row(self.fixed),
            "decisions": {
                sid: {name: row(cost) for name, cost in d.choices.items()}
                for sid, d in self.decisions.items()
            },
        }


# -- measuring ----------------------------------------------------------------


def _zeros_like(value: Any) -> Any:
    """Zeros in place of every tensor of a (nested) argument structure."""
    if isinstance(value, torch.Tensor):
        return torch.zeros_like(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_zeros_like(v) for v in value)
    return value


def _count_macs(module: nn.Module, args: tuple[Any, ...], outside: Sequence[nn.Module]) -> int:
    """MACs of ``module(*args)`` less those spent inside the submodules ``outside``.

    FlopCounterMode also counts per module, keyed by the module's type name and
    its path below ``module``; the submodules' shares are read off those keys.
    """
    counter = FlopCounterMode(display=False)  # outside the with: its __enter__ is untyped
    with counter:
        module(*args)
    per_module = counter.get_flop_counts()
    paths = {id(sub): name for name, sub in module.named_modules()}
    root = type(module).__name__
    inside = 0
    for sub in outside:
        key = f"{root}.{paths[id(sub)]}" if paths.get(id(sub)) else root
        inside += sum(per_module.get(key, {}).values())
    # FlopCounterMode counts 2 FLOPs (a multiply and an add) per MAC.
    return (counter.get_total_flops() - inside) // 2


def _median_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _outermost_inside(module: nn.Module) -> list[MutableModule]:
    """Mutables in ``module`` not nested in another one: ``[module]`` when it is
    a mutable itself (a DARTS edge's choice is the mixed op on that input)."""
    if isinstance(module, MutableModule):
        return [module]
    found: list[MutableModule] = []
    for child in module.children():
        if isinstance(child, MutableModule):
            found.append(child)
        else:
            found.extend(_outermost_inside(child))
    return found


def _weights_outside(module: nn.Module, nested: Sequence[nn.Module]) -> int:
    inside = {id(p) for m in nested for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in inside)


def _choice_module(mutable: MutableModule, name: str) -> nn.Module:
    if isinstance(mutable, StandaloneChoices):
        return mutable.standalone_choice(name)
    module: nn.Module = mutable.choices[name]
    return module


def _choice_input(mutable: MutableModule, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments choice ``name`` gets: an edge (a list of inputs) gives
    choice i its input i, indexed by the choices as built; an op gives every
    choice its input."""
    first = args[0]
    if isinstance(first, (list, tuple)):
        return (first[mutable.full_choice_names.index(name)],)
    return (first,)


@contextlib.contextmanager
def _runnable(mutables: Sequence[MutableModule]) -> Iterator[None]:
    """Every unbound mutable that needs an alpha gets a fresh one (one per
    decision) for the measurement; the bindings are put back afterwards."""
    saved = [(m, m.arch_param) for m in mutables]
    fresh: dict[str, nn.Parameter | None] = {}
    for m in mutables:
        if m.arch_param is None and m.with_arch_param and not m.is_exported:
            if m.space_id not in fresh:
                fresh[m.space_id] = m.build_arch_param()
            m.bind_arch_param(fresh[m.space_id])
    try:
        yield
    finally:
        for m, alpha in saved:
            m.bind_arch_param(alpha)


def build_cost_table(
    supernet: nn.Module,
    input_shape: Sequence[int],
    latency: bool = False,
    warmup: int = 3,
    repeats: int = 10,
    batch_size: int = 1,
) -> CostTable:
    """Measure the cost table of ``supernet`` for inputs of ``input_shape``.

    ``input_shape`` is one example without the batch dimension, e.g.
    ``(3, 32, 32)``. MACs and weights are per example; latency (median of
    ``repeats`` timed runs after ``warmup`` runs, ms) is for a batch of
    ``batch_size``. The supernet runs in eval mode without gradients and is
    put back in its mode; alphas already bound are used, missing ones are
    made up for the measurement (shapes and MACs do not depend on them).
    """
    shape = tuple(input_shape)
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(
            f"input_shape must be a non-empty sequence of positive ints, got {input_shape!r}"
        )
    if batch_size < 1 or warmup < 0 or repeats < 1:
        raise ValueError(
            f"need batch_size >= 1, warmup >= 0, repeats >= 1, got {batch_size}, {warmup}, {repeats}"
        )
    mutables = [m for m in supernet.modules() if isinstance(m, MutableModule)]
    if not mutables:
        raise ValueError("the supernet holds no mutable module, so there is no choice to cost")
    first = next(supernet.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32
    rows = batch_size if latency else 1
    x = torch.zeros((rows, *shape), device=device, dtype=dtype)

    # Latency runs on a batch of batch_size; MACs are counted on one example.
    def per_example(args: Any) -> Any:
        if isinstance(args, torch.Tensor):
            return args[:1]
        if isinstance(args, (list, tuple)):
            return type(args)(per_example(a) for a in args)
        return args

    seen: dict[int, tuple[Any, ...]] = {}

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        seen.setdefault(id(module), _zeros_like(args))

    was_training = supernet.training
    supernet.eval()
    handles = [m.register_forward_pre_hook(record) for m in mutables]

    def timed(module: nn.Module, args: tuple[Any, ...]) -> float:
        return _median_ms(lambda: module(*args), device, warmup, repeats)

    alone_ms: dict[int, float] = {}  # each mutable run alone on its own inputs

    def mutable_ms(m: MutableModule) -> float:
        if id(m) not in alone_ms:
            alone_ms[id(m)] = timed(m, seen[id(m)])
        return alone_ms[id(m)]

    def own_cost(module: nn.Module, args: tuple[Any, ...], inner: Sequence[MutableModule]) -> Cost:
        """The cost of ``module`` on ``args`` outside its mutables ``inner``."""
        ms = None
        if latency:
            ms = max(0.0, timed(module, args) - sum(mutable_ms(m) for m in inner))
        return Cost(
            macs=_count_macs(module, per_example(args), inner),
            weights=_weights_outside(module, inner),
            latency_ms=ms,
        )

    try:
        with torch.no_grad(), _runnable(mutables):
            outermost = _outermost_inside(supernet)
            fixed = own_cost(supernet, (x,), outermost)
            decisions: dict[str, dict[str, list[Cost]]] = {}
            nested_ids: dict[str, dict[str, set[str]]] = {}
            for m in mutables:  # pre-order: a mutable before those nested in it
                if id(m) not in seen:
                    raise ValueError(
                        f"In {m.space_id}: this mutable did not run in the supernet's forward "
                        f"on inputs of shape {shape}, so its choices cannot be costed"
                    )
                row = decisions.setdefault(m.space_id, {})
                kids = nested_ids.setdefault(m.space_id, {})
                for name in m.choice_names:
                    module = _choice_module(m, name)
                    inner = _outermost_inside(module)
                    kids.setdefault(name, set()).update(n.space_id for n in inner)
                    if inner == [module]:  # all its cost is that of its own decision
                        if id(module) not in seen:  # skipped by a sampling parent: run it once
                            module(*_choice_input(m, name, seen[id(m)]))
                        row.setdefault(name, []).append(Cost(0, 0, 0.0 if latency else None))
                        continue
                    args = _choice_input(m, name, seen[id(m)])
                    row.setdefault(name, []).append(own_cost(module, args, inner))
    finally:
        for handle in handles:
            handle.remove()
        supernet.train(was_training)

    members: dict[str, list[MutableModule]] = {}
    for m in mutables:
        members.setdefault(m.space_id, []).append(m)
    table = {
        sid: Decision(
            space_id=sid,
            choices={name: _sum_costs(costs) for name, costs in decisions[sid].items()},
            num_chosen=group[0].num_chosen,
            nested={name: tuple(sorted(ids)) for name, ids in nested_ids[sid].items() if ids},
            members=len(group),
        )
        for sid, group in members.items()
    }
    inner_ids = {sid for d in table.values() for ids in d.nested.values() for sid in ids}
    top = tuple(sid for sid in table if sid not in inner_ids)
    return CostTable(decisions=table, fixed=fixed, input_shape=shape, top_level=top)


def _sum_costs(costs: Sequence[Cost]) -> Cost:
    latencies = [c.latency_ms for c in costs]
    return Cost(
        macs=sum(c.macs for c in costs),
        weights=sum(c.weights for c in costs),
        latency_ms=None
        if any(ms is None for ms in latencies)
        else sum(ms or 0.0 for ms in latencies),
    )
