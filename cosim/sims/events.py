"""mosaik simulator of the event schedule: disruptions for the grid and ground-truth labels every step."""

from __future__ import annotations

import mosaik_api_v3

from cosim.events.physical import disruptions_at
from cosim.events.schedule import PHYSICAL, Schedule
from cosim.grid.model import Disruptions

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Events": {"public": True, "params": [], "attrs": ["disruptions", "signals"]}},
}


class EventsSim(mosaik_api_v3.Simulator):
    """One entity `events`: the physical disruptions in force and `label.*` signals of each step."""

    def __init__(self) -> None:
        super().__init__(META)
        self._disruptions: dict[tuple, Disruptions] = {}

    def init(self, sid, time_resolution=1.0, schedule: Schedule | None = None, step_s: int = 1):
        self.schedule, self.step_s = schedule, int(step_s)
        self.physical = schedule.on(PHYSICAL)
        return self.meta

    def create(self, num, model, **params):
        return [{"eid": "events", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time // self.step_s
        self.labels = self.schedule.labels(k)
        active = tuple(e.id for e in self.physical if e.active(k))
        if active not in self._disruptions:  # the same object while nothing changes: the grid skips it
            self._disruptions[active] = disruptions_at(self.physical, k)
        self.disruptions = self._disruptions[active]
        return time + self.step_s

    def get_data(self, outputs):
        return {"events": {"disruptions": self.disruptions, "signals": self.labels.signals()}}
