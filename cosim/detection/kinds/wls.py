"""Kind `wls`: state estimation on the metered values with the chi-square and largest-normalised-residual tests."""

from __future__ import annotations

import math
from dataclasses import replace
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
    from cosim.scenario.metering import ModelError


TESTS = ("chi2", "lnr", "any")  # the bad-data tests an estimate can alarm on


class WLSDetector(DetectorBase):
    """WLS state estimation on the seen measurements with a chi-square and a largest-normalised-residual test."""

    kind: Literal["wls"] = "wls"
    significance: float = Field(default=0.01, gt=0, lt=0.5)
    alarm: Literal[TESTS] = "chi2"  # type: ignore[valid-type]
    lnr_threshold: float | None = Field(default=None, gt=0)


class EstimateSource:
    """The estimates of one network and meter set and its topology per step, shared by every `WLSRun` of a run
    that reads them (one source per network and meters in `Assembly.estimate_sources`): the last call is
    remembered, so readers asking for the same values, topology and warm start get it without a second estimate."""

    def __init__(self, estimator: "WLS", topology_at):
        self.estimator, self.topology_at = estimator, topology_at
        self.last: tuple[np.ndarray, "Topology", np.ndarray | None, "Estimate"] | None = None

    def estimate(self, z: np.ndarray, topo: "Topology", warm: np.ndarray | None) -> "Estimate":
        """`estimator.estimate(z, topo, warm)`, computed once for consecutive equal calls (same arrays or values)."""
        if self.last is not None:
            lz, ltopo, lwarm, e = self.last
            if ltopo is topo and lwarm is warm and np.array_equal(lz, z, equal_nan=True):
                return e
        e = self.estimator.estimate(z, topo, warm)
        self.last = (z, topo, warm, e)
        return e


class WLSRun:
    """The estimator stepping through a run: warm-started on the last estimate while the topology holds; the
    estimate comes from `source` (shared with the run's other readers), the tests' thresholds from `estimator`."""

    def __init__(self, estimator: "WLS", source: EstimateSource):
        self.estimator, self.source = estimator, source
        self.last: tuple["Topology | None", np.ndarray | None] = (None, None)

    def estimate(self, k: int, seen: Mapping[str, float]) -> "Estimate":
        """The estimate of step `k` from its seen values, on the topology the schedule says is in force, with
        this estimator's chi-square threshold."""
        z = np.array([seen.get(n, math.nan) for n in self.estimator.meters.names])
        topo = self.source.topology_at(k)
        warm = self.last[1] if self.last[0] is topo else None
        e = self.source.estimate(z, topo, warm)
        self.last = (topo, e.V if e.converged else None)
        return replace(e, threshold=self.estimator.threshold(e.dof))

    def step(self, k: int, seen: Mapping[str, float]) -> dict[str, float | str]:
        """Alarm, score (J over its threshold), J, the largest normalised residual and the suspect meter."""
        est, e = self.estimator, self.estimate(k, seen)
        alarm = est.alarm(e)
        suspect = est.meters.names[e.suspect] if alarm and e.suspect >= 0 else ""
        return {"alarm": float(alarm), "score": e.score, "chi2": e.J, "lnr": e.lnr, "suspect": suspect}


@register(WLSDetector)
def build(spec: WLSDetector, asm: "Assembly", base_dir: Path) -> WLSRun:
    """The block's tests on the run's meters; on the run's network, or with the `metering:` block's
    `model_error` on a copy whose line impedances carry that error. The estimates come from the run's source
    for that network and meters (made by the first estimator that needs it), shared with every other one."""
    from cosim.detection.wls import WLS
    from cosim.scenario.metering import run_metering

    shared, run = asm.estimator, run_metering(asm.loaded.scenario)
    model = run.metering.model_error if run is not None and run.metering.model_error.active else None
    # readers of the run's network, or of the same seeded perturbation of it, on the same meters share
    key = (id(shared.network), id(shared.meters), None if model is None else tuple(model.model_dump().items()))
    if key not in asm.estimate_sources:
        asm.estimate_sources[key] = estimate_source(asm, model)
    source = asm.estimate_sources[key]
    return WLSRun(WLS(source.estimator.network, shared.meters, spec.significance, spec.lnr_threshold, spec.alarm),
                  source)


def estimate_source(asm: "Assembly", model_error: "ModelError | None") -> EstimateSource:
    """The estimates on the run's network and meters, or on its copy perturbed by `model_error`."""
    from cosim.assembly import topology_at
    from cosim.detection.network import Network
    from cosim.detection.wls import WLS
    from cosim.events.physical import topology_timeline
    from cosim.events.schedule import PHYSICAL
    from cosim.scenario.metering import perturbed_feeder

    shared = asm.estimator
    if model_error is None:
        return EstimateSource(WLS(shared.network, shared.meters), topology_at(asm))
    network = Network(perturbed_feeder(asm.loaded.feeder, model_error))
    return EstimateSource(WLS(network, shared.meters), topology_timeline(network, asm.schedule.on(PHYSICAL)))
