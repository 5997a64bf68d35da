"""LinDistFlow: the linearised branch-flow model of a radial feeder, for the mpc controller.

With S_base = 1 MVA and every quantity in per unit, LinDistFlow (Baran & Wu 1989, without the
loss terms) gives each branch's flow as the sum of the net loads below it, P_b = (D^T p_load)_b,
and each bus's voltage change for injection changes (generation positive) as
dV_i = sum_j (R_ij dp_j + X_ij dq_j) / V_i, where R_ij (X_ij) is the resistance (reactance) of
the path the substation shares with buses i and j. Losses are sum_b r_b (P_b^2 + Q_b^2) at 1 pu.
Branches are lines and transformers (their short-circuit impedance); a meshed feeder is read as
its breadth-first spanning tree from the external grid, so the model is for radial feeders.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim.grid.branches import branches
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
    """The LinDistFlow model of a feeder's in-service lines and transformers."""
    net = feeder.net
    pos = pd.Index(net.bus.index)
    br = branches(feeder)
    ends = br.ends.tolist()
    n = len(pos)
    neighbours: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for b, (i, j) in enumerate(ends):
        neighbours[i].append((j, b))
        neighbours[j].append((i, b))
    root = int(pos.get_indexer(net.ext_grid.bus)[0])
    up_branch, parent = np.full(n, -1), np.full(n, -1)
    parent[root] = root
    queue = deque([root])
    order = []
    while queue:
        u = queue.popleft()
        order.append(u)
        for v, b in neighbours[u]:
            if parent[v] < 0:
                parent[v], up_branch[v] = u, b
                queue.append(v)
    path = np.zeros((n, len(ends)))
    for u in order[1:]:  # parents come first: a bus's path is its parent's plus its own branch
        path[u] = path[parent[u]]
        path[u, up_branch[u]] = 1.0
    return LinDistFlow(path, br.r, br.x, root)
