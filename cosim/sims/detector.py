"""mosaik simulator of the run's detectors: each one's alarm, score and extras every step."""

from __future__ import annotations

import mosaik_api_v3

from cosim.detection.runtime import Running

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Detector": {"public": True, "params": [], "attrs": ["measurements", "signals"]}},
}


class DetectorSim(mosaik_api_v3.Simulator):
    """The detectors on the measurements the controller sees; publishes `detector.*` signals."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, detectors: list[Running] | None = None):
        self.detectors = detectors or []
        return self.meta

    def create(self, num, model, **params):
        return [{"eid": "detector", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time
        seen = next(iter(inputs["detector"]["measurements"].values()))
        self.signals = {}
        for d in self.detectors:
            self.signals.update(d.signals(k, seen))
        return time + 1

    def get_data(self, outputs):
        return {"detector": {"signals": self.signals}}
