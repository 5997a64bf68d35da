"""mosaik simulator that hands every published `signals` dict to a `Recording`."""

from __future__ import annotations

from typing import Callable

import mosaik_api_v3

from cosim.recording import Recording

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Recorder": {"public": True, "params": [], "attrs": ["signals"]}},
}


class RecorderSim(mosaik_api_v3.Simulator):
    """Merges the signals of all sources into one row per step (sources in connection order)."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, recording: Recording | None = None,
             on_step: Callable[[int], None] | None = None):
        self.recording, self.on_step = recording, on_step
        return self.meta

    def create(self, num, model, **params):
        return [{"eid": "recorder", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time
        sources = inputs.get("recorder", {}).get("signals", {})
        if len(sources) == 1:
            row = next(iter(sources.values()))
        else:
            row = {}
            for values in sources.values():
                row.update(values)
        self.recording.append(k, row)
        if self.on_step is not None:
            self.on_step(k + 1)
        return time + 1

    def get_data(self, outputs):
        return {}
