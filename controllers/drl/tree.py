"""The feeder as a tree rooted at the substation: each bus's parent and main child, by published bus number.

A per-DER policy reads the voltages next to its own bus along the feeder path. On a radial feeder
the parent is the bus one branch closer to the substation; the main child is the child with the
largest subtree (where the feeder continues). The substation's parent is itself and a leaf's child
is itself, so every bus has both neighbours. A meshed feeder gets the breadth-first spanning tree.

Each bus also gets the series resistance and reactance of its path to the substation (pu on 1 MVA):
by LinDistFlow (Baran & Wu 1989) a bus's voltage moves by R P + X Q (pu) per MW and Mvar injected
there, so these say how strongly a DER's own P and Q act on its voltage.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cosim.grid.branches import branches
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


def _edges(feeder: Feeder) -> tuple[np.ndarray, np.ndarray]:
    """Bus-position pairs of in-service lines, transformers and closed bus-bus switches, and each one's
    series impedance (r, x) in pu on 1 MVA (a switch has none)."""
    br = branches(feeder)
    pairs, imp = [br.ends], [np.column_stack([br.r, br.x])]
    sw = feeder.net.switch
    if len(sw):
        pos = pd.Index(feeder.net.bus.index)
        bb = sw[(sw.et == "b") & sw.closed.astype(bool)]
        pairs.append(np.column_stack([pos.get_indexer(bb.bus), pos.get_indexer(bb.element)]))
        imp.append(np.zeros((len(bb), 2)))
    return np.vstack(pairs).astype(np.int64), np.vstack(imp)


def feeder_tree(feeder: Feeder) -> FeederTree:
    """Breadth-first tree from the (first in-service) external grid's bus."""
    net = feeder.net
    n = len(net.bus)
    neighbours: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # (bus, edge)
    pairs, imp = _edges(feeder)
    for e, (a, b) in enumerate(pairs):
        if a >= 0 and b >= 0 and a != b:
            neighbours[a].append((b, e))
            neighbours[b].append((a, e))
    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    root = int(pd.Index(net.bus.index).get_indexer(ext.bus)[0]) if len(ext) else 0
    parent = np.full(n, -1)
    parent[root] = root
    z_path = np.zeros((n, 2))
    order, queue = [], deque([root])
    while queue:
        u = queue.popleft()
        order.append(u)
        for v, e in neighbours[u]:
            if parent[v] < 0:
                parent[v] = u
                z_path[v] = z_path[u] + imp[e]
                queue.append(v)
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
