"""Volt-var droop with its curve tuned per scenario within IEEE 1547-2018's Category B adjustable ranges.

The default Category B curve is a compromise for any feeder; the standard lets the utility set
each point within a range. This baseline sets them for the scenario by a search on training
days, so controllers can be compared with a droop that is as good as the standard allows.

Ranges, IEEE 1547-2018 Table 8 (voltage-reactive power settings, Category B), V in pu of nominal,
Q as a share of the nameplate apparent power S (Q2 = Q3 = 0 here, a dead band):

    VRef  0.95 .. 1.05                  (default 1.00)
    V2    VRef - 0.03 .. VRef           (default VRef - 0.02)
    V3    VRef .. VRef + 0.03           (default VRef + 0.02)
    V1    VRef - 0.18 .. V2 - 0.02      (default VRef - 0.08), Q1 injection 0 .. 100 % of capability (0.44)
    V4    V3 + 0.02 .. VRef + 0.18      (default VRef + 0.08), Q4 absorption 0 .. 100 % of capability (0.44)

The reactive capability is the inverter's rating times `q_max` (default 1.0: Q1, Q4 up to S;
the grid model still limits Q to what S leaves beside the delivered P).

Training days: `train_days` (default 2) copies of the scenario whose clock starts 1, 2, ... days
before the evaluated start, each with a seed drawn from the scenario's seed below 10^9 (held-out
evaluation seeds are 10^9 and up), without the scenario's events and failures: the scenario's
own inputs on other days. Search: cyclic coordinate descent over a small grid per parameter
(VRef, the dead band halves, the slope widths, Q1, Q4), starting from the default curve and
keeping a move only if it lowers the training days' voltage-violation bus-minutes, or keeps them
and lowers the losses; `sweeps` passes (default 2) or until nothing moves. Each candidate is a
rollout (`controllers.rollout`) of droop with that curve on every training day. Deterministic
given the scenario's seed; tunings are cached per scenario and parameters within a process.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Sequence

from controllers.base import ControllerError, ControllerInfo
from controllers.baselines.droop import VoltVar
from cosim.seeding import rng_for

EVALUATION_SEEDS = 10**9  # seeds from here on are held-out evaluation days (`cosim evaluate`)
VREF = (0.95, 1.05)
BAND = (0.0, 0.03)  # VRef - V2 and V3 - VRef
SLOPE_MIN, REACH = 0.02, 0.18  # V2 - V1 and V4 - V3 at least; V1, V4 within VRef -+ 0.18
DEFAULT = {"vref": 1.0, "band_low": 0.02, "band_high": 0.02, "slope_low": 0.06, "slope_high": 0.06,
           "q1": 0.44, "q4": 0.44}
GRID = {"vref": (0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03), "band_low": (0.0, 0.01, 0.02, 0.03),
        "band_high": (0.0, 0.01, 0.02, 0.03), "slope_low": (0.02, 0.04, 0.06, 0.10, 0.15),
        "slope_high": (0.02, 0.04, 0.06, 0.10, 0.15), "q1": (0.2, 0.44, 0.6, 0.8, 1.0),
        "q4": (0.2, 0.44, 0.6, 0.8, 1.0)}
_cache: dict[tuple, tuple[tuple[float, ...], tuple[float, ...]]] = {}


def curve_of(x: dict[str, float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(V1..V4, Q1..Q4 as shares of S) of a parameter point."""
    v2, v3 = x["vref"] - x["band_low"], x["vref"] + x["band_high"]
    v = (v2 - x["slope_low"], v2, v3, v3 + x["slope_high"])
    return tuple(round(p, 6) for p in v), (x["q1"], 0.0, 0.0, -x["q4"])


def _allowed(x: dict[str, float]) -> bool:
    """V2 < V3, V1 and V4 within VRef -+ 0.18 (the grid keeps everything else within its range)."""
    v2, v3 = x["vref"] - x["band_low"], x["vref"] + x["band_high"]
    return v3 > v2 + 1e-9 and v2 - x["slope_low"] >= x["vref"] - REACH - 1e-9 and v3 + x["slope_high"] <= x["vref"] + REACH + 1e-9


