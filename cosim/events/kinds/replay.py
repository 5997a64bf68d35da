"""`replay`: the signals show, looped, what they showed over a window before the attack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
from pydantic import field_validator

from cosim.events.base import MEASUREMENT, EventProblem, Target, _Event, whole_steps
from cosim.events.measurement import Attack
from cosim.events.registry import Draw, MeasurementKind, register
from cosim.scenario.base import Seconds
from cosim.scenario.devices import WireReplay
from cosim.scenario.units import format_duration, steps_in

if TYPE_CHECKING:
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent
    from cosim.scenario.schema import Clock
    from hil.wire_events import WireNames


class Replay(_Event):
    """The signals replay what they showed over `window` before the attack (looped)."""

    kind: Literal["replay"]
    target: Target
    window: Seconds

    @field_validator("window")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a positive duration such as 15min")
        return v


class ReplayAttack(Attack):
    """Records the `window` before the attack, then plays it back in a loop."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator, step_s: float):
        super().__init__(event, rng)
        self.window = steps_in(event.spec.window, step_s)
        self.tape: list[dict[str, float]] = []

    def observe(self, k: int, sensed: dict[str, float]) -> None:
        if self.event.start - self.window <= k < self.event.start:
            self.tape.append(self._snapshot(sensed))

    def apply(self, k: int, seen: dict[str, float]) -> None:
        seen.update(self.tape[(k - self.event.start) % self.window])


@register
class ReplayKind(MeasurementKind):
    """The window must lie within the run, before the attack, on the step grid."""

    model = Replay
    rank = 80
    wire_paths = (MEASUREMENT,)
    first_random_step = 1  # a replay needs something recorded before it

    def check(self, spec: Replay, clock: Clock) -> None:
        """The window starts at or after the start of the run and is a whole number of steps."""
        if spec.window > spec.at:
            raise EventProblem("window", f"the replayed window of {format_duration(spec.window)} would begin before "
                                         f"the run starts (the attack starts at {format_duration(spec.at)})")
        whole_steps(spec.window, clock.step, "window", "window")

    def random_params(self, draw: Draw) -> dict:
        """Every bus voltage, replaying as long a window as the event (or all there is before it)."""
        return {"target": "bus.*.vm_pu", "window": min(draw.duration, draw.at)}

    def measurement_attack(self, event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                           estimator: WLS | None, topology_at: Callable[[int], Topology] | None) -> Attack:
        """`ReplayAttack`."""
        return ReplayAttack(event, rng, step_s)

    def wire(self, event: ScheduledEvent, names: WireNames, step_s: float) -> list[tuple[str, object]]:
        """The proxy tapes the answers over the window and replays the target points' registers from the tape."""
        s = event.spec
        return [(device, WireReplay(kind="replay", at=s.at, duration=s.duration, window=s.window,
                                    points=[c.point for c in carriers]))
                for device, carriers in names.by_device(event.targets).items()]
