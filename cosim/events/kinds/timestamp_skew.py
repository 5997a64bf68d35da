"""`timestamp_skew`: the meters' clocks run ahead, so the sample stamped now was taken `skew` ago."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
from pydantic import field_validator

from cosim.events.base import Target, _Event, whole_steps
from cosim.events.measurement import Attack, Late
from cosim.events.registry import Draw, MeasurementKind, register
from cosim.scenario.base import Seconds
from cosim.scenario.units import steps_in

if TYPE_CHECKING:
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent
    from cosim.scenario.schema import Clock


class TimestampSkew(_Event):
    """The meters' clocks run `skew` ahead: the receiver takes samples that are `skew` old for current."""

    kind: Literal["timestamp_skew"]
    target: Target
    skew: Seconds

    @field_validator("skew")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a positive duration such as 2min")
        return v


@register
class TimestampSkewKind(MeasurementKind):
    """The skew must be a whole number of steps; the transform is a `Late` that never holds."""

    model = TimestampSkew
    rank = 120

    def check(self, spec: TimestampSkew, clock: Clock) -> None:
        """The skew is a whole number of steps."""
        whole_steps(spec.skew, clock.step, "skew", "skew")

    def random_params(self, draw: Draw) -> dict:
        """Every bus voltage, 1-5 steps behind."""
        return {"target": "bus.*.vm_pu", "skew": int(draw.rng.integers(1, 6)) * draw.step}

    def measurement_attack(self, event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                           estimator: WLS | None, topology_at: Callable[[int], Topology] | None) -> Attack:
        """Samples `skew` old from the first step of the event."""
        return Late(event, rng, steps_in(event.spec.skew, step_s), hold_until_arrival=False)
