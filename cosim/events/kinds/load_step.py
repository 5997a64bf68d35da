"""`load_step`: the loads at some buses are multiplied by a factor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Union

from pydantic import Field

from cosim import signals as sig
from cosim.events.base import EventProblem, _Event, span
from cosim.events.registry import Draw, PhysicalKind, register

if TYPE_CHECKING:
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog


class LoadStep(_Event):
    """The loads at one or more buses are multiplied by `factor`."""

    kind: Literal["load_step"]
    bus: Union[int, list[int]]
    factor: float = Field(ge=0)


@register
class LoadStepKind(PhysicalKind):
    """Targets are `bus.<n>` for each bus, which must exist and have a load."""

    model = LoadStep
    rank = 40

    def targets(self, spec: LoadStep, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
        """`bus.<n>` per bus, each existing and loaded."""
        buses = [spec.bus] if isinstance(spec.bus, int) else spec.bus
        for b in buses:
            if b not in cat.buses:
                raise EventProblem("bus", f"bus {b} does not exist ({span('bus', list(cat.buses))})")
            if b not in cat.load_buses:
                raise EventProblem("bus", f"bus {b} has no load to step")
        return tuple(f"bus.{b}" for b in buses)

    def random_params(self, draw: Draw) -> dict:
        """A random loaded bus, factor 1.2..2."""
        return {"bus": draw.pick(draw.load_buses), "factor": round(float(draw.rng.uniform(1.2, 2.0)), 3)}

    def disrupt(self, event: ScheduledEvent) -> dict[str, tuple]:
        """(bus number, factor) per target bus."""
        return {"load_factor": tuple((sig.element_number(t), event.spec.factor) for t in event.targets)}
