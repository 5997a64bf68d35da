"""The meters an attacker reaches from a foothold: the substation's RTU, one feeder's field devices, or all.

- `substation`: the slack bus, the busbars its transformers and closed bus-bus switches feed, and every
  line leaving them (the feeder-head flow meters sit at the substation's breakers);
- `feeder`: every bus of the feeder(s) holding the attacked buses (what stays connected to them in the
  base case once the substation's buses are removed) and every line with both ends on it;
- `all`: every meter (a compromised control centre).
"""

from __future__ import annotations

import networkx as nx
import pandapower.topology as top

from cosim.grid.feeders import Feeder

ACCESS = ("substation", "feeder", "all")


def substation_buses(feeder: Feeder) -> set[int]:
    """pandapower indices of the substation's buses: the slack bus(es), one transformer down, with the buses
    closed bus-bus switches join to them."""
    net = feeder.net
    buses = set(net.ext_grid.bus[net.ext_grid.in_service].tolist())
    trafos = net.trafo[net.trafo.in_service]
    buses |= set(trafos.lv_bus[trafos.hv_bus.isin(buses)].tolist())
    closed = net.switch[(net.switch.et == "b") & net.switch.closed]
    joined = nx.Graph(list(zip(closed.bus.tolist(), closed.element.tolist())))
    return buses | {b for c in nx.connected_components(joined) if c & buses for b in c}


def reach(feeder: Feeder, access: str, buses: list[int]) -> tuple[set[int], set[int]]:
    """(bus labels, line labels) whose meters an attacker with `access` writes; `buses` are the attacked ones."""
    net = feeder.net
    label = dict(zip(net.bus.index.tolist(), feeder.bus_labels.tolist()))
    line_label = dict(zip(net.line.index.tolist(), feeder.line_labels.tolist()))
    ends = list(zip(net.line.index.tolist(), net.line.from_bus.tolist(), net.line.to_bus.tolist()))
    if access == "all":
        return set(label.values()), set(line_label.values())
    station = substation_buses(feeder)
    if access == "substation":
        zone = station
        lines = {k for k, f, t in ends if f in station or t in station}
    elif access == "feeder":
        graph = top.create_nxgraph(net, nogobuses=station)
        attacked = {feeder.bus_index(b) for b in buses}
        zone = {b for c in nx.connected_components(graph) if c & attacked for b in c}
        lines = {k for k, f, t in ends if f in zone and t in zone}
    else:
        raise ValueError(f"access must be one of {', '.join(ACCESS)}, not {access!r}")
    return {label[b] for b in zone}, {line_label[k] for k in lines}


def reachable_meters(feeder: Feeder, access: str, buses: list[int], metered: tuple[str, ...]) -> tuple[str, ...]:
    """The meters of `metered` (`bus.<n>.*`, `line.<n>.*`) an attacker with `access` writes."""
    zone = dict(zip(("bus", "line"), reach(feeder, access, buses)))
    return tuple(n for n in metered if int(n.split(".")[1]) in zone.get(n.split(".")[0], ()))
