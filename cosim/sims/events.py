"""mosaik simulator of the event schedule: disruptions for the grid and ground-truth labels every step."""

from __future__ import annotations

import mosaik_api_v3

from cosim.events.physical import DisruptionTimeline
from cosim.events.schedule import Schedule

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Events": {"public": True, "params": [], "attrs": ["disruptions", "signals"]}},
}


class EventsSim(mosaik_api_v3.Simulator):
    """One entity `events`: the physical disruptions in force and `label.*` signals of each step."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, schedule: Schedule | None = None):
        self.schedule = schedule
        self.timeline = DisruptionTimeline(schedule.events)
        return self.meta

    def create(self, num, model, **params):
        return [{"eid": "events", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time
        self.labels = self.schedule.labels(k)
        self.disruptions = self.timeline.at(k)
        return time + 1

    def get_data(self, outputs):
        return {"events": {"disruptions": self.disruptions, "signals": self.labels.signals()}}
