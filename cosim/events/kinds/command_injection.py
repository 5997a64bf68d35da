"""`command_injection`: the attacker writes a setpoint value every step; at the end the controller's is back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from cosim.events.base import COMMAND, Target, _Event
from cosim.events.commands import CommandAttack, Overwrite
from cosim.events.registry import CommandKind, Draw, register
from cosim.scenario.devices import WireInjection

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog
    from hil.wire_events import WireNames


class CommandInjection(_Event):
    """An unauthorised setpoint `value` written to the targets every step of the event."""

    kind: Literal["command_injection"]
    target: Target
    value: float


class Injection(Overwrite):
    """Sends the fixed `value`."""

    def forged(self, name: str, intended: dict[str, float]) -> float:
        """The injected value."""
        return self.event.spec.value


@register
class CommandInjectionKind(CommandKind):
    """Targets are setpoints (or the quantities they set, e.g. `pv1.q_mvar`)."""

    model = CommandInjection
    rank = 130
    wire_paths = (COMMAND,)

    def unusable(self, cat: Catalog) -> str | None:
        """Nothing to command without generators."""
        return None if len(cat.setpoints) else "the scenario has no generators to command"

    def random_params(self, draw: Draw) -> dict:
        """A random generator's reactive power set to 20-80 % of its rating, either sign."""
        der = draw.pick(draw.ders)
        return {"target": f"{der.name}.q_set_mvar",
                "value": round(draw.sign * float(draw.rng.uniform(0.2, 0.8)) * der.s_mva, 3)}

    def command_attack(self, event: ScheduledEvent, rng: np.random.Generator) -> CommandAttack:
        """`Injection`."""
        return Injection(event, rng)

    def wire(self, event: ScheduledEvent, names: WireNames, step_s: float) -> list[tuple[str, object]]:
        """A rogue client writes every register the setpoint becomes, every step of the event."""
        s = event.spec
        return [(device, WireInjection(kind="command_injection", at=s.at, duration=s.duration, point=w.point,
                                       value=w.value(s.value)))
                for device, writes in map(names.commands.__getitem__, event.targets) for w in writes]
