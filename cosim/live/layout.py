"""Where the live view draws a feeder: bus positions and branch ends of a one-line diagram.

A radial feeder (the usual case) is drawn as a tree from the substation: depth to the right, each
lateral on a row of its own, the longest branch kept straight. A meshed feeder with geographic
coordinates (pandapower's `bus.geo`) is drawn at them; without them it gets the tree of a
breadth-first spanning tree, its closing branches drawn across.
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np

from cosim.grid.feeders import Feeder


def _geo(feeder: Feeder) -> np.ndarray | None:
    """(x, y) of every bus from its GeoJSON point, or None if any bus has none."""
    geo = feeder.net.bus.get("geo")
    if geo is None or geo.isna().any():
        return None
    xy = [json.loads(g).get("coordinates", [None, None])[:2] for g in geo]
    arr = np.array(xy, float)
    return arr if np.isfinite(arr).all() else None


def _tree(graph: nx.Graph, roots: list[int]) -> dict[int, tuple[float, float]]:
    """Depth-first tree layout: x = depth, y = row; the largest subtree continues its parent's row."""
    pos: dict[int, tuple[float, float]] = {}
    next_row = 0
    for root in roots + sorted(graph.nodes):
        if root in pos:
            continue
        tree = nx.bfs_tree(graph, root)
        size = {n: 1 for n in tree}
        for n in reversed(list(nx.topological_sort(tree))):
            for child in tree.successors(n):
                size[n] += size[child]
        stack = [(root, 0, next_row)]
        next_row += 1
        while stack:
            node, depth, row = stack.pop()
            pos[node] = (float(depth), float(row))
            children = sorted(tree.successors(node), key=lambda c: (-size[c], c))
            for i, child in enumerate(children):
                if i == 0:
                    child_row = row
                else:
                    child_row, next_row = next_row, next_row + 1
                stack.append((child, depth + 1, child_row))
    return pos


def one_line(feeder: Feeder) -> dict:
    """The static picture of a feeder for the page: buses (number, x, y in grid units: one per tree level and
    row), lines (number, from bus, to bus, closed at the base case), trafos, sources and the layout used."""
    net = feeder.net
    position = {idx: i for i, idx in enumerate(net.bus.index)}
    labels = [int(b) for b in feeder.bus_labels]
    open_sw = net.switch[(net.switch.et == "l") & ~net.switch.closed.astype(bool)].element if len(net.switch) else []
    lines = [{"id": int(k), "from": labels[position[f]], "to": labels[position[t]],
              "base": bool(on) and idx not in set(open_sw)}
             for k, idx, f, t, on in zip(feeder.line_labels, net.line.index, net.line.from_bus, net.line.to_bus,
                                         net.line.in_service)]
    trafos = [{"id": int(k), "from": labels[position[h]], "to": labels[position[lv]]}
              for k, h, lv in zip(feeder.trafo_labels, net.trafo.hv_bus, net.trafo.lv_bus)]
    graph = nx.Graph()
    graph.add_nodes_from(labels)
    graph.add_edges_from((b["from"], b["to"]) for b in lines if b["base"])
    graph.add_edges_from((b["from"], b["to"]) for b in trafos)
    graph.add_edges_from((labels[position[b]], labels[position[e]])
                         for b, e, et, c in zip(net.switch.bus, net.switch.element, net.switch.et, net.switch.closed)
                         if et == "b" and c)
    geo = _geo(feeder)
    if geo is not None and not nx.is_forest(graph):
        kind, xy = "geo", geo
        xy = xy * np.array([1.0, -1.0])  # north up on screen
    else:
        roots = [labels[position[b]] for b in net.ext_grid.bus]
        pos = _tree(graph, roots)
        kind, xy = "tree", np.array([pos[b] for b in labels], float)
    xy = xy - xy.min(axis=0)
    if kind == "geo":  # about as dense as a tree: the longer side spans 2 sqrt(n) units
        xy *= 2 * np.sqrt(len(labels)) / max(float(xy.max()), 1e-12)
    return {"layout": kind, "width": float(xy[:, 0].max()), "height": float(xy[:, 1].max()),
            "buses": [{"id": b, "x": round(float(x), 4), "y": round(float(y), 4)} for b, (x, y) in zip(labels, xy)],
            "lines": lines, "trafos": trafos,
            "sources": [labels[position[b]] for b in net.ext_grid.bus]}
