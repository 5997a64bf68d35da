"""What every event kind builds on: the timing block, target spelling, paths and the problem type.

Imports nothing of the scenario schema, so the kind modules (which the schema imports) can use it.
"""

from __future__ import annotations

from typing import Union

from cosim.scenario.base import Window
from cosim.scenario.units import format_duration, is_whole_steps, steps_in

PHYSICAL, MEASUREMENT, COMMAND = "physical", "measurement", "command"
WIRE = "wire"  # attacks only a device's (or the grid server's) Modbus connection carries, e.g. a flood
PATHS = (PHYSICAL, MEASUREMENT, COMMAND, WIRE)

Target = Union[str, list[str]]


class _Event(Window):
    """When an event starts (time from the start of the run) and how long it lasts."""


class EventProblem(ValueError):
    """An event that cannot run: `key` is the offending key inside the entry ('' for the entry)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key, self.message = key, message


class TargetError(ValueError):
    """A target that names nothing on this grid; the message says what exists."""


def is_command_target(target: Target) -> bool:
    """A delay / drop target on the command path: `commands` or `commands.<setpoint pattern>`."""
    targets = [target] if isinstance(target, str) else target
    return all(t == "commands" or t.startswith("commands.") for t in targets)


def whole_steps(seconds: float, step: float, key: str, what: str) -> int:
    """`seconds` as a number of steps; an EventProblem naming `key` if it is not a whole number."""
    if not is_whole_steps(seconds, step):
        raise EventProblem(key, f"{what} {format_duration(seconds)} is not a whole number of steps "
                                f"(the step is {format_duration(step)})")
    return steps_in(seconds, step)


def span(what: str, labels: list[int]) -> str:
    """How elements are numbered, for messages: 'lines are numbered 1..37' (or that there are none)."""
    plural = what + ("es" if what.endswith("s") else "s")  # bus -> buses
    if not labels:
        return f"the feeder has no {plural}"
    return f"{plural} are numbered {min(labels)}..{max(labels)}"
