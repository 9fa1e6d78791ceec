"""How decided a search is: numbers the search prints at its end."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def strongest(
    probs: Sequence[float], names: Sequence[str], ignore: Sequence[str] = ("none",)
) -> str:
    return max((p, name) for p, name in zip(probs, names) if name not in ignore)[1]


def op_decisions(
    choices: Mapping[str, Sequence[str]],
    probs: Mapping[str, Sequence[float]],
    ignore: Sequence[str] = ("none",),
) -> list[str]:
    """The op decisions among ``probs``: those whose choices include an ignored op (``none``);
    when no decision has one (NAS-Bench-201 without ``none``, a user's space), all of them."""
    return [sid for sid in probs if any(name in ignore for name in choices[sid])] or list(probs)


def choices_changed(
    choices: Mapping[str, Sequence[str]],
    before: Mapping[str, Sequence[float]],
    after: Mapping[str, Sequence[float]],
    ignore: Sequence[str] = ("none",),
) -> tuple[int, int]:
    """(op decisions whose strongest choice differs between two alpha snapshots, op decisions).

    >>> choices = {"e1": ["none", "conv", "skip"], "e2": ["none", "conv", "skip"]}
    >>> before = {"e1": [0.5, 0.3, 0.2], "e2": [0.1, 0.6, 0.3]}
    >>> choices_changed(choices, before, {"e1": [0.5, 0.2, 0.3], "e2": [0.1, 0.7, 0.2]})
    (1, 2)
    """
    ids = op_decisions(choices, after, ignore)
    changed = sum(
        strongest(before[sid], choices[sid], ignore) != strongest(after[sid], choices[sid], ignore)
        for sid in ids
    )
    return changed, len(ids)


def decisiveness(
    choices: Mapping[str, Sequence[str]],
    start: Mapping[str, Sequence[float]],
    end: Mapping[str, Sequence[float]],
    subnet: Mapping[str, Mapping[str, Sequence[str]]],
    ignore: Sequence[str] = ("none",),
    remaining: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Mean softmax weight of the derived ops, as a multiple of uniform, and
    how many op decisions changed their strongest choice since the start.

    Only op decisions count (those whose choices include an op name of the
    subnet); a derived op is one the subnet keeps. ``remaining`` gives the
    number of choices each decision still has when a search pruned some
    (DrNAS' progressive stages): uniform is then 1 / that number.
    """
    derived = [
        end[sid][list(choices[sid]).index(entry["chosen"][0])]
        for sid, entry in subnet.items()
        if sid in end and len(entry["chosen"]) == 1
    ]
    op_ids = op_decisions(choices, end, ignore)
    changed, _ = choices_changed(choices, start, end, ignore)
    mean = sum(derived) / len(derived) if derived else float("nan")
    count = (remaining or {}).get(op_ids[0], len(choices[op_ids[0]])) if op_ids else 0
    uniform = 1.0 / count if count else float("nan")
    return {
        "derived_mean_weight": mean,
        "times_uniform": mean / uniform,
        "decisions": len(op_ids),
        "changed": changed,
    }
