"""How decided a search is: numbers the search prints at its end."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def strongest(
    probs: Sequence[float], names: Sequence[str], ignore: Sequence[str] = ("none",)
) -> str:
    return max((p, name) for p, name in zip(probs, names) if name not in ignore)[1]


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
    op_ids = [sid for sid in end if any(name in ignore for name in choices[sid])] or list(end)
    changed = sum(
        strongest(start[sid], choices[sid], ignore) != strongest(end[sid], choices[sid], ignore)
        for sid in op_ids
    )
    mean = sum(derived) / len(derived) if derived else float("nan")
    count = (remaining or {}).get(op_ids[0], len(choices[op_ids[0]])) if op_ids else 0
    uniform = 1.0 / count if count else float("nan")
    return {
        "derived_mean_weight": mean,
        "times_uniform": mean / uniform,
        "decisions": len(op_ids),
        "changed": changed,
    }
