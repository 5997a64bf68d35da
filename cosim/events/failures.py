"""Equipment failure models: the scenario's `failures:` block drawn into seeded outage events.

Each in-service line, each transformer and each scenario generator fails as a Poisson process
with `rate_per_year` failures per element and year; a failed element is out for `repair`
(`line_outage`, `trafo_outage` or `dg_trip`), and its next failure is drawn from the moment it
is back. Every element class has its own stream, `rng_for(seed, "failures", <class>)`, so
adding a class leaves the others' outages unchanged. Outages are cut at the end of the run.

Imports nothing of the scenario schema (which imports this module for the `failures:` model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pydantic import Field, field_validator

from cosim.events.base import EventProblem, _Event, whole_steps
from cosim.events.kinds.dg_trip import DGTrip
from cosim.events.kinds.line_outage import LineOutage
from cosim.events.kinds.trafo_outage import TrafoOutage
from cosim.events.restoration import Restoration
from cosim.scenario.base import Seconds, Strict
from cosim.seeding import rng_for

if TYPE_CHECKING:
    from cosim.events.targets import Catalog

YEAR_S = 365.25 * 86400.0


class FailureModel(Strict):
    """Failures of one element class: a constant rate per element and year and a fixed repair time."""

    rate_per_year: float = Field(gt=0, le=10_000)
    repair: Seconds = Field(gt=0)


class Failures(Strict):
    """The `failures:` block: failure models of lines, transformers and scenario generators (any may be left out)
    and restoration by switching on tie lines (off unless given; `true` takes its defaults)."""

    lines: FailureModel | None = None
    trafos: FailureModel | None = None
    der: FailureModel | None = None
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    restoration: Restoration | None = None

    @field_validator("restoration", mode="before")
    @classmethod
    def _switch(cls, v: object) -> object:
        """`restoration: true` is the block with its defaults, `false` none."""
        return ({} if v else None) if isinstance(v, bool) else v


# element class -> (the elements of a grid, one outage event of one element)
_CLASSES: dict[str, tuple[Callable[["Catalog"], list], Callable[[object, float, float], _Event]]] = {
    "lines": (lambda cat: [k for k, on in cat.lines.items() if on],
              lambda k, at, d: LineOutage(kind="line_outage", at=at, duration=d, line=k)),
    "trafos": (lambda cat: list(cat.trafos),
               lambda k, at, d: TrafoOutage(kind="trafo_outage", at=at, duration=d, trafo=k)),
    "der": (lambda cat: list(cat.generators),
            lambda k, at, d: DGTrip(kind="dg_trip", at=at, duration=d, generator=k)),
}


def failure_outages(failures: Failures, cat: "Catalog", step_s: float, n_steps: int, seed: int,
                    limit: int) -> list[_Event]:
    """The outage events the failure models draw over a run of `n_steps` steps; EventProblem for a repair
    time off the step grid or more than about `limit` expected outages."""
    out: list[_Event] = []
    expected = 0.0
    for name, (elements, outage) in _CLASSES.items():
        model: FailureModel | None = getattr(failures, name)
        if model is None:
            continue
        repair = whole_steps(model.repair, step_s, f"{name}.repair", "repair time")
        found, years = elements(cat), n_steps * step_s / YEAR_S
        expected += model.rate_per_year * years * len(found)
        if expected > limit:
            raise EventProblem(f"{name}.rate_per_year",
                               f"{model.rate_per_year:g} failures per element and year on {len(found)} "
                               f"{name} over {years * 365.25:g} days draw about {expected:,.0f} outages; a run is "
                               f"limited to {limit:,} events (limit MAX_EVENTS)")
        rng = rng_for(seed if failures.seed is None else failures.seed, "failures", name)
        mean_steps = YEAR_S / model.rate_per_year / step_s
        for element in found:
            k = 0.0  # the element is in service from step k on
            while (k := k + rng.exponential(mean_steps)) < n_steps:
                start = int(k)
                steps = min(repair, n_steps - start)
                out.append(outage(element, start * step_s, steps * step_s))
                k = float(start + steps)
    return out
