"""A random schedule for training and fuzzing: Poisson arrivals, random kinds, targets and parameters.

Seeded through `rng_for(seed, "events", "random", <entry index>)`, so the same scenario and seed
give the same events. Candidates that would clash with events already scheduled are skipped.
"""

from __future__ import annotations

import numpy as np
from pydantic import TypeAdapter

from cosim.events.schedule import EventProblem, ScheduledEvent, conflict, resolve
from cosim.events.targets import Catalog
from cosim.scenario.schema import Event, RandomSpec, Scenario
from cosim.seeding import rng_for

_EVENT = TypeAdapter(Event)


def unusable(kind: str, cat: Catalog) -> str | None:
    """Why the random generator cannot make events of `kind` on this grid (None if it can)."""
    needs = {"trafo_outage": (cat.trafos, "the feeder has no transformers"),
             "dg_trip": (cat.generators, "the scenario has no generators"),
             "cloud_transient": ([g for g in cat.generators.values() if g.kind == "pv"], "the scenario has no PV"),
             "command_injection": (cat.setpoints, "the scenario has no generators to command"),
             "command_tamper": (cat.setpoints, "the scenario has no generators to command")}
    items, why = needs.get(kind, ((1,), ""))
    return None if len(items) else why


def _params(kind: str, rng: np.random.Generator, cat: Catalog, step: float, at: float, duration: float) -> dict:
    """Kind-specific keys of one random event."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    vm = [s for s in cat.signals if s.startswith("bus.") and s.endswith(".vm_pu") and s != f"bus.{cat.slack_bus}.vm_pu"]
    buses = [b for b in cat.buses if b != cat.slack_bus]
    ders = list(cat.generators.values())
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if kind == "line_outage":
        return {"line": pick([k for k, on in cat.lines.items() if on])}
    if kind == "trafo_outage":
        return {"trafo": pick(list(cat.trafos))}
    if kind == "dg_trip":
        return {"generator": pick(ders).name}
    if kind == "load_step":
        return {"bus": pick(sorted(cat.load_buses)), "factor": round(float(rng.uniform(1.2, 2.0)), 3)}
    if kind == "cloud_transient":
        return {"generator": "*", "depth": round(float(rng.uniform(0.5, 0.9)), 3)}
    if kind == "fdi":
        return {"target": pick(vm), "bias": round(sign * float(rng.uniform(0.02, 0.06)), 4)}
    if kind == "fdi_stealthy":
        return {"buses": [pick(buses)], "delta_p_mw": round(sign * float(rng.uniform(0.1, 0.4)), 3)}
    if kind == "replay":
        return {"target": "bus.*.vm_pu", "window": min(duration, at)}
    if kind == "delay":
        return {"target": "bus.*.vm_pu", "steps": int(rng.integers(1, 6))}
    if kind == "drop":
        return {"target": "bus.*.vm_pu", "rate": round(float(rng.uniform(0.3, 1.0)), 3)}
    if kind == "sensor_stuck":
        return {"target": pick(vm)}
    if kind == "timestamp_skew":
        return {"target": "bus.*.vm_pu", "skew": int(rng.integers(1, 6)) * step}
    der = pick(ders)
    if kind == "command_injection":
        return {"target": f"{der.name}.q_set_mvar", "value": round(sign * float(rng.uniform(0.2, 0.8)) * der.s_mva, 3)}
    return {"target": f"{der.name}.p_limit_mw", "scale": round(float(rng.uniform(0.0, 0.5)), 3)}  # command_tamper


def expand(spec: RandomSpec, index: int, scn: Scenario, cat: Catalog, metered: tuple[str, ...],
           taken: list[ScheduledEvent]) -> list[ScheduledEvent]:
    """The events of one `random:` entry (events[index]), avoiding clashes with `taken`."""
    for kind in spec.kinds:
        why = unusable(kind, cat)
        if why:
            raise EventProblem("random.kinds", f"cannot generate {kind} events: {why}")
    clock = scn.clock
    rng = rng_for(scn.seed if spec.seed is None else spec.seed, "events", "random", str(index))
    n = int(rng.poisson(spec.rate_per_day * clock.duration / 86400.0))
    lo, hi = (max(1, int(round(d / clock.step))) for d in spec.duration)
    out: list[ScheduledEvent] = []
    for _ in range(n):
        kind = spec.kinds[int(rng.integers(len(spec.kinds)))]
        steps = min(int(rng.integers(lo, hi + 1)), clock.n_steps)
        first = 1 if kind == "replay" else 0  # a replay needs something recorded before it
        if first + steps > clock.n_steps:
            continue
        start = int(rng.integers(first, clock.n_steps - steps + 1))
        at, duration = start * clock.step, steps * clock.step
        entry = {"kind": kind, "at": at, "duration": duration, **_params(kind, rng, cat, clock.step, at, duration)}
        event = resolve(_EVENT.validate_python(entry), cat, clock, metered, ("events", index))
        if all(conflict(e, event) is None for e in taken + out):
            out.append(event)
    return out
