"""`dg_trip`: scenario generators disconnect (no P, no Q); their available power still counts as curtailed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from cosim.events.base import _Event
from cosim.events.registry import Draw, PhysicalKind, register

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog


class DGTrip(_Event):
    """Scenario generators (name or wildcard) disconnect: no P, no Q."""

    kind: Literal["dg_trip"]
    generator: str


@register
class DGTripKind(PhysicalKind):
    """Targets are the generators whose name matches `generator`."""

    model = DGTrip
    rank = 30
    target_key = "generator"

    def targets(self, spec: DGTrip, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
        """The matching generators."""
        return cat.match_generators(spec.generator)

    def target_text(self, event: ScheduledEvent) -> str:
        """The pattern as written."""
        return event.spec.generator

    def unusable(self, cat: Catalog) -> str | None:
        """Nothing to trip without generators."""
        return None if len(cat.generators) else "the scenario has no generators"

    def random_params(self, draw: Draw) -> dict:
        """One random generator."""
        return {"generator": draw.pick(draw.ders).name}

    def disrupt(self, event: ScheduledEvent) -> dict[str, tuple]:
        """The generators are tripped."""
        return {"ders_tripped": event.targets}
