"""`drop`: updates of measured signals, or with target `commands` / `commands.<pattern>` setpoints, are lost."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
from pydantic import Field

from cosim.events.base import COMMAND, MEASUREMENT, EventProblem, Target, _Event, is_command_target
from cosim.events.commands import CommandAttack
from cosim.events.measurement import Attack
from cosim.events.registry import Draw, Kind, register
from cosim.scenario.devices import WireDrop

if TYPE_CHECKING:
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent
    from hil.wire_events import WireNames


class Drop(_Event):
    """Each update of the signals (or setpoints) is lost with probability `rate`."""

    kind: Literal["drop"]
    target: Target
    rate: float = Field(default=1.0, ge=0, le=1)
    fill: Literal["hold", "nan"] = "hold"


class DropAttack(Attack):
    """Each update is lost with probability `rate`; the receiver keeps the last value (or NaN)."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator):
        super().__init__(event, rng)
        self.held: dict[str, float] = {}

    def observe(self, k: int, sensed: dict[str, float]) -> None:
        if k == self.event.start - 1:
            self.held = self._snapshot(sensed)

    def apply(self, k: int, seen: dict[str, float]) -> None:
        s = self.event.spec
        lost = self.rng.random(len(self.targets)) < s.rate
        for name, gone in zip(self.targets, lost.tolist()):
            if not gone:
                self.held[name] = seen[name]
            elif s.fill == "nan":
                seen[name] = math.nan
            else:
                seen[name] = self.held.get(name, math.nan)


class DropCommands(CommandAttack):
    """Each command to a target is lost with probability `rate`; the device keeps its last setpoint."""

    def apply(self, k: int, transit: dict[str, float], intended: dict[str, float]) -> None:
        if not self.event.active(k):
            return
        sent = [n for n in self.targets if n in transit]
        for name, gone in zip(sent, (self.rng.random(len(sent)) < self.event.spec.rate).tolist()):
            if gone:
                del transit[name]


@register
class DropKind(Kind):
    """On measurements (`DropAttack`) or, with a `commands` target, on commands (`DropCommands`)."""

    model = Drop
    rank = 100
    paths = (MEASUREMENT, COMMAND)
    wire_paths = (MEASUREMENT,)

    def path(self, spec: Drop) -> str:
        """Commands when the target says `commands`, else measurements."""
        return COMMAND if is_command_target(spec.target) else MEASUREMENT

    def random_params(self, draw: Draw) -> dict:
        """Every bus voltage, 30-100 % of the updates lost."""
        return {"target": "bus.*.vm_pu", "rate": round(float(draw.rng.uniform(0.3, 1.0)), 3)}

    def measurement_attack(self, event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                           estimator: WLS | None, topology_at: Callable[[int], Topology] | None) -> Attack:
        """`DropAttack`."""
        return DropAttack(event, rng)

    def command_attack(self, event: ScheduledEvent, rng: np.random.Generator) -> CommandAttack:
        """`DropCommands`."""
        return DropCommands(event, rng)

    def wire(self, event: ScheduledEvent, names: WireNames, step_s: float) -> list[tuple[str, object]]:
        """The proxy loses each request to the targets' devices with probability `rate` (the bridge holds its
        last reading)."""
        s = event.spec
        if s.fill == "nan":
            raise EventProblem("fill", "a drop on a device's Modbus wire holds the last reading (the bridge keeps "
                                       "it while the device is stale); fill: nan acts on the simulated channel")
        return [(device, WireDrop(kind="drop", at=s.at, duration=s.duration, rate=s.rate))
                for device in names.by_device(event.targets)]
