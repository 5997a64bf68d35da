"""Kind `wls`: state estimation on the metered values with the chi-square and largest-normalised-residual tests."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping

import numpy as np
from pydantic import Field

from cosim.detection.base import DetectorBase
from cosim.detection.registry import register

if TYPE_CHECKING:
    from cosim.assembly import Assembly
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS, Estimate


class WLSDetector(DetectorBase):
    """WLS state estimation on the seen measurements with a chi-square and a largest-normalised-residual test."""

    kind: Literal["wls"] = "wls"
    significance: float = Field(default=0.01, gt=0, lt=0.5)
    alarm: Literal["chi2", "lnr", "any"] = "chi2"
    lnr_threshold: float | None = Field(default=None, gt=0)


class WLSRun:
    """The estimator stepping through a run: warm-started on the last estimate while the topology holds."""

    def __init__(self, estimator: "WLS", topology_at):
        self.estimator, self.topology_at = estimator, topology_at
        self.last: tuple["Topology | None", np.ndarray | None] = (None, None)

    def estimate(self, k: int, seen: Mapping[str, float]) -> "Estimate":
        """The estimate of step `k` from its seen values, on the topology the schedule says is in force."""
        z = np.array([seen.get(n, math.nan) for n in self.estimator.meters.names])
        topo = self.topology_at(k)
        warm = self.last[1] if self.last[0] is topo else None
        e = self.estimator.estimate(z, topo, warm)
        self.last = (topo, e.V if e.converged else None)
        return e

    def step(self, k: int, seen: Mapping[str, float]) -> dict[str, float | str]:
        """Alarm, score (J over its threshold), J, the largest normalised residual and the suspect meter."""
        est, e = self.estimator, self.estimate(k, seen)
        alarm = est.alarm(e)
        suspect = est.meters.names[e.suspect] if alarm and e.suspect >= 0 else ""
        return {"alarm": float(alarm), "score": e.score, "chi2": e.J, "lnr": e.lnr, "suspect": suspect}


@register(WLSDetector)
def build(spec: WLSDetector, asm: "Assembly", base_dir: Path) -> WLSRun:
    """The block's tests on the run's meters; on the run's network, or with the `metering:` block's
    `model_error` on the detector's own copy whose line impedances carry that error."""
    from cosim.assembly import topology_at
    from cosim.detection.network import Network
    from cosim.detection.wls import WLS
    from cosim.events.physical import topology_timeline
    from cosim.events.schedule import PHYSICAL
    from cosim.scenario.metering import perturbed_feeder, run_metering

    shared, run = asm.estimator, run_metering(asm.loaded.scenario)
    network, timeline = shared.network, topology_at(asm)
    if run is not None and run.metering.model_error.active:
        network = Network(perturbed_feeder(asm.loaded.feeder, run.metering.model_error))
        timeline = topology_timeline(network, asm.schedule.on(PHYSICAL))
    return WLSRun(WLS(network, shared.meters, spec.significance, spec.lnr_threshold, spec.alarm), timeline)
