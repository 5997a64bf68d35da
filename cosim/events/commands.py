"""Attacks on the command path: pure transforms of the setpoints a controller sends each step.

Works on any dict of setpoints. Devices hold a setpoint until a new one arrives, so the path
tracks two held values per attacked setpoint: what the controller intends and what the device
got. Injection and tampering rewrite the setpoint every step of the event and put the
intended value back when it ends; drop and delay only change what is in transit. Each kind's
`CommandAttack` lives in its module under `cosim.events.kinds`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cosim.events.registry import kind_of

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent


class CommandAttack:
    """One scheduled attack on some setpoints; `apply` edits the setpoints in transit at step k."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator):
        self.event, self.targets, self.rng = event, event.targets, rng

    def apply(self, k: int, transit: dict[str, float], intended: dict[str, float]) -> None:
        """Edit `transit` (the setpoints reaching the devices at step k); `intended` is the controller's."""
        raise NotImplementedError


class Overwrite(CommandAttack):
    """An attacker that rewrites the targets every step of the event (injection, tampering) and stops
    at its end, when the controller's setpoint in force is back."""

    def forged(self, name: str, intended: dict[str, float]) -> float:
        """What the attacker sends to `name` this step."""
        raise NotImplementedError

    def apply(self, k: int, transit: dict[str, float], intended: dict[str, float]) -> None:
        if self.event.active(k):
            for name in self.targets:
                transit[name] = self.forged(name, intended)
        elif k == self.event.end:  # the attacker stops: the controller's setpoint is back in force
            for name in self.targets:
                transit.setdefault(name, intended[name])


def make_command_attack(event: ScheduledEvent, rng: np.random.Generator) -> CommandAttack:
    """The transform for one command-path event."""
    return kind_of(event.spec).command_attack(event, rng)


class CommandPath:
    """Applies the command attacks to each step's setpoints; keeps intended and delivered setpoints."""

    def __init__(self, attacks: list[CommandAttack], defaults: dict[str, float]):
        self.attacks = attacks
        self.intended = dict(defaults)
        self.delivered = dict(defaults)
        self.recorded = tuple(dict.fromkeys(n for a in attacks for n in a.targets))

    def step(self, k: int, sent: dict[str, float]) -> dict[str, float]:
        """The setpoints that reach the devices at step k."""
        self.intended.update(sent)
        transit = dict(sent)
        for a in self.attacks:
            a.apply(k, transit, self.intended)
        self.delivered.update(transit)
        return transit

    def record(self) -> dict[str, float]:
        """`cmd.<setpoint>` (the controller's, in force) and `seen.cmd.<setpoint>` (the device's)."""
        out = {f"cmd.{n}": self.intended[n] for n in self.recorded}
        out.update({f"seen.cmd.{n}": self.delivered[n] for n in self.recorded})
        return out
