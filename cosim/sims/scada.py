"""mosaik simulator in front of the grid in a run with a grid server: SCADA commands act at the next step.

One entity `scada` on the actuation path, bridge -> (time-shifted) -> scada -> grid. Its step k
passes on the bridge's setpoints for step k and, on top of them, the grid-server commands a
SCADA wrote since the last step that no device acts for, so a command written while the SCADA
sees step k-1's values reaches the grid's step k — the next step — as a controller's setpoint
does. In a real-time run it takes them at step k's release time (when the pacer lets the grid
go), so everything written during the slot of step k-1 counts. Commands for a generator or a
line a device acts for go through that device (the bridge's step) instead.
"""

from __future__ import annotations

import asyncio
import time

import mosaik_api_v3

from cosim.realtime import WallClock
from hil.bridge import Bridge

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Scada": {"public": True, "params": [], "attrs": ["delivered", "setpoints"]}},
}


class ScadaSim(mosaik_api_v3.Simulator):
    """One entity `scada`; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(META)
        self.setpoints: dict[str, float] = {}

    def init(self, sid, time_resolution=1.0, bridge: Bridge | None = None,
             clock: WallClock | None = None):
        self.bridge, self.clock = bridge, clock
        return self.meta

    def create(self, num, model, **params):
        if num != 1:
            raise ValueError("one Scada entity per simulator")
        return [{"eid": "scada", "type": model}]

    def step(self, time_, inputs, max_advance):
        if self.clock is not None:
            wait = self.clock.release(time_) - time.perf_counter()
            if wait > 0:
                yield asyncio.sleep(wait)
        self.setpoints = {}
        for sent in inputs.get("scada", {}).get("delivered", {}).values():
            self.setpoints.update(sent)
        self.setpoints.update(self.bridge.take_scada())
        return time_ + 1

    def get_data(self, outputs):
        return {"scada": {"setpoints": self.setpoints}}
