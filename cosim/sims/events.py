"""mosaik simulator of the event schedule: disruptions for the grid and ground-truth labels every step.

The disruptions travel as plain data (`plain_disruptions`), so the grid may run in another process.
"""

from __future__ import annotations

from collections.abc import Sequence

import mosaik_api_v3

from cosim.events.physical import DisruptionTimeline
from cosim.events.restoration import Switching
from cosim.events.schedule import Schedule
from cosim.grid.model import Disruptions

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Events": {"public": True, "params": [], "attrs": ["disruptions", "signals"]}},
}


def plain_disruptions(d: Disruptions) -> dict[str, list]:
    """`Disruptions` as JSON-serialisable lists (sets sorted); `disruptions_from` reads them back equal."""
    return {"lines_out": sorted(int(i) for i in d.lines_out), "trafos_out": sorted(int(i) for i in d.trafos_out),
            "ders_tripped": sorted(d.ders_tripped), "load_factor": [[int(b), float(f)] for b, f in d.load_factor],
            "der_availability": [[n, float(f)] for n, f in d.der_availability],
            "lines_closed": sorted(int(i) for i in d.lines_closed)}


def disruptions_from(data: dict[str, list]) -> Disruptions:
    """The `Disruptions` of `plain_disruptions` output."""
    return Disruptions(lines_out=frozenset(data["lines_out"]), trafos_out=frozenset(data["trafos_out"]),
                       ders_tripped=frozenset(data["ders_tripped"]),
                       load_factor=tuple((b, f) for b, f in data["load_factor"]),
                       der_availability=tuple((n, f) for n, f in data["der_availability"]),
                       lines_closed=frozenset(data.get("lines_closed", ())))


class EventsSim(mosaik_api_v3.Simulator):
    """One entity `events`: the physical disruptions in force and `label.*` signals of each step."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, schedule: Schedule | None = None, switchings: Sequence[Switching] = ()):
        self.schedule = schedule
        self.timeline = DisruptionTimeline(schedule.events, switchings)
        return self.meta

    def create(self, num, model, **params):
        return [{"eid": "events", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time
        self.labels = self.schedule.labels(k)
        self.disruptions = plain_disruptions(self.timeline.at(k))
        return time + 1

    def get_data(self, outputs):
        return {"events": {"disruptions": self.disruptions, "signals": self.labels.signals()}}
