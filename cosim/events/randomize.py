"""A random schedule for training and fuzzing: Poisson arrivals, random kinds, targets and parameters.

Seeded through `rng_for(seed, "events", "random", <entry index>)`, so the same scenario and seed
give the same events. Candidates that would clash with events already scheduled are skipped.
Each kind draws its own parameters (`Kind.random_params`); a kind that draws none, or a name no
kind is registered under, is an error, never a fallback to another kind.
"""

from __future__ import annotations

import numpy as np
from pydantic import TypeAdapter

from cosim.events.base import EventProblem
from cosim.events.models import Event, RandomSpec
from cosim.events.registry import Draw, Kind, UnknownKind, kind_of
from cosim.events.schedule import ScheduledEvent, conflict, resolve
from cosim.events.targets import Catalog
from cosim.scenario.schema import Scenario
from cosim.seeding import rng_for

_EVENT = TypeAdapter(Event)


def random_kind(name: str) -> Kind:
    """The kind `name` if random schedules can draw it; UnknownKind otherwise."""
    kind = kind_of(name)
    if not kind.randomizable:
        raise UnknownKind(f"random schedules cannot generate {name} events: the kind draws no random parameters")
    return kind


def unusable(kind: str, cat: Catalog) -> str | None:
    """Why the random generator cannot make events of `kind` on this grid (None if it can)."""
    return random_kind(kind).unusable(cat)


def random_params(kind: str, rng: np.random.Generator, cat: Catalog, step: float, at: float,
                  duration: float, only: frozenset[int] | None = None) -> dict:
    """Kind-specific keys of one random event: a sign draw first, for every kind, then the kind's own; targets
    that are buses among `only` if given."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return random_kind(kind).random_params(Draw(rng, cat, step, at, duration, sign, only))


def _only(spec: RandomSpec, cat: Catalog) -> frozenset[int] | None:
    """The entry's `buses`, checked against the grid (EventProblem on random.buses)."""
    if spec.buses is None:
        return None
    for b in spec.buses:
        if b not in cat.buses or b == cat.slack_bus:
            raise EventProblem("random.buses", f"bus {b} is {'the slack bus' if b == cat.slack_bus else 'not a bus of the grid'}"
                                               f": expected non-slack buses among {min(cat.buses)}..{max(cat.buses)}")
    if "load_step" in spec.kinds and not set(spec.buses) & cat.load_buses:
        raise EventProblem("random.buses", f"load_step needs a bus with a load among {spec.buses}")
    return frozenset(spec.buses)


def expand(spec: RandomSpec, index: int, scn: Scenario, cat: Catalog, metered: tuple[str, ...],
           taken: list[ScheduledEvent]) -> list[ScheduledEvent]:
    """The events of one `random:` entry (events[index]), avoiding clashes with `taken`."""
    for kind in spec.kinds:
        try:
            why = unusable(kind, cat)
        except UnknownKind as exc:
            raise EventProblem("random.kinds", str(exc)) from None
        if why:
            raise EventProblem("random.kinds", f"cannot generate {kind} events: {why}")
    only = _only(spec, cat)
    clock = scn.clock
    rng = rng_for(scn.seed if spec.seed is None else spec.seed, "events", "random", str(index))
    n = int(rng.poisson(spec.rate_per_day * clock.duration / 86400.0))
    lo, hi = (max(1, int(round(d / clock.step))) for d in spec.duration)
    out: list[ScheduledEvent] = []
    for _ in range(n):
        kind = spec.kinds[int(rng.integers(len(spec.kinds)))]
        steps = min(int(rng.integers(lo, hi + 1)), clock.n_steps)
        first = kind_of(kind).first_random_step
        if first + steps > clock.n_steps:
            continue
        start = int(rng.integers(first, clock.n_steps - steps + 1))
        at, duration = start * clock.step, steps * clock.step
        entry = {"kind": kind, "at": at, "duration": duration, **random_params(kind, rng, cat, clock.step, at, duration, only)}
        event = resolve(_EVENT.validate_python(entry), cat, clock, metered, ("events", index))
        if all(conflict(e, event) is None for e in taken + out):
            out.append(event)
    return out
