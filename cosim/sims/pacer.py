"""mosaik simulator that holds each step until its wall-clock release time (real-time runs).

Its one entity feeds the grid an empty `setpoints` dict, which changes nothing but makes the
grid's step k — and so everything after it — wait for the pacer's step k, which sleeps until
t0 + k * period on mosaik's event loop (other simulators' I/O goes on meanwhile). The
schedule is absolute, so a slow step does not shift the ones after it. mosaik's own
`rt_factor` is not used: mosaik 3.6 releases a step one time unit early or, after a slow step,
late, and its error adds up over a run. At the end it unfreezes the heap the clock froze
(`cosim.realtime`).
"""

from __future__ import annotations

import asyncio
import time

import mosaik_api_v3

from cosim.realtime import WallClock

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Pacer": {"public": True, "params": [], "attrs": ["setpoints"]}},
}


class PacerSim(mosaik_api_v3.Simulator):
    """One entity `pacer`; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, clock: WallClock | None = None):
        self.clock = clock
        return self.meta

    def create(self, num, model, **params):
        return [{"eid": "pacer", "type": model}]

    def step(self, time_, inputs, max_advance):
        wait = self.clock.release(time_) - time.perf_counter()
        if wait > 0:
            yield asyncio.sleep(wait)
        self.clock.woke(time_)
        return time_ + 1

    def finalize(self):
        self.clock.stop()  # the heap frozen for the run is collectable again

    def get_data(self, outputs):
        return {"pacer": {"setpoints": {}}}
