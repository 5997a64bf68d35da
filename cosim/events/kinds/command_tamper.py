"""`command_tamper`: the devices get scale x (the controller's setpoint in force) + offset every step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import model_validator

from cosim.events.base import COMMAND, Target, _Event
from cosim.events.commands import CommandAttack, Overwrite
from cosim.events.registry import CommandKind, Draw, register
from cosim.scenario.devices import WireTamper

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog
    from hil.wire_events import WireNames


class CommandTamper(_Event):
    """The controller's setpoints arrive as setpoint * scale + offset."""

    kind: Literal["command_tamper"]
    target: Target
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _does_something(self) -> "CommandTamper":
        if self.scale == 1 and self.offset == 0:
            raise ValueError("command_tamper needs a scale other than 1 or a non-zero offset")
        return self


class Tamper(Overwrite):
    """Sends scale x the intended setpoint + offset."""

    def forged(self, name: str, intended: dict[str, float]) -> float:
        """The tampered setpoint."""
        s = self.event.spec
        return s.scale * intended[name] + s.offset


@register
class CommandTamperKind(CommandKind):
    """Targets are setpoints (or the quantities they set, e.g. `pv1.p_mw`)."""

    model = CommandTamper
    rank = 140
    wire_paths = (COMMAND,)

    def unusable(self, cat: Catalog) -> str | None:
        """Nothing to command without generators."""
        return None if len(cat.setpoints) else "the scenario has no generators to command"

    def random_params(self, draw: Draw) -> dict:
        """A random generator's power limit scaled to 0-50 %."""
        der = draw.pick(draw.ders)
        return {"target": f"{der.name}.p_limit_mw", "scale": round(float(draw.rng.uniform(0.0, 0.5)), 3)}

    def command_attack(self, event: ScheduledEvent, rng: np.random.Generator) -> CommandAttack:
        """`Tamper`."""
        return Tamper(event, rng)

    def wire(self, event: ScheduledEvent, names: WireNames, step_s: float) -> list[tuple[str, object]]:
        """The proxy rewrites the bridge's writes of the registers that carry the setpoint's value."""
        s = event.spec
        return [(device, WireTamper(kind="command_tamper", at=s.at, duration=s.duration, point=w.point,
                                    scale=s.scale, offset=w.bias(s.scale, s.offset)))
                for device, writes in map(names.commands.__getitem__, event.targets) for w in writes if w.gain]
