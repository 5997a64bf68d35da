"""Gymnasium environment over the co-simulation's grid model and input generators, without mosaik.

Each episode is one day of the scenario's clock with a fresh seed for the input profiles
(PV clouds, wind, load noise), optionally with random disruptions. Timing follows the
co-simulation: the observation of step t is solved with the setpoints chosen at t-1, and
the action chosen at t acts at t+1 (the grid's setpoint input is time-shifted).

Observation: `Layout.obs_names` (DER-bus voltages, DER available and delivered powers, time
of day), the same names and units as the co-simulation, normalised by the layout.
Action: per DER, a reactive setpoint (and optionally a P limit) in [-1, 1]; the DER
capability (P <= available, |S| <= rating) clips it, as in the co-simulation.

Reward per step, all terms >= 0 and subtracted:
    violation_count * (buses outside the voltage limits)
  + violation_pu    * (sum over buses of the distance outside the limits, pu)
  + loss_per_kw     * (network losses, kW)
  + curtail_per_kw  * (available minus delivered DER power, kW)
A step whose power flow does not converge ends the episode with reward -nonconverged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numba
import numpy as np

from controllers.base import DERInfo
from controllers.drl.events import apply_events, draw_events
from controllers.drl.fastflow import make_flow
from controllers.drl.layout import OBS_BOUND, Layout, voltvar_layout
from cosim.grid.feeders import load_feeder
from cosim.inputs import Inputs, build_inputs
from cosim.scenario.loader import LoadedScenario, load_scenario
from cosim.world import assemble

HELDOUT_BASE = 1_000_000_000  # training days draw seeds below this; held-out days are HELDOUT_BASE + k
# day totals reported at the end of an episode, named like the co-simulation's KPIs (cosim.metrics)
DAY_KPIS = ("voltage_violation_bus_minutes", "loss_energy_kwh", "curtailed_energy_kwh", "reactive_energy_kvarh")


class NoGenerators(ValueError):
    """The scenario has no DERs for a policy to drive."""


def heldout_days(n: int) -> list[int]:
    """Seeds of the first `n` held-out days (never drawn for training)."""
    return [HELDOUT_BASE + k for k in range(n)]


def der_infos(loaded: LoadedScenario) -> tuple[DERInfo, ...]:
    """The scenario's generators as the controller interface describes them."""
    return tuple(DERInfo(g.name, g.kind, g.bus, g.p_mw, g.rating_mva) for g in loaded.scenario.generators)


def day_inputs(loaded: LoadedScenario, seed: int, n_loads: int) -> Inputs:
    """The scenario's input series with another seed: one more day of the same kind."""
    scn = loaded.scenario.model_copy(update={"seed": int(seed)})
    return build_inputs(scn, n_loads, loaded.base_dir)


def time_of_day(times: np.ndarray) -> np.ndarray:
    """`time.hour_sin` and `time.hour_cos` of every step, (steps, 2), as `controllers.base.time_features`."""
    t = np.asarray(times, dtype="datetime64[s]")
    angle = 2.0 * np.pi * ((t - t.astype("datetime64[D]")) / np.timedelta64(1, "h")) / 24.0
    return np.column_stack([np.sin(angle), np.cos(angle)])


@numba.njit(cache=True)
def _score(vm: np.ndarray, lo: float, hi: float, avail: np.ndarray, der_p: np.ndarray,
           der_q: np.ndarray) -> tuple[int, float, float, float]:
    """Buses outside [lo, hi], their summed distance outside (pu), curtailed MW and summed |Q| Mvar."""
    count, excess = 0, 0.0
    for v in vm:
        d = max(v - hi, lo - v, 0.0)
        if d > 0.0:
            count += 1
            excess += d
    curtailed, q_abs = 0.0, 0.0
    for k in range(avail.shape[0]):
        curtailed += avail[k] - der_p[k]
        q_abs += abs(der_q[k])
    return count, excess, curtailed, q_abs


