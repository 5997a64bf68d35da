"""mosaik simulator of a communication channel: sensor noise and attacks between grid and controller,
or attacks between controller and devices.

Start one instance per entity (MeasurementChannel, CommandChannel): mosaik orders simulators,
not entities, and one instance holding both would close a loop through the controller.
"""

from __future__ import annotations

import mosaik_api_v3

from cosim.events.commands import CommandPath
from cosim.events.measurement import MeasurementPath

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {
        "MeasurementChannel": {"public": True, "params": [], "attrs": ["measurements", "seen", "signals"]},
        "CommandChannel": {"public": True, "params": [], "attrs": ["commands", "delivered", "signals"]},
    },
}


class ChannelSim(mosaik_api_v3.Simulator):
    """Runs one `MeasurementPath` or `CommandPath` per step; `signals` carries the seen values to record."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, path: MeasurementPath | CommandPath | None = None):
        self.path = path
        self.out: dict[str, dict] = {}
        return self.meta

    def create(self, num, model, **params):
        if num != 1 or self.out:
            raise ValueError("one channel entity per simulator instance")
        self.eid = "mchan" if model == "MeasurementChannel" else "cchan"
        return [{"eid": self.eid, "type": model}]

    def step(self, time, inputs, max_advance):
        k = time
        inp = inputs.get(self.eid, {})
        if isinstance(self.path, MeasurementPath):
            seen, record = self.path.step(k, next(iter(inp["measurements"].values())))
            self.out = {"seen": seen, "signals": record}
        else:
            sent: dict[str, float] = {}
            for commands in inp.get("commands", {}).values():
                sent.update(commands)
            self.out = {"delivered": self.path.step(k, sent), "signals": self.path.record()}
        return time + 1

    def get_data(self, outputs):
        return {self.eid: {attr: self.out[attr] for attr in outputs.get(self.eid, [])}}