def training_days(loaded, n: int) -> list:
    """The `n` training scenarios of `loaded` (see the module docstring), as LoadedScenario copies."""
    scn = loaded.scenario
    seeds = rng_for(scn.seed, "droop_tuned", "train_days").integers(0, EVALUATION_SEEDS, n)
    days = []
    for d, seed in enumerate(seeds.tolist(), start=1):
        clock = scn.clock.model_copy(update={"start": scn.clock.start - timedelta(days=d)})
        day = scn.model_copy(update={"seed": int(seed), "clock": clock, "events": [], "failures": None})
        days.append(dataclasses.replace(loaded, scenario=day))
    return days


def score(days: list, v: Sequence[float], q: Sequence[float], **droop) -> tuple[float, float]:
    """(violation bus-minutes, losses kWh) of droop with curve (v, q) summed over `days` (assemblies)."""
    from controllers.rollout import rollout

    violations = losses = 0.0
    for asm in days:
        asm.model.reset()
        kpis = rollout(asm, VoltVar(list(v), list(q), **droop)).kpis
        violations += kpis["voltage_violation_bus_minutes"]
        losses += kpis["loss_energy_kwh"]
    return violations, losses


def tune(days: list, q_max: float = 1.0, sweeps: int = 2,
         **droop) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, float]]:
    """The best curve found by the coordinate search on `days` (assemblies): (V, Q shares, its score)."""
    seen: dict[tuple, tuple[float, float]] = {}

    def evaluate(x: dict[str, float]) -> tuple[float, float]:
        v, q = curve_of(x)
        if (v, q) not in seen:
            seen[(v, q)] = score(days, v, q, **droop)
        return seen[(v, q)]

    x = dict(DEFAULT, q1=min(DEFAULT["q1"], q_max), q4=min(DEFAULT["q4"], q_max))
    best = evaluate(x)
    for _ in range(sweeps):
        moved = False
        for name, values in GRID.items():
            for value in values:
                if value == x[name] or (name in ("q1", "q4") and value > q_max):
                    continue
                trial = dict(x, **{name: value})
                if not _allowed(trial):
                    continue
                s = evaluate(trial)
                if _better(s, best):
                    x, best, moved = trial, s, True
        if not moved:
            break
    v, q = curve_of(x)
    return v, q, best


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Fewer violation bus-minutes, or as many and lower losses (to 1e-9)."""
    return a[0] < b[0] - 1e-9 or (a[0] <= b[0] + 1e-9 and a[1] < b[1] - 1e-9)


class TunedVoltVar(VoltVar):
    """Volt-var droop whose curve is tuned on the scenario's training days; see the module docstring.

    Params `train_days` (>= 1), `q_max` (Q1, Q4 at most this share of S, 0..1), `sweeps` (>= 1),
    and droop's `response_time`, `gain`. After setup, `v`, `q` and `training_score` say what it found.
    """

    uses_scenario = True

    def __init__(self, train_days: int = 2, q_max: float = 1.0, sweeps: int = 2,
                 response_time: object = None, gain: float | None = None):
        super().__init__(gain=gain, response_time=response_time)
        if isinstance(train_days, bool) or not isinstance(train_days, int) or train_days < 1:
            raise ValueError(f"train_days must be a whole number of days >= 1, got {train_days!r}")
        if isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 1:
            raise ValueError(f"sweeps must be a whole number >= 1, got {sweeps!r}")
        if not 0.0 < float(q_max) <= 1.0:
            raise ValueError(f"q_max must be a share of the inverter rating in (0, 1], got {q_max!r}")
        self.train_days, self.q_max, self.sweeps = train_days, float(q_max), sweeps
        self.droop = {"response_time": response_time, "gain": gain}

    def setup(self, info: ControllerInfo) -> None:
        if info.scenario is None:
            raise ControllerError("droop_tuned tunes its curve on the scenario's other days, which only a run, "
                                  "a rollout or an evaluation provides")
        key = (info.scenario.scenario.model_dump_json(), str(info.scenario.base_dir), self.train_days,
               self.q_max, self.sweeps, repr(self.droop))
        if key not in _cache:
            try:
                from cosim.assembly import assemble

                days = [assemble(day) for day in training_days(info.scenario, self.train_days)]
                _cache[key] = tune(days, self.q_max, self.sweeps, **self.droop)
            except ControllerError:
                raise
            except Exception as exc:
                raise ControllerError(f"droop_tuned could not run its training days ({self.train_days} days before "
                                      f"the start): {exc}") from None
        self.v, self.q, self.training_score = _cache[key]
        self.curve = type(self.curve)(self.v, self.q)
        super().setup(info)


CONTROLLER = TunedVoltVar
