"""Attacks on the command path: pure transforms of the setpoints a controller sends each step.

Works on any dict of setpoints. Devices hold a setpoint until a new one arrives, so the path
tracks two held values per attacked setpoint: what the controller intends and what the device
got. Injection and tampering rewrite the setpoint every step of the event and put the
intended value back when it ends; drop and delay only change what is in transit.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from cosim.events.schedule import ScheduledEvent
from cosim.scenario.schema import CommandInjection, CommandTamper, Delay, Drop


class CommandAttack:
    """One scheduled attack on some setpoints; `apply` edits the setpoints in transit at step k."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator):
        self.event, self.targets, self.rng = event, event.targets, rng

    def apply(self, k: int, transit: dict[str, float], intended: dict[str, float]) -> None:
        raise NotImplementedError


class Overwrite(CommandAttack):
    """Injection (a fixed value) or tampering (scale * intended + offset), re-sent every step."""

    def apply(self, k, transit, intended):
        s = self.event.spec
        if self.event.active(k):
            for name in self.targets:
                transit[name] = s.value if isinstance(s, CommandInjection) else s.scale * intended[name] + s.offset
        elif k == self.event.end:  # the attacker stops: the controller's setpoint is back in force
            for name in self.targets:
                transit.setdefault(name, intended[name])


class DropCommands(CommandAttack):
    """Each command to a target is lost with probability `rate`."""

    def apply(self, k, transit, intended):
        if not self.event.active(k):
            return
        sent = [n for n in self.targets if n in transit]
        for name, gone in zip(sent, (self.rng.random(len(sent)) < self.event.spec.rate).tolist()):
            if gone:
                del transit[name]


class DelayCommands(CommandAttack):
    """Commands sent during the event arrive `steps` later; one overtaken by a newer command is discarded."""

    def __init__(self, event, rng):
        super().__init__(event, rng)
        self.queue: deque[tuple[int, int, str, float]] = deque()  # (due, sent, name, value)
        self.newest: dict[str, int] = {}  # step at which the value in force was sent

    def apply(self, k, transit, intended):
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


def make_command_attack(event: ScheduledEvent, rng: np.random.Generator) -> CommandAttack:
    """The transform for one command-path event."""
    s = event.spec
    if isinstance(s, (CommandInjection, CommandTamper)):
        return Overwrite(event, rng)
    if isinstance(s, Drop):
        return DropCommands(event, rng)
    if isinstance(s, Delay):
        return DelayCommands(event, rng)
    raise ValueError(f"{s.kind} is not a command-path attack")


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
