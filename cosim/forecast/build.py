"""Scenario + input series -> the run's forecasts, computed once for every step before the run starts.

The forecast signals are `forecast.<signal>.+<lead>`: `<signal>` is `<der>.p_avail_mw` for every scenario
generator and `grid.load_p_mw` for the feeder's total load, `<lead>` one clock step after another up to
the horizon (`forecast.pv1.p_avail_mw.+5min`, ..., `forecast.grid.load_p_mw.+1h`). A forecast issued at
step k is for steps k+1 .. k+horizon/step, from the run's input series up to step k (the forecast provider
observes the feeder directly, not through the controller's measurement channel); `noise` adds a seeded
relative Gaussian error with standard deviation noise x sqrt(lead / horizon).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from datetime import timedelta
from pathlib import Path

import numpy as np

from cosim import signals as sig
from cosim.forecast import forecaster_class
from cosim.forecast.base import LOAD, Context, Series
from cosim.inputs import Inputs, build_inputs
from cosim.scenario.loader import LoadedScenario
from cosim.scenario.units import format_duration, steps_in
from cosim.seeding import rng_for

PREFIX = "forecast."
LOAD_SIGNAL = sig.grid("load_p_mw")


def signal_name(signal: str, lead_s: float) -> str:
    """`forecast.<signal>.+<lead>`, e.g. `forecast.pv1.p_avail_mw.+15min`."""
    return f"{PREFIX}{signal}.+{format_duration(lead_s)}"


@dataclass(frozen=True)
class Forecasts:
    """Every step's forecasts: values (steps x leads x signals) in MW and the observation names of one step."""

    signals: tuple[str, ...]  # the forecast quantities (`pv1.p_avail_mw`, `grid.load_p_mw`)
    step_s: float
    values: np.ndarray

    @property
    def leads(self) -> int:
        return self.values.shape[1]

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Observation names, lead by lead within each signal."""
        return tuple(signal_name(s, (h + 1) * self.step_s) for s in self.signals for h in range(self.leads))

    def at(self, k: int) -> dict[str, float]:
        """The observation part of step k (the last step's forecasts past the end)."""
        row = self.values[min(k, len(self.values) - 1)].T.ravel()  # signal-major, as `names`
        return dict(zip(self.names, row.tolist()))


def observed_names(signal_names: tuple[str, ...] | list[str], forecasts: Forecasts | None) -> tuple[str, ...]:
    """What a controller observes besides the time features: the grid's signals, then the forecasts (if any)."""
    return tuple(signal_names) + (forecasts.names if forecasts is not None else ())


def series_of(loaded: LoadedScenario, inputs: Inputs, load_p_nom: np.ndarray) -> Series:
    """The forecast quantities of a run: each generator's available P and the feeder's total load, in MW."""
    scn = loaded.scenario
    load = (np.broadcast_to(np.asarray(inputs.load_scale, float), (len(inputs.times), len(load_p_nom)))
            * load_p_nom).sum(axis=1)
    names = tuple(sig.der(g.name, "p_avail_mw") for g in scn.generators) + (LOAD_SIGNAL,)
    kinds = tuple(g.kind for g in scn.generators) + (LOAD,)
    scale = np.array([g.p_mw for g in scn.generators] + [max(float(load_p_nom.sum()) * scn.loads.scale, 1e-9)])
    return Series(inputs.times, names, kinds, scale, np.column_stack([inputs.der_p_avail_mw, load]))


def generated_day(loaded: LoadedScenario, load_p_nom: np.ndarray, i: int) -> Series:
    """Day `i` of the training days: the scenario's profiles one day long, i+1 days after its start, seed + i + 1
    (with a CSV load profile, which may cover only the run, the run's own clock with seed + i + 1)."""
    scn = loaded.scenario
    clock = scn.clock
    if not scn.loads.profile.startswith("csv:"):
        clock = clock.model_copy(update={"start": clock.start + timedelta(days=i + 1),
                                         "duration": steps_in(86400.0, clock.step) * clock.step})
    other = scn.model_copy(update={"seed": (scn.seed + i + 1) % 2**32, "clock": clock})
    return series_of(loaded, build_inputs(other, len(load_p_nom), loaded.base_dir), load_p_nom)


def with_noise(values: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """`values` (steps x leads x signals) times 1 + noise x sqrt(lead / leads) x N(0, 1), never below 0."""
    if noise == 0:
        return values
    leads = values.shape[1]
    grow = np.sqrt(np.arange(1, leads + 1) / leads)[None, :, None]
    return np.maximum(values * (1.0 + noise * grow * rng.standard_normal(values.shape)), 0.0)


def build_forecasts(loaded: LoadedScenario, inputs: Inputs, load_p_nom: np.ndarray) -> Forecasts | None:
    """The run's forecasts (None without a `forecast:` block)."""
    scn = loaded.scenario
    spec = scn.forecast
    if spec is None:
        return None
    step = scn.clock.step
    context = Context(spec, step, scn.seed, Path(loaded.base_dir), lambda i: generated_day(loaded, load_p_nom, i))
    series = series_of(loaded, inputs, load_p_nom)
    leads = steps_in(spec.horizon, step)
    values = forecaster_class(spec.kind)(context).predict(series, leads)
    values = with_noise(values, spec.noise, rng_for(scn.seed, "forecast", "noise"))
    return Forecasts(series.names, step, values)
