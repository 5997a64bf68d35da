"""`cloud_transient`: a cloud over PV generators; their available power is multiplied by 1 - depth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from cosim.events.base import EventProblem, _Event
from cosim.events.registry import Draw, PhysicalKind, register

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog


class CloudTransient(_Event):
    """A cloud over PV generators (name or wildcard): available power drops by `depth` (0..1)."""

    kind: Literal["cloud_transient"]
    generator: str = "*"
    depth: float = Field(default=0.7, ge=0, le=1)


@register
class CloudTransientKind(PhysicalKind):
    """Targets are the PV generators whose name matches `generator`."""

    model = CloudTransient
    rank = 50
    target_key = "generator"

    def targets(self, spec: CloudTransient, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
        """The matching PV generators; at least one."""
        found = [g for g in cat.match_generators(spec.generator) if cat.generators[g].kind == "pv"]
        if not found:
            raise EventProblem("generator", f"no PV generator matches {spec.generator!r}; a cloud acts on PV only")
        return tuple(found)

    def target_text(self, event: ScheduledEvent) -> str:
        """The pattern as written."""
        return event.spec.generator

    def unusable(self, cat: Catalog) -> str | None:
        """A cloud needs PV to shade."""
        return None if len([g for g in cat.generators.values() if g.kind == "pv"]) else "the scenario has no PV"

    def random_params(self, draw: Draw) -> dict:
        """Every PV plant, depth 0.5..0.9."""
        return {"generator": "*", "depth": round(float(draw.rng.uniform(0.5, 0.9)), 3)}

    def disrupt(self, event: ScheduledEvent) -> dict[str, tuple]:
        """(generator, availability multiplier) per shaded plant."""
        return {"der_availability": tuple((name, 1.0 - event.spec.depth) for name in event.targets)}
