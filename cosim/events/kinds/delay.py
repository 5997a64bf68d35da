"""`delay`: measurements, or with target `commands` / `commands.<pattern>` setpoints, arrive steps late."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
from pydantic import Field

from cosim.events.base import COMMAND, MEASUREMENT, Target, _Event, is_command_target
from cosim.events.commands import CommandAttack
from cosim.events.measurement import Attack, Late
from cosim.events.registry import Draw, Kind, register
from cosim.scenario.devices import WireDelay

if TYPE_CHECKING:
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent
    from hil.wire_events import WireNames


class Delay(_Event):
    """Measurements (or, with target `commands`, setpoints) arrive `steps` steps late."""

    kind: Literal["delay"]
    target: Target
    steps: int = Field(ge=1)


class DelayCommands(CommandAttack):
    """Commands sent during the event arrive `steps` later; one overtaken by a newer command is discarded."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator):
        super().__init__(event, rng)
        self.queue: deque[tuple[int, int, str, float]] = deque()  # (due, sent, name, value)
        self.newest: dict[str, int] = {}  # step at which the value in force was sent

    def apply(self, k: int, transit: dict[str, float], intended: dict[str, float]) -> None:
        for name in self.targets:
            if name in transit:
                if self.event.active(k):
                    self.queue.append((k + self.event.spec.steps, k, name, transit.pop(name)))
                else:
                    self.newest[name] = k
        while self.queue and self.queue[0][0] <= k:
            _, sent, name, value = self.queue.popleft()
            if sent > self.newest.get(name, -1) and name not in transit:
                transit[name] = value
                self.newest[name] = sent


@register
class DelayKind(Kind):
    """On measurements (a `Late` that holds the last sample until delayed ones arrive), or on commands."""

    model = Delay
    rank = 90
    paths = (MEASUREMENT, COMMAND)
    wire_paths = (MEASUREMENT,)

    def path(self, spec: Delay) -> str:
        """Commands when the target says `commands`, else measurements."""
        return COMMAND if is_command_target(spec.target) else MEASUREMENT

    def random_params(self, draw: Draw) -> dict:
        """Every bus voltage, 1-5 steps late."""
        return {"target": "bus.*.vm_pu", "steps": int(draw.rng.integers(1, 6))}

    def measurement_attack(self, event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                           estimator: WLS | None, topology_at: Callable[[int], Topology] | None) -> Attack:
        """Samples `steps` old, the last pre-attack one until then."""
        return Late(event, rng, event.spec.steps, hold_until_arrival=True)

    def command_attack(self, event: ScheduledEvent, rng: np.random.Generator) -> CommandAttack:
        """`DelayCommands`."""
        return DelayCommands(event, rng)

    def wire(self, event: ScheduledEvent, names: WireNames, step_s: float) -> list[tuple[str, object]]:
        """The proxy holds every frame of each target's device `steps` steps of seconds (wall clock)."""
        s = event.spec
        return [(device, WireDelay(kind="delay", at=s.at, duration=s.duration, seconds=s.steps * step_s))
                for device in names.by_device(event.targets)]
