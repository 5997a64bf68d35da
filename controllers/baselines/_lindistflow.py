"""LinDistFlow: the linearised branch-flow model of a radial feeder, for the mpc controller.

With S_base = 1 MVA and every quantity in per unit, LinDistFlow (Baran & Wu 1989, without the
loss terms) gives each branch's flow as the sum of the net loads below it, P_b = (D^T p_load)_b,
and each bus's voltage change for injection changes (generation positive) as
dV_i = sum_j (R_ij dp_j + X_ij dq_j) / V_i, where R_ij (X_ij) is the resistance (reactance) of
the path the substation shares with buses i and j. Losses are sum_b r_b (P_b^2 + Q_b^2) at 1 pu.
Branches are closed lines, transformers (their short-circuit impedance) and bus-bus switches; a meshed
feeder is read as its breadth-first spanning tree from the external grid, so the model is for radial feeders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.grid.branches import branches, spanning_tree
from cosim.grid.feeders import Feeder


@dataclass(frozen=True)
class LinDistFlow:
    """Path matrix and branch impedances of a feeder, by bus position of its net."""

    path: np.ndarray  # (buses x branches) 1 where the branch lies between the substation and the bus
    r: np.ndarray  # branch resistance, pu on 1 MVA
    x: np.ndarray
    root: int  # the substation bus position

    @property
    def R(self) -> np.ndarray:  # noqa: N802  (the textbook name)
        """Shared-path resistance of every bus pair (pu)."""
        return (self.path * self.r) @ self.path.T

    @property
    def X(self) -> np.ndarray:  # noqa: N802
        """Shared-path reactance of every bus pair (pu)."""
        return (self.path * self.x) @ self.path.T

    def flows(self, load: np.ndarray) -> np.ndarray:
        """Branch flows (towards the buses below) of net loads per bus (load positive), same unit as the loads."""
        return self.path.T @ load

    def losses_mw(self, p_load: np.ndarray, q_load: np.ndarray) -> float:
        """Branch losses (MW) of net loads per bus in MW and Mvar."""
        return float(self.r @ (self.flows(p_load) ** 2 + self.flows(q_load) ** 2))


def lindistflow(feeder: Feeder) -> LinDistFlow:
    """The LinDistFlow model of a feeder's closed lines, transformers and bus-bus switches."""
    br = branches(feeder)
    tree = spanning_tree(feeder, br)
    path = np.zeros((len(feeder.net.bus), len(br.r)))
    for u in tree.order[1:]:  # parents come first: a bus's path is its parent's plus its own branch
        path[u] = path[tree.parent[u]]
        path[u, tree.up[u]] = 1.0
    return LinDistFlow(path, br.r, br.x, tree.root)
