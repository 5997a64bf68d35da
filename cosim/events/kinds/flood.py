"""`flood`: denial of service: a loopback client sends Modbus read requests to a device or the grid server.

Bounded: at most `FLOOD_MAX_RATE` requests per second for at most `FLOOD_MAX_S`, only to a target
on 127.0.0.1 / ::1 / localhost (the scenario's own device or grid server, by name), reads only.
It travels on the wire path: the bridge runs it (`hil.flood`) during the event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from cosim.events.base import WIRE, EventProblem, TargetError, _Event
from cosim.events.registry import Kind, register
from cosim.scenario.devices import FLOOD_MAX_RATE, FLOOD_MAX_S, WireFlood
from cosim.scenario.units import format_duration

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog
    from cosim.scenario.schema import Clock
    from hil.wire_events import WireNames


class Flood(_Event):
    """Read requests sent to `target` (a device's name, or `grid_server`) at `rate_per_s` during the event."""

    kind: Literal["flood"]
    target: str
    rate_per_s: float = Field(gt=0, le=FLOOD_MAX_RATE)


@register
class FloodKind(Kind):
    """Targets one device or the grid server; refused for anything not on loopback."""

    model = Flood
    rank = 150
    paths = (WIRE,)
    wire_paths = (WIRE,)

    def check(self, spec: Flood, clock: Clock) -> None:
        """A flood lasts at most FLOOD_MAX_S."""
        if spec.duration > FLOOD_MAX_S:
            raise EventProblem("duration", f"a flood lasts at most {format_duration(FLOOD_MAX_S)}, got "
                                           f"{format_duration(spec.duration)}")

    def targets(self, spec: Flood, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
        """The one device or `grid_server` named, if it answers on loopback Modbus-TCP."""
        if cat.wire is None:
            raise TargetError("a flood needs a device or a grid server to send requests to; the scenario has neither")
        why = cat.wire.refuse_flood(spec.target)
        if why is not None:
            raise TargetError(f"cannot flood {spec.target!r}: {why}")
        return (spec.target,)

    def target_text(self, event: ScheduledEvent) -> str:
        """The device or `grid_server`."""
        return event.spec.target

    def wire(self, event: ScheduledEvent, names: WireNames, step_s: float) -> list[tuple[str, object]]:
        """One `WireFlood` on the target."""
        s = event.spec
        return [(s.target, WireFlood(kind="flood", at=s.at, duration=s.duration, rate_per_s=s.rate_per_s))]
