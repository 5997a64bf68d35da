"""The feeder as a tree rooted at the substation: each bus's parent and main child, by published bus number.

A per-DER policy reads the voltages next to its own bus along the feeder path. On a radial feeder
the parent is the bus one branch closer to the substation; the main child is the child with the
largest subtree (where the feeder continues). The substation's parent is itself and a leaf's child
is itself, so every bus has both neighbours. A meshed feeder gets the breadth-first spanning tree of its
closed branches (a line an open switch cuts is no path).

Each bus also gets the series resistance and reactance of its path to the substation (pu on 1 MVA):
by LinDistFlow (Baran & Wu 1989) a bus's voltage moves by R P + X Q (pu) per MW and Mvar injected
there, so these say how strongly a DER's own P and Q act on its voltage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cosim.grid.branches import branches, spanning_tree
from cosim.grid.feeders import Feeder


@dataclass(frozen=True)
class FeederTree:
    """Parent and main child of every bus (published numbers), the substation bus, and each bus's path
    resistance and reactance to the substation in pu on 1 MVA."""

    root: int
    parent: dict[int, int]
    child: dict[int, int]
    r_path: dict[int, float] = field(default_factory=dict)
    x_path: dict[int, float] = field(default_factory=dict)


def feeder_tree(feeder: Feeder) -> FeederTree:
    """The spanning tree of the feeder's closed branches from the substation, by published bus number."""
    br = branches(feeder)
    tree = spanning_tree(feeder, br)
    n, order, root = len(feeder.net.bus), tree.order, tree.root
    z_path = np.zeros((n, 2))
    for u in order[1:]:  # parents come first
        z_path[u] = z_path[tree.parent[u]] + (br.r[tree.up[u]], br.x[tree.up[u]])
    parent = tree.parent.copy()
    size = np.ones(n, np.int64)
    for u in reversed(order[1:]):
        size[parent[u]] += size[u]
    child = np.arange(n)
    best = np.zeros(n, np.int64)
    for u in order[1:]:
        p = parent[u]
        if size[u] > best[p]:
            best[p], child[p] = size[u], u
    labels = [int(x) for x in feeder.bus_labels]
    parent = np.where(parent < 0, np.arange(n), parent)  # buses not connected to the substation stand alone
    return FeederTree(labels[root], {labels[i]: labels[parent[i]] for i in range(n)},
                      {labels[i]: labels[child[i]] for i in range(n)},
                      {labels[i]: float(z_path[i, 0]) for i in range(n)},
                      {labels[i]: float(z_path[i, 1]) for i in range(n)})
