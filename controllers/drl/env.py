"""Gymnasium environment over the co-simulation's step kernel, grid model, inputs and events, without mosaik.

Each episode is one day of the scenario's clock with a fresh seed for the input profiles
(PV clouds, wind, load noise) and for the scenario's random events; the scenario's own
events (disruptions, measurement and command attacks) act as in a run, and `events_per_day`
adds random disruptions (DER trips, load steps, cloud transients). Timing follows the
co-simulation (`cosim.kernel`): the observation of step t is solved with the setpoints chosen
at t-1, and the action chosen at t acts at t+1.

The grid model runs on the sweep engine (or `engine`) when it reproduces the scenario's feeder,
else on the scenario's own engine (`engine_note` says why).

Observation: `Layout.obs_names` (DER-bus voltages, DER available and delivered powers, time
of day), the same names and units as the co-simulation (after its measurement channel),
normalised by the layout. Action: per DER, a reactive setpoint (and optionally a P limit) in
[-1, 1]; the DER capability (P <= available, |S| <= rating) clips it, as in the co-simulation.
A scenario's batteries (`storage:`) are simulated with their state of charge (each day from soc0);
with `batteries=True` the policy observes each one's SoC and P and sets its P (`<battery>.p_set_mw`
in [-p_mw, p_mw], charging > 0), otherwise they idle (P = Q = 0).

Reward per step, all terms >= 0 and subtracted:
    violation_count * (buses outside the voltage limits)
  + violation_pu    * (sum over buses of the distance outside the limits, pu)
  + loss_per_kw     * (network losses, kW)
  + curtail_per_kw  * (available minus delivered DER power, kW)
  + reactive_per_pu * (sum over DERs of |Q| / the DER's own rating)
The reactive term (MAPDN's "q loss") is per unit of each DER's rating, so it weighs alike on every
feeder; it is 0 by default. `step_cost` computes the sum, shared by every environment.
A step whose power flow does not converge ends the episode with reward -nonconverged.
At the end of a day `info['day_kpis']` holds the day's KPIs from `cosim.metrics`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numba
import numpy as np

from controllers.base import DERInfo, StorageInfo
from controllers.drl.layout import OBS_BOUND, Layout, voltvar_layout
from cosim.assembly import Assembly, assemble, control_loop
from cosim.events.build import build_schedule
from cosim.events.models import RandomEvents, RandomSpec
from cosim.grid.engines import EngineUnsupported
from cosim.grid.model import StepResult
from cosim.inputs import build_inputs
from cosim.kernel import ControlLoop
from cosim.metrics import metrics_from_array
from cosim.scenario.loader import LoadedScenario, load_scenario

HELDOUT_BASE = 1_000_000_000  # training days draw seeds below this; held-out days are HELDOUT_BASE + k
# day totals written to the learning curve, named like the co-simulation's KPIs (cosim.metrics)
DAY_KPIS = ("voltage_violation_bus_minutes", "loss_energy_kwh", "curtailed_energy_kwh", "reactive_energy_kvarh")
TRAINING_DISRUPTIONS = ("dg_trip", "load_step", "cloud_transient")  # what `events_per_day` draws
FAST_ENGINE = "sweep"


class NoGenerators(ValueError):
    """The scenario has no DERs for a policy to drive."""


def heldout_days(n: int) -> list[int]:
    """Seeds of the first `n` held-out days (never drawn for training)."""
    return [HELDOUT_BASE + k for k in range(n)]


def der_infos(loaded: LoadedScenario) -> tuple[DERInfo, ...]:
    """The scenario's generators as the controller interface describes them."""
    return tuple(DERInfo(g.name, g.kind, g.bus, g.p_mw, g.rating_mva) for g in loaded.scenario.generators)


def day_scenario(loaded: LoadedScenario, seed: int, events_per_day: float = 0.0) -> LoadedScenario:
    """The scenario with another seed (one more day of the same kind), optionally with random disruptions."""
    update: dict[str, Any] = {"seed": int(seed)}
    if events_per_day > 0:
        spec = RandomSpec(kinds=list(TRAINING_DISRUPTIONS), rate_per_day=events_per_day)
        update["events"] = [*loaded.scenario.events, RandomEvents(random=spec)]
    return dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update=update))


