"""`fdi`: false data on measured signals (bias, scale, ramp and / or random noise)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
from pydantic import Field, model_validator

from cosim.events.base import MEASUREMENT, EventProblem, Target, _Event
from cosim.events.measurement import Attack
from cosim.events.registry import Draw, MeasurementKind, register
from cosim.scenario.devices import WireFDI

if TYPE_CHECKING:
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent
    from hil.wire_events import WireNames


class FDI(_Event):
    """False data on measured signals: seen = true * scale + bias + ramp * elapsed fraction + N(0, random)."""

    kind: Literal["fdi"]
    target: Target
    bias: float = 0.0
    scale: float = 1.0
    ramp: float = 0.0
    random: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _does_something(self) -> "FDI":
        if self.bias == 0 and self.scale == 1 and self.ramp == 0 and self.random == 0:
            raise ValueError("fdi needs at least one of bias, scale (other than 1), ramp or random")
        return self


class FalseData(Attack):
    """seen = true * scale + bias + ramp * (elapsed share of the event, reaching 1 at its last step) + N(0, random)."""

    def apply(self, k: int, seen: dict[str, float]) -> None:
        s, e = self.event.spec, self.event
        offset = s.bias + s.ramp * (k - e.start + 1) / (e.end - e.start)
        noise = self.rng.normal(0.0, s.random, len(self.targets)) if s.random else np.zeros(len(self.targets))
        for name, eps in zip(self.targets, noise.tolist()):
            seen[name] = seen[name] * s.scale + offset + eps


@register
class FDIKind(MeasurementKind):
    """Targets are measured signals (wildcards allowed)."""

    model = FDI
    rank = 60
    wire_paths = (MEASUREMENT,)

    def random_params(self, draw: Draw) -> dict:
        """A bias of 2-6 % on a random non-slack bus voltage."""
        return {"target": draw.pick(draw.voltages), "bias": round(draw.sign * float(draw.rng.uniform(0.02, 0.06)), 4)}

    def measurement_attack(self, event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                           estimator: WLS | None, topology_at: Callable[[int], Topology] | None) -> Attack:
        """`FalseData`."""
        return FalseData(event, rng)

    def wire(self, event: ScheduledEvent, names: WireNames, step_s: float) -> list[tuple[str, object]]:
        """The proxy rewrites the read point carrying each target to show target * scale + bias."""
        s = event.spec
        if s.ramp or s.random:
            raise EventProblem("ramp" if s.ramp else "random",
                               "an fdi on a device's Modbus wire takes scale and bias only (the proxy rewrites each "
                               "answer to value * scale + bias); ramp and random act on the simulated channel")
        return [(c.device, WireFDI(kind="fdi", at=s.at, duration=s.duration, point=c.point, scale=s.scale,
                                   bias=c.bias(s.scale, s.bias))) for c in map(names.carrier, event.targets)]
