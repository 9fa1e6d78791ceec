"""What ``--resume`` continues from: the stored config and the checkpoints that fit it.

A run folder may be resumed at any moment of its life:

- killed before its first checkpoint, it holds only ``config.yaml``: the run
  starts over from that config;
- with ``checkpoint.pt`` (and ``checkpoint.prev.pt``), each one that loads,
  has the expected format and was written under the folder's ``config.yaml``
  is a candidate, the latest first; one that still does not fit when it is
  restored (other widths, missing entries) gives way to the next;
- killed after the last checkpoint, the loop has nothing left to run and the
  derived files are written again from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..config import ConfigError, config_from_dict, load_config
from .files import RunDirError, load_checkpoint, previous_checkpoint

# What restoring a checkpoint that does not fit the built run raises:
# load_state_dict's size mismatch (RuntimeError), a missing entry (KeyError),
# an entry of the wrong type (TypeError, AttributeError, ValueError, IndexError).
MISFIT_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError)

Setup = TypeVar("Setup")
Restored = TypeVar("Restored")


def one_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an error's message, cut to ``limit`` characters."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, KeyError):
        text = f"missing entry {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resume_candidates(
    out: Path, expected_format: str, cls: type, log: Callable[[str], None]
) -> tuple[Any, list[tuple[Path, dict[str, Any]]]]:
    """The run's config and the checkpoints written under it, latest first.

    No checkpoint at all (killed before the first one) gives an empty list:
    the run starts over. Checkpoints that are there but none usable are one
    :class:`RunDirError` naming each.
    """
    config_path = out / "config.yaml"
    stored = None
    if config_path.is_file():
        try:
            stored = load_config(config_path, cls)
        except ConfigError as err:
            raise RunDirError(f"cannot resume {str(out)!r}: {err}") from None
    latest = out / "checkpoint.pt"
    candidates: list[tuple[Path, dict[str, Any]]] = []
    problems: list[str] = []
    for path in (latest, previous_checkpoint(latest)):
        if not path.exists():
            continue
        try:
            state = load_checkpoint(path)
            if not isinstance(state, dict) or state.get("format") != expected_format:
                raise RunDirError(f"{path} is not a {expected_format} checkpoint")
            written_under = config_from_dict(state["config"], cls)
        except (RunDirError, ConfigError, KeyError, TypeError) as err:
            problems.append(one_line(err))
            continue
        if stored is not None and written_under != stored:
            problems.append(f"{path} was written by another run than {config_path} describes")
            continue
        candidates.append((path, state))
    if not candidates and problems:
        raise RunDirError("; ".join(problems))
    if candidates and problems:
        log(f"warning: {problems[0]}; resuming from the previous checkpoint {candidates[0][0]}")
    if stored is None:
        if not candidates:
            raise RunDirError(
                f"cannot resume {str(out)!r}: it holds neither {latest.name} nor config.yaml "
                f"(checkpoint {str(latest)!r} does not exist)"
            )
        stored = config_from_dict(candidates[0][1]["config"], cls)
    return stored, candidates


def restore_first_fitting(
    candidates: list[tuple[Path, dict[str, Any]]],
    setup: Setup,
    rebuild: Callable[[], Setup],
    restore: Callable[[Setup, dict[str, Any]], Restored],
    log: Callable[[str], None],
) -> tuple[Setup, Restored]:
    """``restore(setup, state)`` with the first candidate that fits; a setup that a
    failed restore left half-loaded is rebuilt before the next candidate."""
    problems = []
    for index, (path, state) in enumerate(candidates):
        if index:
            setup = rebuild()
        try:
            return setup, restore(setup, state)
        except MISFIT_ERRORS as err:
            problems.append(f"{path} does not fit the run's config ({one_line(err)})")
            if index + 1 < len(candidates):
                log(f"warning: {problems[-1]}; trying {candidates[index + 1][0]}")
    raise RunDirError("; ".join(problems))


def check_progress(progress: Any, epochs: int, steps_per_epoch: int) -> None:
    """A checkpoint's position must lie inside the run it resumes."""
    if not (0 <= progress.epoch <= epochs and 0 <= progress.step < max(steps_per_epoch, 1)):
        raise ValueError(
            f"position epoch {progress.epoch}, step {progress.step} is outside the run "
            f"({epochs} epochs of {steps_per_epoch} steps)"
        )
    rows = progress.history
    if len(rows) != progress.epoch or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"the metric history does not list the {progress.epoch} epochs done")
    if progress.alpha_history and len(progress.alpha_history) != progress.epoch + 1:
        raise ValueError("the alpha history does not list the start and every epoch done")
    if not all(isinstance(v, (int, float)) for v in progress.sums.values()):
        raise TypeError("the running sums of the epoch are not numbers")
