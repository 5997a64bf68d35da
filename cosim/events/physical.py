"""Physical disruptions in force at a step, as the grid model's `Disruptions` state."""

from __future__ import annotations

from typing import Callable, Sequence

from cosim.detection.network import Network, Topology
from cosim.events.schedule import ScheduledEvent
from cosim.grid.model import Disruptions
from cosim.scenario.schema import CloudTransient, DGTrip, LineOutage, LoadStep, TrafoOutage


def disruptions_at(events: Sequence[ScheduledEvent], k: int) -> Disruptions:
    """The combined effect of the physical events active at step k (an empty state when none is)."""
    lines, trafos, tripped, loads, clouds = set(), set(), set(), [], []
    for e in events:
        if not e.active(k):
            continue
        s = e.spec
        if isinstance(s, LineOutage):
            lines.add(s.line)
        elif isinstance(s, TrafoOutage):
            trafos.add(s.trafo)
        elif isinstance(s, DGTrip):
            tripped.update(e.targets)
        elif isinstance(s, LoadStep):
            loads += [(int(t.split(".")[1]), s.factor) for t in e.targets]
        elif isinstance(s, CloudTransient):
            clouds += [(name, 1.0 - s.depth) for name in e.targets]
    return Disruptions(frozenset(lines), frozenset(trafos), frozenset(tripped), tuple(loads), tuple(clouds))


def topology_timeline(network: Network, events: Sequence[ScheduledEvent]) -> Callable[[int], Topology]:
    """Step -> the estimator's topology with that step's outages (breaker status telemetry)."""
    def at(k: int) -> Topology:
        d = disruptions_at(events, k)
        return network.topology(d.lines_out, d.trafos_out)
    return at
