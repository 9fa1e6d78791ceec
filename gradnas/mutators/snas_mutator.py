"""Derivation by SNAS' argmax rule: every edge keeps its strongest op, ``none`` included.

Xie et al., "SNAS: Stochastic Neural Architecture Search", ICLR 2019 derive
the child network from the argmax of every edge's distribution over all ops;
an edge whose argmax is ``none`` carries nothing and is dropped (the SNAS
release builds its child from ``genotype_edge_all``, every edge's argmax).
So a node keeps any number of its inputs, from none to all.
"""

from __future__ import annotations

from ..mutables import DifferentiableEdge
from .darts_mutator import DartsMutator, Subnet, outermost_mutables

ZERO_OP = "none"


class SnasMutator(DartsMutator):
    """A :class:`DartsMutator` whose ``search_subnet()`` applies the argmax rule.

    - Every op decision keeps its argmax over *all* choices by softmax(alpha)
      (ties go to the earlier choice).
    - An edge decision keeps, in input order, the inputs whose op's argmax is
      not ``zero_op``; ``num_chosen`` and any edge alpha are ignored (an edge
      alpha scales all ops of an input alike, so it never moves an argmax).
      An input without an op mutable is always kept.
    - A node whose every input is dropped keeps an empty list,
      ``{'chosen': []}``, and its genotype node has no inputs. Its supernet
      output at the argmax is zero (every input went through ``none``), so a
      derived network computes that node as zeros of the node's shape, which
      keeps the cell's concatenation and channel count unchanged.
      ``deploy_subnet`` cannot export such a subnet in place (an exported
      mutable keeps at least one choice); build the derived network from the
      genotype instead.
    """

    def __init__(self, zero_op: str = ZERO_OP) -> None:
        super().__init__(ignore_choices=())
        self.zero_op = zero_op

    def search_subnet(self) -> Subnet:
        """``{edge_space_id: {'chosen': [kept inputs]}, op_space_id: {'chosen': [op]}}``;
        ops of dropped edges are left out, as in :meth:`DartsMutator.search_subnet`."""
        subnet: Subnet = {}
        under_edges: set[str] = set()
        for space_id, members in self.search_spaces.items():
            edge = members[0]
            if not isinstance(edge, DifferentiableEdge):
                continue
            if space_id in self.arch_params and not any(
                outermost_mutables(edge.choices[name]) for name in edge.full_choice_names
            ):
                # No op decides this edge's inputs, only its own alpha (a custom space's
                # edge): its argmax is the num_chosen strongest inputs, as DARTS ranks them.
                probs = self.arch_params[space_id].detach().double().softmax(-1).tolist()
                names = list(edge.full_choice_names)
                order = sorted(range(len(names)), key=lambda i: -probs[i])[: edge.num_chosen]
                subnet[space_id] = {"chosen": [names[i] for i in order]}
                continue
            kept = []
            for name in edge.full_choice_names:
                ops = outermost_mutables(edge.choices[name])
                under_edges.update(op.space_id for op in ops)
                best = [(op.space_id, self._best_op(op)[0]) for op in ops]
                if ops and best[0][1] == self.zero_op:
                    continue  # the edge's first op carries nothing: the input is dropped
                kept.append(name)
                for op_space_id, op_name in best:
                    subnet[op_space_id] = {"chosen": [op_name]}
            subnet[space_id] = {"chosen": kept}
        for space_id, members in self.search_spaces.items():
            top_level_op = space_id not in under_edges and not isinstance(
                members[0], DifferentiableEdge
            )
            if top_level_op and space_id not in subnet:
                subnet[space_id] = {"chosen": [self._best_op(members[0])[0]]}
        return subnet