def env_assembly(loaded: LoadedScenario, engine: str | None = FAST_ENGINE) -> tuple[Assembly, str]:
    """The scenario assembled on `engine` (None: the scenario's own), falling back to the scenario's own
    engine when `engine` refuses the feeder; returns the assembly and why it fell back ('' if not)."""
    if engine is None or engine == loaded.scenario.grid.engine:
        return assemble(loaded), ""
    try:
        grid = loaded.scenario.grid.model_copy(update={"engine": engine})
        return assemble(dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={"grid": grid}))), ""
    except EngineUnsupported as exc:
        return assemble(loaded), f"{exc}; using {loaded.scenario.grid.engine}"


def day_assembly(asm: Assembly, day: LoadedScenario) -> Assembly:
    """`asm` (its grid model and estimator) with the inputs and event schedule of another day."""
    scn = day.scenario
    schedule, _ = build_schedule(scn, day.feeder)
    inputs = build_inputs(scn, len(asm.model.load_p_nom), day.base_dir)
    return dataclasses.replace(asm, loaded=day, inputs=inputs, schedule=schedule)


def time_of_day(times: np.ndarray) -> np.ndarray:
    """`time.hour_sin` and `time.hour_cos` of every step, (steps, 2), as `controllers.base.time_features`."""
    t = np.asarray(times, dtype="datetime64[s]")
    angle = 2.0 * np.pi * ((t - t.astype("datetime64[D]")) / np.timedelta64(1, "h")) / 24.0
    return np.column_stack([np.sin(angle), np.cos(angle)])


@numba.njit(cache=True)
def _score(vm: np.ndarray, lo: float, hi: float, avail: np.ndarray, der_p: np.ndarray) -> tuple[int, float, float]:
    """Buses outside [lo, hi], their summed distance outside (pu), and curtailed MW."""
    count, excess = 0, 0.0
    for v in vm:
        d = max(v - hi, lo - v, 0.0)
        if d > 0.0:
            count += 1
            excess += d
    curtailed = 0.0
    for k in range(avail.shape[0]):
        curtailed += avail[k] - der_p[k]
    return count, excess, curtailed


