"""The feeder as a tree rooted at the substation: each bus's parent and main child, by published bus number.

A per-DER policy reads the voltages next to its own bus along the feeder path. On a radial feeder
the parent is the bus one branch closer to the substation; the main child is the child with the
largest subtree (where the feeder continues). The substation's parent is itself and a leaf's child
is itself, so every bus has both neighbours. A meshed feeder gets the breadth-first spanning tree.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim.grid.feeders import Feeder


@dataclass(frozen=True)
class FeederTree:
    """Parent and main child of every bus (published numbers), and the substation bus."""

    root: int
    parent: dict[int, int]
    child: dict[int, int]


def _edges(feeder: Feeder) -> np.ndarray:
    """Bus-position pairs of in-service lines, transformers and closed bus-bus switches."""
    net = feeder.net
    pos = pd.Index(net.bus.index)
    pairs = [np.column_stack([pos.get_indexer(net.line.from_bus), pos.get_indexer(net.line.to_bus)])
             [net.line.in_service.to_numpy(bool)]]
    if len(net.trafo):
        pairs.append(np.column_stack([pos.get_indexer(net.trafo.hv_bus), pos.get_indexer(net.trafo.lv_bus)])
                     [net.trafo.in_service.to_numpy(bool)])
    sw = net.switch
    if len(sw):
        bb = sw[(sw.et == "b") & sw.closed.astype(bool)]
        pairs.append(np.column_stack([pos.get_indexer(bb.bus), pos.get_indexer(bb.element)]))
    return np.vstack(pairs).astype(np.int64)


def feeder_tree(feeder: Feeder) -> FeederTree:
    """Breadth-first tree from the (first in-service) external grid's bus."""
    net = feeder.net
    n = len(net.bus)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in _edges(feeder):
        if a >= 0 and b >= 0 and a != b:
            neighbours[a].append(b)
            neighbours[b].append(a)
    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    root = int(pd.Index(net.bus.index).get_indexer(ext.bus)[0]) if len(ext) else 0
    parent = np.full(n, -1)
    parent[root] = root
    order, queue = [], deque([root])
    while queue:
        u = queue.popleft()
        order.append(u)
        for v in neighbours[u]:
            if parent[v] < 0:
                parent[v] = u
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
                      {labels[i]: labels[child[i]] for i in range(n)})
