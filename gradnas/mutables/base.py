"""The base of every mutable: a named set of candidate modules that is one
decision of a search space.

A mutable only computes; it never trains or derives anything. Which
architecture parameter (alpha) weighs its choices is decided by a mutator,
which binds one alpha per ``space_id`` with :meth:`MutableModule.bind_arch_param`.
The binding is a plain reference to the mutator's ``nn.Parameter``: it is not
registered in the mutable, so ``supernet.parameters()`` never yields an alpha,
and ``copy.deepcopy((supernet, mutator))`` or pickling both together keeps the
copied supernet bound to the copied alphas (Python's copy memo shares them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn


def sum_tensors(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum(terms)``, typed as the tensor it is.

    The builtin ``sum`` starts from ``0``, so its type admits an ``int``
    result; that happens only for no terms, which no mutable ever sums, and
    is an error here instead of a silent ``0`` returned as an output.
    """
    total = sum(terms)
    if not isinstance(total, torch.Tensor):
        raise ValueError("sum_tensors needs at least one tensor")
    return total


class MutableModule(nn.Module):
    """Candidate modules (``choices``) for one decision named ``space_id``.

    Mutables that share a ``space_id`` are the same decision (for example the
    same edge in every normal cell of DARTS) and share one alpha.

    Args:
        choices: name -> module for every candidate, in a fixed order.
        space_id: the decision's name; mutables with the same id share alpha.
            No ``.`` in it, since it keys an ``nn.ParameterDict``.
        num_chosen: how many choices the final architecture keeps.
    """

    # A registered buffer (see __init__); declared here so its type is known.
    choice_mask: torch.Tensor

    def __init__(
        self,
        choices: Mapping[str, nn.Module],
        space_id: str,
        num_chosen: int = 1,
        with_arch_param: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(space_id, str) or not space_id or "." in space_id:
            raise ValueError(f"space_id must be a non-empty string without '.', got {space_id!r}")
        self.space_id = space_id
        # nn.ModuleDict is not a collections.abc.Mapping, but it is the
        # natural way to pass choices (the reference required one).
        if not isinstance(choices, (Mapping, nn.ModuleDict)) or len(choices) == 0:
            raise ValueError(
                f"In {space_id}: choices must be a non-empty mapping of name -> module"
            )
        for name, module in choices.items():
            if not isinstance(module, nn.Module):
                raise ValueError(f"In {space_id}: choice {name!r} is not an nn.Module")
        if (
            isinstance(num_chosen, bool)
            or not isinstance(num_chosen, int)
            or not 1 <= num_chosen <= len(choices)
        ):
            raise ValueError(
                f"In {space_id}: num_chosen must be an int in 1..{len(choices)} (the number of choices), "
                f"got {num_chosen!r}"
            )
        self.num_chosen = num_chosen
        self.with_arch_param = bool(with_arch_param)
        self.choices = nn.ModuleDict(dict(choices))
        # Names of all choices as built; forward inputs stay indexed by these
        # even after export removed some choices.
        self.full_choice_names: tuple[str, ...] = tuple(self.choices.keys())
        # Which of the full choices are still present. A buffer, so it moves
        # with .to() and is saved in the state dict (fixes reference defect 5).
        self.register_buffer(
            "choice_mask", torch.ones(len(self.full_choice_names), dtype=torch.bool)
        )
        self.is_exported = False
        self.__dict__["_arch_param"] = None  # plain reference, never registered

    # -- choices ---------------------------------------------------------
    @property
    def choice_names(self) -> list[str]:
        return list(self.choices.keys())

    @property
    def choice_modules(self) -> list[nn.Module]:
        return list(self.choices.values())

    @property
    def num_choices(self) -> int:
        return len(self.choices)

    def export(self, chosen: Sequence[str]) -> None:
        """Remove every choice not in ``chosen``; forward then sums what is left.

        The exported module is a plain fixed module: its forward no longer
        reads an alpha (the derived DARTS network sums its chosen edges
        unweighted), and it applies each remaining choice to its own input.
        """
        if isinstance(chosen, str):
            chosen = [chosen]
        chosen = list(chosen)
        if not chosen:
            raise ValueError(f"In {self.space_id}: export needs at least one chosen name")
        unknown = [name for name in chosen if name not in self.choices]
        if unknown:
            raise ValueError(
                f"In {self.space_id}: cannot export unknown choice(s) {unknown}; "
                f"available: {self.choice_names}"
            )
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"In {self.space_id}: export got duplicate names {chosen}")
        for name in self.choice_names:
            if name not in chosen:
                del self.choices[name]
        with torch.no_grad():
            for i, name in enumerate(self.full_choice_names):
                self.choice_mask[i] = name in self.choices
        self.is_exported = True
        self.__dict__["_arch_param"] = None

    def prune_choices(self, kept: Sequence[str]) -> None:
        """Keep only the choices in ``kept`` and go on searching among them.

        Unlike :meth:`export`, the mutable stays a searchable decision over
        fewer candidates: the kept names become its ``full_choice_names`` (in
        their built order), so the alpha it is bound to must shrink with it
        (:meth:`DiffMutator.prune_choices` does both). DrNAS' progressive
        search prunes every edge this way between stages.
        """
        kept = list(kept)
        if self.is_exported:
            raise ValueError(f"In {self.space_id}: an exported mutable cannot be pruned")
        unknown = [name for name in kept if name not in self.choices]
        if not kept or unknown or len(set(kept)) != len(kept):
            raise ValueError(
                f"In {self.space_id}: prune_choices needs distinct names among {self.choice_names}, "
                f"got {kept}"
            )
        if len(kept) < self.num_chosen:
            raise ValueError(
                f"In {self.space_id}: cannot keep {len(kept)} choices of which {self.num_chosen} "
                f"are chosen"
            )
        for name in self.choice_names:
            if name not in kept:
                del self.choices[name]
        self.full_choice_names = tuple(self.choices.keys())
        self.choice_mask = torch.ones(
            len(self.full_choice_names), dtype=torch.bool, device=self.choice_mask.device
        )
        self.__dict__["_arch_param"] = (
            None  # the old alpha no longer fits; the mutator binds the pruned one
        )

    # -- architecture parameter -----------------------------------------
    def build_arch_param(self) -> nn.Parameter | None:
        """A fresh alpha for this decision, or None when it has none."""
        return None

    def bind_arch_param(self, arch_param: nn.Parameter | None) -> None:
        """Use ``arch_param`` (owned by a mutator) in every later forward."""
        self.__dict__["_arch_param"] = arch_param

    @property
    def arch_param(self) -> nn.Parameter | None:
        """The alpha bound by a mutator, or None."""
        arch_param: nn.Parameter | None = self.__dict__["_arch_param"]
        return arch_param

    def _resolve_arch_param(
        self, arch_param: torch.Tensor | None, like: torch.Tensor
    ) -> torch.Tensor | None:
        """The alpha this forward uses: None when the choices are summed
        unweighted (no arch param by design, or exported), else the explicit
        ``arch_param`` or the bound one. A missing alpha is an error, never a
        silent unweighted sum (reference defect 4)."""
        if self.is_exported or not self.with_arch_param:
            return None
        alpha = self.arch_param if arch_param is None else arch_param
        if alpha is None:
            raise RuntimeError(
                f"In {self.space_id}: no architecture parameter is bound; call "
                f"mutator.prepare_from_supernet(supernet) or pass arch_param"
            )
        if alpha.shape != (len(self.full_choice_names),):
            raise ValueError(
                f"In {self.space_id}: arch_param has shape {tuple(alpha.shape)}, "
                f"expected ({len(self.full_choice_names)},)"
            )
        if alpha.device != like.device:
            raise ValueError(
                f"In {self.space_id}: arch_param is on {alpha.device} but the input is on "
                f"{like.device}; move the mutator with mutator.to(device)"
            )
        return alpha

    def _sum_chosen(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Unweighted sum of the present choices, choice i on ``inputs[i]``
        where i indexes ``full_choice_names``."""
        outputs: list[torch.Tensor] = [
            self.choices[name](inputs[i])
            for i, name in enumerate(self.full_choice_names)
            if name in self.choices
        ]
        return outputs[0] if len(outputs) == 1 else sum_tensors(outputs)

    def extra_repr(self) -> str:
        return f"space_id={self.space_id!r}, num_chosen={self.num_chosen}"