@numba.njit(cache=True)
def _normalise(raw: np.ndarray, offset: np.ndarray, scale: np.ndarray, bound: float) -> np.ndarray:
    """(raw - offset) / scale clipped to +-bound as float32; NaN reads as 0."""
    out = np.empty(raw.shape[0], np.float32)
    for i in range(raw.shape[0]):
        x = (raw[i] - offset[i]) / scale[i]
        out[i] = 0.0 if np.isnan(x) else min(max(x, -bound), bound)
    return out


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward terms (see the module docstring)."""

    violation_count: float = 1.0
    violation_pu: float = 100.0
    loss_per_kw: float = 0.03
    curtail_per_kw: float = 0.01
    nonconverged: float = 100.0


class GridEnv(gym.Env):
    """One scenario's feeder and DERs as a gymnasium environment; an episode is a random day."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: str | Path | LoadedScenario, curtail: bool = False, events_per_day: float = 0.0,
                 days: Sequence[int] | None = None, weights: RewardWeights = RewardWeights()):
        loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
        scn = loaded.scenario
        if not scn.generators:
            raise NoGenerators(f"scenario {loaded.path} has no generators for a policy to drive")
        # a fresh feeder: the grid model adds the DERs to the net it is given
        asm = assemble(dataclasses.replace(loaded, feeder=load_feeder(scn.grid.feeder, loaded.base_dir)))
        self.loaded, self.model = loaded, asm.model
        self.flow, self.engine_note = make_flow(asm.model)
        self.ders = der_infos(loaded)
        self.layout: Layout = voltvar_layout(self.ders, curtail)
        self.curtail, self.events_per_day, self.weights = curtail, events_per_day, weights
        self.days = None if days is None else [int(d) for d in days]
        self.step_s, self.n_steps = float(scn.clock.step), scn.clock.n_steps
        self.v_lo, self.v_hi = scn.grid.voltage_limits
        self.is_pv = np.array([d.kind == "pv" for d in self.ders])
        n_der = len(self.ders)
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (len(self.layout.obs_names),), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(self.layout.action_names),), np.float32)
        bus_of = {int(b): i for i, b in enumerate(loaded.feeder.bus_labels)}
        self._obs_bus = np.array([bus_of[int(n.split(".")[1])] for n in self.layout.obs_names if n.startswith("bus.")])
        self._no_limit = np.full(n_der, np.inf)
        self._raw = np.zeros(len(self.layout.obs_names))
        self._offset, self._scale = np.asarray(self.layout.obs_offset), np.asarray(self.layout.obs_scale)
        self._setpoint_low = np.asarray(self.layout.action_low)
        self._setpoint_span = np.asarray(self.layout.action_high) - self._setpoint_low
        self.day_seed = -1
        self.t = 0
        self.loss_kw = float("nan")

    # -- gymnasium surface ----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a day: `options={'day': seed}` picks it, else a random training (or `days`) seed."""
        super().reset(seed=seed)
        rng = self.np_random
        day = (options or {}).get("day")
        if day is None:
            day = int(rng.choice(self.days)) if self.days else int(rng.integers(HELDOUT_BASE))
        self.day_seed = int(day)
        inputs = day_inputs(self.loaded, self.day_seed, len(self.model.load_p_nom))
        events = []
        if self.events_per_day > 0:
            events = draw_events(rng, self.events_per_day, self.n_steps, self.step_s, len(self.ders), self.is_pv)
            inputs = apply_events(inputs, events, self.is_pv)
        self.inputs, self.events = inputs, events
        self.flow.start_day(inputs)
        self._time = time_of_day(inputs.times)
        self.totals = dict.fromkeys(DAY_KPIS, 0.0)
        self.t = 0
        self._solve(self._no_limit, np.zeros(len(self.ders)))
        return self._observation(), {"day": self.day_seed}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply the action at the next step, solve it, and score it."""
        setpoints = self._setpoint_low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * self._setpoint_span
        n = len(self.ders)
        q = setpoints[:n]
        limit = setpoints[n:] if self.curtail else self._no_limit
        self.t += 1
        reward, ok = self._solve(limit, q)
        truncated = self.t >= self.n_steps - 1
        info = {"violations": self._violations, "loss_kw": self.loss_kw}
        if truncated or not ok:
            info.update(day=self.day_seed, day_kpis=dict(self.totals))
        return self._observation(), reward, not ok, truncated, info

    # -- internals --------------------------------------------------------------------------
    def _solve(self, p_limit: np.ndarray, q_set: np.ndarray) -> tuple[float, bool]:
        """Solve step t with these setpoints, update the day totals, return (reward, converged)."""
        flow, w, t = self.flow, self.weights, self.t
        avail = self.inputs.der_p_avail_mw[t]
        loss_mw, ok = flow.solve(t, avail, p_limit, q_set)
        self.loss_kw = loss_mw * 1000.0
        if not ok:
            self._violations = -1
            return -w.nonconverged, False
        count, excess, curtailed_mw, q_abs = _score(flow.vm, self.v_lo, self.v_hi, avail, flow.der_p, flow.der_q)
        curtailed_kw = curtailed_mw * 1000.0
        self._violations = count
        h = self.step_s / 3600.0
        tot = self.totals
        tot["voltage_violation_bus_minutes"] += count * self.step_s / 60.0
        tot["loss_energy_kwh"] += self.loss_kw * h
        tot["curtailed_energy_kwh"] += curtailed_kw * h
        tot["reactive_energy_kvarh"] += q_abs * 1000.0 * h
        cost = (w.violation_count * count + w.violation_pu * excess
                + w.loss_per_kw * self.loss_kw + w.curtail_per_kw * curtailed_kw)
        return -cost, True

    def _observation(self) -> np.ndarray:
        """The normalised observation of step t, clipped to the space (NaN voltages of a failed step read as 0)."""
        raw, n, t, flow = self._raw, len(self.ders), self.t, self.flow
        nb = len(self._obs_bus)
        raw[:nb] = flow.vm[self._obs_bus]
        raw[nb:nb + n] = self.inputs.der_p_avail_mw[t]
        raw[nb + n:nb + 2 * n] = flow.der_q
        if self.curtail:
            raw[nb + 2 * n:nb + 3 * n] = flow.der_p
        raw[-2:] = self._time[t]
        return _normalise(raw, self._offset, self._scale, OBS_BOUND)
