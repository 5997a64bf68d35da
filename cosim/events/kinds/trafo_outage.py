"""`trafo_outage`: a transformer out of service (IEEE 33 and 69 have none; SimBench and JSON feeders do)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from cosim.events.base import EventProblem, _Event, span
from cosim.events.registry import Draw, PhysicalKind, register

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog


class TrafoOutage(_Event):
    """A transformer (published number) out of service."""

    kind: Literal["trafo_outage"]
    trafo: int


@register
class TrafoOutageKind(PhysicalKind):
    """The trafo must exist; its target is `trafo.<n>`."""

    model = TrafoOutage
    rank = 20

    def targets(self, spec: TrafoOutage, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
        """`trafo.<n>`, if the trafo exists."""
        if spec.trafo not in cat.trafos:
            raise EventProblem("trafo", f"trafo {spec.trafo} does not exist ({span('trafo', list(cat.trafos))})")
        return (f"trafo.{spec.trafo}",)

    def target_text(self, event: ScheduledEvent) -> str:
        """`trafo.<n>`."""
        return f"trafo.{event.spec.trafo}"

    def unusable(self, cat: Catalog) -> str | None:
        """A feeder without transformers has nothing to take out."""
        return None if len(cat.trafos) else "the feeder has no transformers"

    def random_params(self, draw: Draw) -> dict:
        """A random transformer."""
        return {"trafo": draw.pick(list(draw.cat.trafos))}

    def disrupt(self, event: ScheduledEvent) -> dict[str, tuple]:
        """The trafo is out."""
        return {"trafos_out": (event.spec.trafo,)}
