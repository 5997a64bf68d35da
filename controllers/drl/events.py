"""Random disruptions for training days: DER trips, load steps and cloud transients on the input series.

They act on the inputs only (what the grid is asked to serve or may produce), so the
physics stays the co-simulation's; a policy trained with them has seen abrupt changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.inputs import Inputs

KINDS = ("der_trip", "load_step", "cloud")


@dataclass(frozen=True)
class Event:
    """One disruption: what, on which DER (-1 for all), from which step for how many steps."""

    kind: str
    target: int
    start: int
    steps: int
    factor: float


def draw_events(rng: np.random.Generator, rate: float, n_steps: int, step_s: float, n_ders: int,
                pv: np.ndarray) -> list[Event]:
    """A Poisson(`rate`) number of events on a day of `n_steps`; `pv` flags which DERs are PV."""
    events = []
    minute = 60.0 / step_s
    for _ in range(rng.poisson(rate)):
        kind = KINDS[rng.integers(len(KINDS))]
        start = int(rng.integers(n_steps))
        if kind == "der_trip" and n_ders:
            target, minutes, factor = int(rng.integers(n_ders)), rng.uniform(5, 60), 0.0
        elif kind == "load_step":
            target, minutes = -1, rng.uniform(15, 120)
            factor = rng.uniform(1.2, 1.5) if rng.random() < 0.5 else rng.uniform(0.6, 0.8)
        elif kind == "cloud" and pv.any():
            target, minutes, factor = -1, rng.uniform(2, 20), rng.uniform(0.2, 0.5)
        else:
            continue
        events.append(Event(kind, target, start, max(1, int(minutes * minute)), float(factor)))
    return events


def apply_events(inputs: Inputs, events: list[Event], pv: np.ndarray) -> Inputs:
    """A copy of `inputs` with the events applied."""
    load = inputs.load_scale.copy()
    avail = inputs.der_p_avail_mw.copy()
    for ev in events:
        window = slice(ev.start, ev.start + ev.steps)
        if ev.kind == "der_trip":
            avail[window, ev.target] = 0.0
        elif ev.kind == "load_step":
            load[window] *= ev.factor
        else:
            avail[window, pv] *= ev.factor
    return Inputs(inputs.times, load, avail, inputs.native_pv_pu, inputs.native_wind_pu)
