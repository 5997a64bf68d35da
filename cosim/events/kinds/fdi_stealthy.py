"""`fdi_stealthy`: false data consistent with the grid model (a = h(x + c) - h(x)), invisible to residual tests."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
from pydantic import Field, model_validator

from cosim.events.base import EventProblem, _Event, span
from cosim.events.measurement import Attack
from cosim.events.registry import Draw, MeasurementKind, register

if TYPE_CHECKING:
    from cosim.detection.network import Network, Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog


class FDIStealthy(_Event):
    """False data consistent with the grid model (a = H c): buses seem to inject delta_p / delta_q more."""

    kind: Literal["fdi_stealthy"]
    buses: list[int] = Field(min_length=1)
    delta_p_mw: float = 0.0
    delta_q_mvar: float = 0.0

    @model_validator(mode="after")
    def _does_something(self) -> "FDIStealthy":
        if self.delta_p_mw == 0 and self.delta_q_mvar == 0:
            raise ValueError("fdi_stealthy needs a non-zero delta_p_mw or delta_q_mvar")
        return self


class Stealthy(Attack):
    """a = h(x + c) - h(x): the attacker estimates x from what it intercepts, picks the state c that
    makes the buses seem to inject delta more, and rewrites every meter to match."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator, estimator: WLS,
                 topology_at: Callable[[int], Topology]):
        super().__init__(event, rng)
        self.estimator, self.topology_at = estimator, topology_at
        net: Network = estimator.network
        self.delta_p = np.zeros(len(net.bus))
        self.delta_q = np.zeros(len(net.bus))
        for b in event.spec.buses:
            self.delta_p[net.bus_row[b]] += event.spec.delta_p_mw
            self.delta_q[net.bus_row[b]] += event.spec.delta_q_mvar

    def apply(self, k: int, seen: dict[str, float]) -> None:
        est, meters = self.estimator, self.estimator.meters
        topo = self.topology_at(k)
        z = np.array([seen[n] for n in meters.names])
        x = est.estimate(z, topo)
        if not x.converged:  # the attacker cannot estimate the state this step: leaves it alone
            return
        fake = est.network.shifted_state(topo, x.V, self.delta_p, self.delta_q)
        a = est.network.measure(topo, fake, meters)[0] - est.network.measure(topo, x.V, meters)[0]
        for name, value in zip(meters.names, (z + a).tolist()):
            if not math.isnan(value):
                seen[name] = value


@register
class FDIStealthyKind(MeasurementKind):
    """Targets are every meter of the measurement model (the grid publishes them for this kind)."""

    model = FDIStealthy
    rank = 70
    needs_meters = True

    def targets(self, spec: FDIStealthy, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
        """The metered signals, if every bus exists and none is the slack bus."""
        for b in spec.buses:
            if b not in cat.buses:
                raise EventProblem("buses", f"bus {b} does not exist ({span('bus', list(cat.buses))})")
            if b == cat.slack_bus:
                raise EventProblem("buses", f"bus {b} is the slack bus: its injection balances the feeder "
                                            "and cannot be faked consistently")
        return metered

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
