"""mosaik simulator of the state-estimation detector: alarm, score and suspected meter every step."""

from __future__ import annotations

import math
from typing import Callable

import mosaik_api_v3
import numpy as np

from cosim.detection.network import Topology
from cosim.detection.wls import WLS

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Detector": {"public": True, "params": [], "attrs": ["measurements", "signals"]}},
}


class DetectorSim(mosaik_api_v3.Simulator):
    """WLS on the measurements the controller sees; publishes `detector.*` signals."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, estimator: WLS | None = None,
             topology_at: Callable[[int], Topology] | None = None, step_s: int = 1):
        self.estimator, self.topology_at, self.step_s = estimator, topology_at, int(step_s)
        self.last: tuple[Topology | None, np.ndarray | None] = (None, None)
        return self.meta

    def create(self, num, model, **params):
        return [{"eid": "detector", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time // self.step_s
        seen = next(iter(inputs["detector"]["measurements"].values()))
        est = self.estimator
        z = np.array([seen.get(n, math.nan) for n in est.meters.names])
        topo = self.topology_at(k)
        warm = self.last[1] if self.last[0] is topo else None
        e = est.estimate(z, topo, warm)
        self.last = (topo, e.V if e.converged else None)
        suspect = est.meters.names[e.suspect] if e.converged and e.suspect >= 0 else ""
        alarm = est.alarm(e)
        self.signals = {"detector.alarm": float(alarm), "detector.score": e.score, "detector.chi2": e.J,
                        "detector.lnr": e.lnr, "detector.suspect": suspect if alarm else ""}
        return time + self.step_s

    def get_data(self, outputs):
        return {"detector": {"signals": self.signals}}