@numba.njit(cache=True)
def _setpoints(action: np.ndarray, low: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Actions in [-1, 1] (clipped) mapped onto [low, low + span]."""
    out = np.empty(action.shape[0])
    for i in range(action.shape[0]):
        out[i] = low[i] + (min(max(action[i], -1.0), 1.0) + 1.0) * 0.5 * span[i]
    return out


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
    reactive_per_pu: float = 0.0


def reactive_pu(q_mvar: np.ndarray, rating_mva: np.ndarray) -> np.ndarray:
    """Each DER's |Q| as a fraction of its own rating (0 at zero rating): the reactive term, feeder-independent."""
    rating = np.asarray(rating_mva, float)
    return np.divide(np.abs(q_mvar), rating, out=np.zeros(rating.shape), where=rating > 0)


def step_cost(w: RewardWeights, r: StepResult, v_lo: float, v_hi: float, rating_mva: np.ndarray) -> tuple[float, int]:
    """The cost of a converged step (the module docstring's sum, >= 0) and its count of buses outside the limits."""
    count, excess, curtailed_mw = _score(r.pf.vm_pu, v_lo, v_hi, r.der_p_avail_mw, r.der_p_mw)
    cost = (w.violation_count * count + w.violation_pu * excess + w.loss_per_kw * r.pf.loss_mw * 1000.0
            + w.curtail_per_kw * curtailed_mw * 1000.0)
    if w.reactive_per_pu:
        cost += w.reactive_per_pu * float(reactive_pu(r.der_q_mvar, rating_mva).sum())
    return cost, count


class GridEnv(gym.Env):
    """One scenario's feeder and DERs as a gymnasium environment; an episode is a random day."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: str | Path | LoadedScenario, curtail: bool = False, events_per_day: float = 0.0,
                 days: Sequence[int] | None = None, weights: RewardWeights = RewardWeights(),
                 engine: str | None = FAST_ENGINE, batteries: bool = False):
        loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
        scn = loaded.scenario
        if not scn.generators:
            raise NoGenerators(f"scenario {loaded.path} has no generators for a policy to drive")
        self.loaded = loaded
        self.asm, self.engine_note = env_assembly(loaded, engine)
        self.model = self.asm.model
        self.ders = der_infos(loaded)
        storage = tuple(StorageInfo(b.name, b.bus, b.p_mw, b.e_mwh, b.soc_min, b.soc_max, b.efficiency, b.rating_mva)
                        for b in scn.storage) if batteries else ()
        self.layout: Layout = voltvar_layout(self.ders, curtail, storage)
        self.curtail, self.events_per_day, self.weights = curtail, events_per_day, weights
        self.days = None if days is None else [int(d) for d in days]
        self.step_s, self.n_steps = float(scn.clock.step), scn.clock.n_steps
        self.v_lo, self.v_hi = scn.grid.voltage_limits
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (len(self.layout.obs_names),), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(self.layout.action_names),), np.float32)
        self._names = tuple(self.model.signal_names)
        column = {name: i for i, name in enumerate(self._names)}
        measured = [n for n in self.layout.obs_names if n in column]  # the rest are time features, last
        self._obs_columns = np.array([column[n] for n in measured], np.int64)
        self._rows = np.zeros((self.n_steps, len(self._names)))
        self._raw = np.zeros(len(self.layout.obs_names))
        self._offset, self._scale = np.asarray(self.layout.obs_offset), np.asarray(self.layout.obs_scale)
        self._setpoint_low = np.asarray(self.layout.action_low)
        self._setpoint_span = np.asarray(self.layout.action_high) - self._setpoint_low
        self.loop: ControlLoop | None = None
        self.day_seed = -1
        self.t = 0
        self.loss_kw = float("nan")

    # -- gymnasium surface ----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a day: `options={'day': seed}` picks it, else a random training (or `days`) seed."""
        super().reset(seed=seed)
        day = (options or {}).get("day")
        if day is None:
            day = int(self.np_random.choice(self.days)) if self.days else int(self.np_random.integers(HELDOUT_BASE))
        self.day_seed = int(day)
        self.model.reset()  # yesterday's outages, positions and warm start are over
        day_asm = day_assembly(self.asm, day_scenario(self.loaded, self.day_seed, self.events_per_day))
        self.loop = loop = control_loop(day_asm)
        sp = loop.setpoints
        sp.p_limit[:], sp.q_set[:] = np.inf, 0.0
        sp.storage_p[:], sp.storage_q[:] = 0.0, 0.0  # idle unless the layout has battery actions
        self._write = sp.binder(self.layout.action_names)
        self._named = loop.measurement is not None or loop.command is not None  # channels act on names
        self.inputs, self.schedule = loop.inputs, loop.schedule
        self._time = time_of_day(loop.inputs.times)
        self.t = 0
        self._solve()
        return self._observation(), {"day": self.day_seed}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Submit the action as setpoints for the next step, solve it, and score it."""
        setpoints = _setpoints(np.asarray(action, np.float64), self._setpoint_low, self._setpoint_span)
        loop = self.loop
        if self._named:
            loop.submit(self.t, dict(zip(self.layout.action_names, setpoints.tolist())))
        else:
            self._write(setpoints)
        self.t += 1
        reward, ok = self._solve()
        truncated = self.t >= self.n_steps - 1
        info = {"violations": self._violations, "loss_kw": self.loss_kw}
        if truncated or not ok:
            info.update(day=self.day_seed, day_kpis=self.day_kpis())
        return self._observation(), reward, not ok, truncated, info

    def signals(self) -> dict[str, float]:
        """Every grid signal of the current step by name, as a run records it."""
        return dict(zip(self._names, self._rows[self.t].tolist()))

    def day_kpis(self) -> dict[str, float]:
        """The KPIs of the day so far (`cosim.metrics`, as metrics.json of a run)."""
        scn = self.loaded.scenario
        return metrics_from_array(self._rows[: self.t + 1], self._names, scn.clock.step, scn.grid.voltage_limits,
                                  [d.name for d in self.ders])

    # -- internals --------------------------------------------------------------------------
    def _solve(self) -> tuple[float, bool]:
        """Solve step t with the setpoints in force, record its signals, return (reward, converged)."""
        w, t = self.weights, self.t
        r = self.loop.solve(t)
        self.model.signal_values(r, self._rows[t])
        pf = r.pf
        self.loss_kw = pf.loss_mw * 1000.0
        if not pf.converged:
            self._violations = -1
            return -w.nonconverged, False
        cost, self._violations = step_cost(w, r, self.v_lo, self.v_hi, self.model.der_rating)
        return -cost, True

    def _observation(self) -> np.ndarray:
        """The normalised observation of step t, clipped to the space (NaN of a failed step reads as 0)."""
        t, raw = self.t, self._raw
        if self._named:  # what the controller sees after the measurement channel, by name
            seen = self.loop.observe(t, dict(zip(self._names, self._rows[t].tolist())))
            raw[:-2] = [seen[n] for n in self.layout.obs_names[:-2]]
        else:
            raw[:-2] = self._rows[t, self._obs_columns]
        raw[-2:] = self._time[t]
        return _normalise(raw, self._offset, self._scale, OBS_BOUND)
