"""Scenario -> input time series for a whole run: load multipliers and available DER power.

Pure numpy, computed once and vectorised; the mosaik input simulator and the RL environment
both index into the same arrays, so they see identical physics for a scenario and seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.files import resolve_path
from cosim.profiles import csv_profile, load_profile, pv_profile, wind_profile
from cosim.scenario.schema import PVGenerator, Scenario
from cosim.scenario.units import milliseconds
from cosim.seeding import rng_for


@dataclass
class Inputs:
    """Per-step inputs: load multipliers (steps x loads), DER available power in MW (steps x DERs)."""

    times: np.ndarray
    load_scale: np.ndarray
    der_p_avail_mw: np.ndarray
    native_pv_pu: np.ndarray
    native_wind_pu: np.ndarray


def time_grid(scn: Scenario) -> np.ndarray:
    """Step start times of the run as datetime64[s] (datetime64[ms] for a step that is no whole number of seconds)."""
    start = np.datetime64(scn.clock.start.replace(tzinfo=None), "s")
    step_ms = milliseconds(scn.clock.step)
    times = start + np.arange(scn.clock.n_steps) * np.timedelta64(step_ms, "ms")
    return times.astype("datetime64[s]") if step_ms % 1000 == 0 else times


def load_scale(scn: Scenario, times: np.ndarray, n_loads: int, base_dir: Path) -> np.ndarray:
    """Per-load multipliers of the nominal load: the profile times `scale`, with seeded noise."""
    cfg = scn.loads
    rng = rng_for(scn.seed, "loads")
    if cfg.profile.startswith("csv:"):
        shape = csv_profile(resolve_path(cfg.profile[4:], base_dir), times)
        noise = load_profile(times, "constant", rng, n_loads, cfg.noise)
        return cfg.scale * shape[:, None] * noise
    return cfg.scale * load_profile(times, cfg.profile, rng, n_loads, cfg.noise)


def der_availability(scn: Scenario, times: np.ndarray) -> np.ndarray:
    """Available active power of each scenario generator in MW (steps x generators)."""
    cols = []
    for g in scn.generators:
        rng = rng_for(scn.seed, "generator", g.name)
        if isinstance(g, PVGenerator):
            pu = pv_profile(times, rng, scn.site.latitude, scn.site.longitude, g.cloudiness)
        else:
            pu = wind_profile(len(times), scn.clock.step, rng, g.mean_speed, g.weibull_k, g.tau,
                              g.cut_in, g.rated, g.cut_out)
        cols.append(pu * g.p_mw)
    return np.column_stack(cols) if cols else np.zeros((len(times), 0))


def build_inputs(scn: Scenario, n_loads: int, base_dir: Path) -> Inputs:
    """All input series of a scenario; the feeder's own PV and wind follow site-wide profiles."""
    times = time_grid(scn)
    native_pv = pv_profile(times, rng_for(scn.seed, "native", "pv"), scn.site.latitude, scn.site.longitude)
    native_wind = wind_profile(len(times), scn.clock.step, rng_for(scn.seed, "native", "wind"))
    return Inputs(times, load_scale(scn, times, n_loads, base_dir), der_availability(scn, times),
                  native_pv, native_wind)
