"""`fdi_stealthy`: false data consistent with the grid model (a = h(x + c) - h(x)), invisible to residual tests.

The attacker's access limits the metered signals it can write (default: every one): `meters:
[patterns]`, or `access: substation | feeder | all` (`cosim.detection.access`). It then writes the
best false data that access allows (`cosim.detection.stealthy.best_false_data`): stealthy when some
shift leaves its other meters unchanged, else the one that disturbs them least; each step records the
residual it leaves, `attack.<id>.residual_j` (the chi-square statistic's rise on the detector's model).
"""

from __future__ import annotations

import fnmatch
import math
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
from pydantic import Field, model_validator

from cosim.detection.access import reachable_meters
from cosim.events.base import EventProblem, _Event, span
from cosim.events.measurement import Attack
from cosim.events.registry import Draw, MeasurementKind, register

if TYPE_CHECKING:
    from cosim.detection.network import Network, Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog
    from cosim.grid.feeders import Feeder


class FDIStealthy(_Event):
    """False data consistent with the grid model (a = H c): buses seem to inject delta_p / delta_q more."""

    kind: Literal["fdi_stealthy"]
    buses: list[int] = Field(min_length=1)
    delta_p_mw: float = 0.0
    delta_q_mvar: float = 0.0
    meters: list[str] | None = Field(default=None, min_length=1, description="metered signals the attacker "
                                     "can write (shell patterns, e.g. bus.18.*); default: every one")
    access: Literal["substation", "feeder", "all"] | None = Field(
        default=None, description="where the attacker sits: the substation's RTU, the attacked buses' feeder, "
                                  "or the control centre (every meter); instead of meters")

    @model_validator(mode="after")
    def _does_something(self) -> "FDIStealthy":
        if self.delta_p_mw == 0 and self.delta_q_mvar == 0:
            raise ValueError("fdi_stealthy needs a non-zero delta_p_mw or delta_q_mvar")
        if self.meters is not None and self.access is not None:
            raise ValueError("give the attacker's access either as meters or as access, not both")
        return self


def writable_meters(spec: FDIStealthy, feeder: Feeder, metered: tuple[str, ...]) -> tuple[str, ...]:
    """The metered signals an attacker with `spec`'s access writes: its zone's, its patterns', or every one."""
    if spec.access is not None:
        return reachable_meters(feeder, spec.access, spec.buses, metered)
    if spec.meters is None:
        return metered
    return tuple(n for n in metered if any(fnmatch.fnmatch(n, p) for p in spec.meters))


def injection_shift(spec: FDIStealthy, network: Network) -> np.ndarray:
    """(2, buses): the MW and Mvar the attack makes each bus row of `network` seem to inject more."""
    delta = np.zeros((2, len(network.bus)))
    for b in spec.buses:
        delta[:, network.bus_row[b]] += (spec.delta_p_mw, spec.delta_q_mvar)
    return delta


class Stealthy(Attack):
    """a = h(x + c) - h(x): the attacker estimates x from what it intercepts, picks the state c that
    makes the buses seem to inject delta more (within what its meters allow), and rewrites its meters;
    `record` gives the residual that leaves: J(z + a) - J(z) on the detector's model, NaN when idle."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator, estimator: WLS,
                 topology_at: Callable[[int], Topology]):
        super().__init__(event, rng)
        self.estimator, self.topology_at = estimator, topology_at
        self.delta = injection_shift(event.spec, estimator.network)
        self.writable = np.isin(estimator.meters.names, event.targets)
        self.column = f"attack.{event.id}.residual_j"
        self.residual = math.nan

    def apply(self, k: int, seen: dict[str, float]) -> None:
        from cosim.detection.stealthy import best_false_data

        est, meters = self.estimator, self.estimator.meters
        topo = self.topology_at(k)
        z = np.array([seen[n] for n in meters.names])
        x = est.estimate(z, topo)
        if not x.converged:  # the attacker cannot estimate the state this step: leaves it alone
            return
        a = best_false_data(est.network, topo, x.V, meters, self.writable, *self.delta)
        if a is None:  # nothing its meters can fake on this step's topology: leaves it alone
            return
        after = est.estimate(z + a, topo)
        self.residual = after.J - x.J if after.converged else math.nan
        for name, value in zip(meters.names, (z + a).tolist()):
            if not math.isnan(value):
                seen[name] = value

    def record(self, k: int) -> dict[str, float]:
        residual, self.residual = self.residual, math.nan
        return {self.column: residual}


@register
class FDIStealthyKind(MeasurementKind):
    """Targets are every meter of the measurement model (the grid publishes them for this kind)."""

    model = FDIStealthy
    rank = 70
    needs_meters = True

    def targets(self, spec: FDIStealthy, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
        """The metered signals the attacker reaches, if every bus exists and none is the slack bus."""
        for b in spec.buses:
            if b not in cat.buses:
                raise EventProblem("buses", f"bus {b} does not exist ({span('bus', list(cat.buses))})")
            if b == cat.slack_bus:
                raise EventProblem("buses", f"bus {b} is the slack bus: its injection balances the feeder "
                                            "and cannot be faked consistently")
        for p in spec.meters or ():
            if not fnmatch.filter(metered, p):
                raise EventProblem("meters", f"{p!r} matches no meter of the measurement model "
                                             f"({len(metered)} meters, e.g. {', '.join(metered[:4])})")
        reached = writable_meters(spec, cat.feeder, metered)
        if spec.access is not None and not reached:
            raise EventProblem("access", f"access {spec.access} reaches none of the {len(metered)} meters of the "
                                         "measurement model: the attacker has nothing to write")
        return reached

    def target_text(self, event: ScheduledEvent) -> str:
        """`buses 17,18`."""
        return "buses " + ",".join(map(str, event.spec.buses))

    def random_params(self, draw: Draw) -> dict:
        """0.1-0.4 MW more (or less) at one random non-slack bus."""
        return {"buses": [draw.pick(draw.buses)], "delta_p_mw": round(draw.sign * float(draw.rng.uniform(0.1, 0.4)), 3)}

    def measurement_attack(self, event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                           estimator: WLS | None, topology_at: Callable[[int], Topology] | None) -> Attack:
        """`Stealthy`, built on the detector's estimator and the step's topology."""
        if estimator is None or topology_at is None:
            raise ValueError("fdi_stealthy needs the state estimator and the topology timeline")
        return Stealthy(event, rng, estimator, topology_at)
