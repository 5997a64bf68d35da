"""`sensor_stuck`: sensors freeze at their reading at the onset (or at a given value)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

from cosim.events.base import MEASUREMENT, EventProblem, Target, _Event
from cosim.events.measurement import Attack
from cosim.events.registry import Draw, MeasurementKind, register
from cosim.scenario.devices import WireFDI, WireReplay

if TYPE_CHECKING:
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent
    from hil.wire_events import WireNames


class SensorStuck(_Event):
    """The sensors freeze at their reading when the fault starts (or at `value`)."""

    kind: Literal["sensor_stuck"]
    target: Target
    value: float | None = None


class Stuck(Attack):
    """The sensors keep the reading they had when the fault started (or the given value)."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator):
        super().__init__(event, rng)
        self.frozen: dict[str, float] = {}

    def observe(self, k: int, sensed: dict[str, float]) -> None:
        if k == self.event.start:
            value = self.event.spec.value
            self.frozen = {n: (sensed[n] if value is None else value) for n in self.targets}

    def apply(self, k: int, seen: dict[str, float]) -> None:
        seen.update(self.frozen)


@register
class SensorStuckKind(MeasurementKind):
    """Targets are measured signals (wildcards allowed)."""

    model = SensorStuck
    rank = 110
    wire_paths = (MEASUREMENT,)

    def random_params(self, draw: Draw) -> dict:
        """One random non-slack bus voltage."""
        return {"target": draw.pick(draw.voltages)}

    def measurement_attack(self, event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                           estimator: WLS | None, topology_at: Callable[[int], Topology] | None) -> Attack:
        """`Stuck`."""
        return Stuck(event, rng)

    def wire(self, event: ScheduledEvent, names: WireNames, step_s: float) -> list[tuple[str, object]]:
        """With `value`: the proxy shows the value (scale 0); without: it replays the step before the event."""
        s = event.spec
        if s.value is not None:
            return [(c.device, WireFDI(kind="fdi", at=s.at, duration=s.duration, point=c.point, scale=0.0,
                                       bias=c.value(s.value))) for c in map(names.carrier, event.targets)]
        if s.at < step_s:
            raise EventProblem("at", "a sensor_stuck on a device's Modbus wire replays the step before it; start it "
                                     "one step into the run or give value:")
        return [(device, WireReplay(kind="replay", at=s.at, duration=s.duration, window=step_s,
                                    points=[c.point for c in carriers]))
                for device, carriers in names.by_device(event.targets).items()]
