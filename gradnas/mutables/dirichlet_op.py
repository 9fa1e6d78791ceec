"""DrNAS' mixed op: weights drawn from a Dirichlet distribution over the ops.

Chen et al., "DrNAS: Dirichlet Neural Architecture Search", ICLR 2021: the
architecture is a distribution, Dirichlet(beta) with concentration
``beta = elu(alpha) + 1`` (positive for every real alpha), and every forward
weighs the ops by a reparameterised sample of it, so the loss gradient
reaches alpha through the sample (pathwise derivative, as
``torch.distributions.Dirichlet.rsample`` implements it).

Derivation uses the distribution's mean ``beta / sum(beta)``. Within one
decision it orders the ops exactly as softmax(alpha) does (``elu(a) + 1``
and ``exp(a)`` are both strictly increasing in ``a``), so the DARTS rule's
best op per edge is the same under either. Across edges the two values
differ, so the choice of which inputs a node keeps may too; the DrNAS
release derives with softmax(alpha) (``process_step_matrix(..., 'softmax')``
in ``genotype()``), which is what ``DartsMutator`` computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet

from .differentiable_op import DifferentiableOP


def dirichlet_concentration(arch_param: torch.Tensor) -> torch.Tensor:
    """DrNAS' map from an unconstrained alpha to a concentration: ``elu(alpha) + 1 > 0``."""
    return F.elu(arch_param) + 1.0


class DirichletOP(DifferentiableOP):
    """Weighs its choices by one sample of Dirichlet(elu(alpha) + 1) per forward.

    Each mutable draws its own sample, so cells sharing a decision see
    independent samples of the same distribution (the DrNAS release draws
    one sample per network forward and reuses it in every cell).
    """

    def compute_arch_probs(self, arch_param: torch.Tensor) -> torch.Tensor:
        return Dirichlet(dirichlet_concentration(arch_param)).rsample()

    @staticmethod
    def mean_probs(arch_param: torch.Tensor) -> torch.Tensor:
        """The Dirichlet's mean ``beta / sum(beta)``: the expected op weights."""
        concentration = dirichlet_concentration(arch_param)
        return concentration / concentration.sum(dim=-1, keepdim=True)
