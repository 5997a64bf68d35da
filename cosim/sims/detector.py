"""mosaik simulator of the run's detectors: each one's alarm, score and extras every step.

In its own process or on another host (`python -m cosim.sims.detector`, docs/placement.md) it
builds the detectors from the scenario, as the run does; what they add to the run's events
(a python detector's `detector_error`) leaves as the output `log`.
"""

from __future__ import annotations

import mosaik_api_v3

from cosim.detection.runtime import Running
from cosim.sims.remote import Outbox, plain, rebuild

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Detector": {"public": True, "params": [], "attrs": ["measurements", "signals", "log"]}},
}


class DetectorSim(mosaik_api_v3.Simulator):
    """The detectors on the measurements the controller sees; publishes `detector.*` signals."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, detectors: list[Running] | None = None, scenario: dict | None = None):
        """In-process: the run's `detectors`. Elsewhere: `scenario` (plain data, `cosim.sims.remote.scenario_spec`)."""
        self.events = Outbox() if scenario is not None else None
        if self.events is not None:
            detectors = rebuild(scenario, self.events).detectors
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
        if self.events is None:
            return {"detector": {"signals": self.signals}}
        log = {"log": self.events.drain()} if "log" in outputs.get("detector", []) else {}
        return {"detector": {"signals": plain(self.signals), **log}}


if __name__ == "__main__":
    from cosim.sims.remote import serve

    serve(DetectorSim(), "The cosim detector simulator (mosaik remote API).")
