"""mosaik simulator that writes what remote simulators publish into the run's own records.

A simulator in another process cannot add to the run's `EventLog` or `run_metrics`; it publishes
`log` (its `Outbox` calls of the step) and `metrics` (its run metrics so far) instead, and this
in-process entity replays them each step (see `cosim.sims.remote`).
"""

from __future__ import annotations

import mosaik_api_v3

from cosim.eventlog import EventLog
from cosim.sims.remote import LOGGED

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Relay": {"public": True, "params": [], "attrs": ["log", "metrics"]}},
}


class RelaySim(mosaik_api_v3.Simulator):
    """One entity `relay`; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, events: EventLog | None = None, metrics: dict | None = None):
        self.events, self.metrics = events, metrics
        return self.meta

    def create(self, num, model, **params):
        return [{"eid": "relay", "type": model}]

    def step(self, time, inputs, max_advance):
        inp = inputs.get("relay", {})
        for calls in inp.get("log", {}).values():
            for method, args, kwargs in calls:
                if method not in LOGGED:
                    raise ValueError(f"a remote simulator sent the unknown event-log call {method!r}")
                getattr(self.events, method)(*args, **kwargs)
        for values in inp.get("metrics", {}).values():
            self.metrics.update(values)
        return time + 1

    def get_data(self, outputs):
        return {}
