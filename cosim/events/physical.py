"""Physical disruptions in force at a step, as the grid model's `Disruptions` state.

Each physical kind contributes its share (`Kind.disrupt`: Disruptions field -> values); sets of
elements are united, per-element factors are concatenated in the order of the events.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Sequence

from cosim.detection.network import Network, Topology
from cosim.events.base import PHYSICAL
from cosim.events.registry import kind_of
from cosim.events.schedule import ScheduledEvent
from cosim.grid.model import Disruptions

if TYPE_CHECKING:
    from cosim.events.restoration import Switching

_NONE = Disruptions()


def disruptions_at(events: Sequence[ScheduledEvent], k: int) -> Disruptions:
    """The combined effect of the physical events active at step k (an empty state when none is)."""
    parts: dict[str, list] = {}
    for e in events:
        if e.path == PHYSICAL and e.active(k):
            for name, values in kind_of(e.spec).disrupt(e).items():
                parts.setdefault(name, []).extend(values)
    return Disruptions(**{name: frozenset(v) if isinstance(getattr(_NONE, name), frozenset) else tuple(v)
                          for name, v in parts.items()})


class DisruptionTimeline:
    """Step -> the disruptions in force, one object per combination of active physical events and restoration
    switchings (tie lines closed, `cosim.events.restoration`), so the grid model sees the same object (and
    skips the update) while nothing changes."""

    def __init__(self, events: Sequence[ScheduledEvent], switchings: Sequence[Switching] = ()):
        self.events = [e for e in events if e.path == PHYSICAL]
        self.switchings = tuple(switchings)
        self._by_active: dict[tuple, Disruptions] = {}

    def __bool__(self) -> bool:
        return bool(self.events)

    def at(self, k: int) -> Disruptions:
        """The disruptions in force at step k."""
        active = tuple(e.id for e in self.events if e.active(k))
        ties = frozenset(s.tie for s in self.switchings if s.start <= k < s.end)
        d = self._by_active.get((active, ties))
        if d is None:
            d = self._by_active[(active, ties)] = replace(disruptions_at(self.events, k), lines_closed=ties)
        return d


def topology_timeline(network: Network, events: Sequence[ScheduledEvent]) -> Callable[[int], Topology]:
    """Step -> the estimator's topology with that step's outages (breaker status telemetry)."""
    timeline = DisruptionTimeline(events)

    def at(k: int) -> Topology:
        d = timeline.at(k)
        return network.topology(d.lines_out, d.trafos_out)
    return at
