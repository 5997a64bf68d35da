"""`line_outage`: a line out of service; the buses it cuts off are de-energised and their load is unserved."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from cosim.events.base import EventProblem, _Event, span
from cosim.events.registry import Draw, PhysicalKind, register

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog


class LineOutage(_Event):
    """A line (published number) out of service; buses it cuts off lose supply."""

    kind: Literal["line_outage"]
    line: int


@register
class LineOutageKind(PhysicalKind):
    """The line must exist and be in service in the base case; its target is `line.<n>`."""

    model = LineOutage
    rank = 10

    def targets(self, spec: LineOutage, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
        """`line.<n>`, if the line exists and an outage would change something."""
        if spec.line not in cat.lines:
            raise EventProblem("line", f"line {spec.line} does not exist ({span('line', list(cat.lines))})")
        if not cat.lines[spec.line]:
            raise EventProblem("line", f"line {spec.line} is normally open (out of service in the base case); "
                                       "an outage would change nothing")
        return (f"line.{spec.line}",)

    def target_text(self, event: ScheduledEvent) -> str:
        """`line.<n>`."""
        return f"line.{event.spec.line}"

    def random_params(self, draw: Draw) -> dict:
        """A random in-service line."""
        return {"line": draw.pick([k for k, on in draw.cat.lines.items() if on])}

    def disrupt(self, event: ScheduledEvent) -> dict[str, tuple]:
        """The line is out."""
        return {"lines_out": (event.spec.line,)}
