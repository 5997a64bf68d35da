"""A feeder's closed branches, their series impedance in per unit on 1 MVA, and their spanning tree.

A line's impedance is its length times its per-km impedance over its parallel count, on the kV^2 base of
its from bus; a transformer's is its short-circuit impedance (vk, vkr) on its rating times its parallel
count; a closed bus-bus switch has none. A line or transformer that an open switch cuts carries nothing,
so it is left out (SimBench's MV feeders are meshed by lines whose sectionalising switch is open). Shared by
the linearised feeder model of the controllers and the per-DER feeder tree.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim.grid.feeders import Feeder


@dataclass(frozen=True)
class Branches:
    """Branch k joins bus positions ends[k] (from, to) of the feeder's net, with series r[k] + j x[k] pu."""

    ends: np.ndarray  # (branches, 2) int
    r: np.ndarray
    x: np.ndarray


@dataclass(frozen=True)
class SpanningTree:
    """Breadth-first tree of the branches from the substation, by bus position: `order` lists the buses it
    reaches (root first), `parent` and `up` (the branch to the parent) are -1 at the others, root's parent is
    itself."""

    root: int
    order: np.ndarray
    parent: np.ndarray
    up: np.ndarray


def _closed(net, kind: str, table: pd.DataFrame) -> pd.DataFrame:
    """The in-service rows of a line or trafo table that no open switch of element type `kind` cuts."""
    sw = net.switch
    cut = sw.element[(sw.et == kind) & ~sw.closed.astype(bool)] if len(sw) else []
    return table[table.in_service.astype(bool) & ~table.index.isin(cut)]


def branches(feeder: Feeder) -> Branches:
    """Closed lines, then closed transformers (hv to lv), then closed bus-bus switches, of a feeder."""
    net = feeder.net
    pos = pd.Index(net.bus.index)
    lines = _closed(net, "l", net.line)
    f, t = pos.get_indexer(lines.from_bus), pos.get_indexer(lines.to_bus)
    per = lines.length_km.to_numpy(float) / lines.parallel.to_numpy(float) / net.bus.vn_kv.to_numpy(float)[f] ** 2
    ends = [np.column_stack([f, t])]
    r, x = [lines.r_ohm_per_km.to_numpy(float) * per], [lines.x_ohm_per_km.to_numpy(float) * per]
    if len(net.trafo):
        tr = _closed(net, "t", net.trafo)
        sn = tr.sn_mva.to_numpy(float) * tr.parallel.to_numpy(float)
        rk, zk = tr.vkr_percent.to_numpy(float) / 100.0 / sn, tr.vk_percent.to_numpy(float) / 100.0 / sn
        ends.append(np.column_stack([pos.get_indexer(tr.hv_bus), pos.get_indexer(tr.lv_bus)]))
        r.append(rk)
        x.append(np.sqrt(np.maximum(zk**2 - rk**2, 0.0)))
    if len(net.switch):
        bb = net.switch[(net.switch.et == "b") & net.switch.closed.astype(bool)]
        ends.append(np.column_stack([pos.get_indexer(bb.bus), pos.get_indexer(bb.element)]))
        r.append(np.zeros(len(bb)))
        x.append(np.zeros(len(bb)))
    return Branches(np.vstack(ends).astype(np.int64), np.concatenate(r), np.concatenate(x))


def spanning_tree(feeder: Feeder, br: Branches) -> SpanningTree:
    """The breadth-first tree of branches `br` from the first in-service external grid's bus: a radial feeder's
    only tree, a meshed one's tree of fewest branches to the substation."""
    net = feeder.net
    n = len(net.bus)
    neighbours: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # (bus, branch)
    for k, (a, b) in enumerate(br.ends.tolist()):
        if a >= 0 and b >= 0 and a != b:
            neighbours[a].append((b, k))
            neighbours[b].append((a, k))
    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    root = int(pd.Index(net.bus.index).get_indexer(ext.bus)[0]) if len(ext) else 0
    parent, up = np.full(n, -1), np.full(n, -1)
    parent[root] = root
    order, queue = [], deque([root])
    while queue:
        u = queue.popleft()
        order.append(u)
        for v, k in neighbours[u]:
            if parent[v] < 0:
                parent[v], up[v] = u, k
                queue.append(v)
    return SpanningTree(root, np.array(order, np.int64), parent, up)
