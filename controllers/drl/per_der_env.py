"""Gymnasium environment for a per-DER policy with shared weights, over the same kernel as `GridEnv`.

One actor drives every DER of the scenario from that DER's local features (`controllers.drl.features`).
Each episode one DER, drawn at random, is the learner: its features are the observation and its
action is the agent's; every other DER acts with the same policy through `others` (set by the
trainer to the learner's current actor), so the learner's transitions include what its own
policy does elsewhere on the feeder (parameter sharing). The spaces are the same for every
feeder and layout, so episodes can come from a distribution (`controllers.drl.sources`): a new
layout every `days_per_layout` days, a new day (date, loads, weather, events) every episode.

Timing, reward and day KPIs are those of `GridEnv` (the action chosen at t acts at t+1).
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np

from controllers.drl.env import (FAST_ENGINE, HELDOUT_BASE, NoGenerators, RewardWeights, day_assembly, der_infos,
                                 env_assembly, step_cost, time_of_day)
from controllers.drl.features import CONST, FeatureMap, PerDERSpec
from controllers.drl.layout import OBS_BOUND
from controllers.drl.sources import ScenarioSource
from controllers.drl.tree import feeder_tree
from cosim.assembly import Assembly, control_loop
from cosim.metrics import metrics_from_array


class PerDEREnv(gym.Env):
    """Days drawn from `source`; observation and action are one DER's (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, source: ScenarioSource, spec: PerDERSpec = PerDERSpec(), weights: RewardWeights = RewardWeights(),
                 engine: str | None = FAST_ENGINE):
        self.source, self.spec, self.weights, self.engine = source, spec, weights, engine
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (len(spec.features),), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(spec.actions),), np.float32)
        self.others: Callable[[np.ndarray], np.ndarray] | None = None  # (k, features) -> (k, actions)
        self._asm: Assembly | None = None
        self._layout_seed: int | None = None
        self._episodes = 0
        self.engine_notes: dict[str, str] = {}  # feeder -> why the fast engine was not used
        self.feeder_days: dict[str, int] = {}  # feeder -> days drawn on it
        self.day_seed, self.t, self.learner = -1, 0, 0

    # -- episodes ----------------------------------------------------------------------------
    def _layout(self, layout_seed: int, day_seed: int) -> Assembly:
        """The assembly of the day: the layout's grid model (rebuilt only for a new layout) with the day's inputs."""
        day = self.source.draw(layout_seed, day_seed)
        feeder = day.scenario.grid.feeder
        self.feeder_days[feeder] = self.feeder_days.get(feeder, 0) + 1
        if self._asm is None or layout_seed != self._layout_seed:
            if not day.scenario.generators:
                raise NoGenerators(f"{self.source.path}: a drawn scenario has no generators for a policy to drive")
            self._asm, note = env_assembly(day, self.engine)
            self._layout_seed = layout_seed
            if note:
                self.engine_notes[feeder] = note
            self._bind(day)
        self._asm.model.reset()  # yesterday's outages, positions and warm start are over
        return day_assembly(self._asm, day)

    def _bind(self, day) -> None:
        """Feature map, column indices and setpoint writer of a new layout."""
        scn, model = day.scenario, self._asm.model
        self.ders = der_infos(day)
        self.fmap = fm = FeatureMap(self.spec, self.ders, feeder_tree(day.feeder), tuple(scn.grid.voltage_limits))
        column = {name: i for i, name in enumerate(model.signal_names)}
        self._signal_names = tuple(model.signal_names)
        is_signal = np.array([n in column for n in fm.names], bool)
        self._at_signal = np.flatnonzero(is_signal)
        self._signal_cols = np.array([column[n] for n in np.array(fm.names)[is_signal]], np.int64)
        self._at_time = [fm.names.index(n) if n in fm.names else -1 for n in ("time.hour_sin", "time.hour_cos")]
        self._x = np.zeros(len(fm.names))
        if CONST in fm.names:
            self._x[fm.names.index(CONST)] = 1.0
        self._action_names = [n for names in fm.action_names for n in names]
        self._actions = np.zeros((len(self.ders), len(self.spec.actions)), np.float32)
        self.v_lo, self.v_hi = scn.grid.voltage_limits
        self.n_steps = scn.clock.n_steps

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a day: `options={'layout': s, 'day': d}` picks it, else random training seeds."""
        super().reset(seed=seed)
        options = options or {}
        if "layout" in options:
            layout_seed = int(options["layout"])
        elif not self.source.varies_layout:
            layout_seed = 0
        elif self._layout_seed is None or self._episodes % self.source.days_per_layout == 0:
            layout_seed = int(self.np_random.integers(HELDOUT_BASE))
        else:
            layout_seed = self._layout_seed
        self._episodes += 1
        self.day_seed = int(options.get("day", self.np_random.integers(HELDOUT_BASE)))
        day_asm = self._layout(layout_seed, self.day_seed)
        self.loop = loop = control_loop(day_asm)
        self.loaded = day_asm.loaded
        sp = loop.setpoints
        sp.p_limit[:], sp.q_set[:] = np.inf, 0.0
        self._write = sp.binder(self._action_names)
        self._named = loop.measurement is not None or loop.command is not None
        self._rows = np.zeros((self.n_steps, len(self._signal_names)))
        self._time = time_of_day(loop.inputs.times)
        self.learner = int(self.np_random.integers(len(self.ders)))
        self._others = np.arange(len(self.ders)) != self.learner
        self.t = 0
        self._solve()
        return self._observe()[self.learner], {"day": self.day_seed, "layout": layout_seed,
                                               "feeder": self.loaded.scenario.grid.feeder, "ders": len(self.ders)}

    @property
    def model(self):
        """The grid model of the current layout (the truth an oracle optimises over)."""
        return self._asm.model

    @property
    def features(self) -> np.ndarray:
        """Every DER's features at the current step, (DERs, features)."""
        return self._features

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """The learner's action and the others' (shared policy) act at the next step; solve and score it."""
        acts = self._actions
        acts[self.learner] = action
        if self.others is not None and self._others.any():
            acts[self._others] = self.others(self._features[self._others])
        features, reward, terminated, truncated, info = self.step_all(acts)
        return features[self.learner], reward, terminated, truncated, info

    def step_all(self, actions: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Every DER's actions, (DERs, actions) in [-1, 1], act at the next step; as `step`, with every DER's
        features (an imitation learner labels them all)."""
        setpoints = np.concatenate(self.fmap.setpoints(actions))
        if self._named:
            self.loop.submit(self.t, dict(zip(self._action_names, setpoints.tolist())))
        else:
            self._write(setpoints)
        self.t += 1
        reward, ok = self._solve()
        truncated = self.t >= self.n_steps - 1
        info: dict[str, Any] = {"violations": self._violations, "loss_kw": self.loss_kw}
        if truncated or not ok:
            info.update(day=self.day_seed, day_kpis=self.day_kpis())
        return self._observe(), reward, not ok, truncated, info

    def day_kpis(self) -> dict[str, float]:
        """The KPIs of the day so far (`cosim.metrics`)."""
        scn = self.loaded.scenario
        return metrics_from_array(self._rows[: self.t + 1], self._signal_names, scn.clock.step,
                                  scn.grid.voltage_limits, [d.name for d in self.ders])

    # -- internals ---------------------------------------------------------------------------
    def _solve(self) -> tuple[float, bool]:
        """Solve step t with the setpoints in force, record its signals, return (reward, converged)."""
        w, t = self.weights, self.t
        r = self.loop.solve(t)
        self._asm.model.signal_values(r, self._rows[t])
        self.loss_kw = r.pf.loss_mw * 1000.0
        if not r.pf.converged:
            self._violations = -1
            return -w.nonconverged, False
        cost, self._violations = step_cost(w, r, self.v_lo, self.v_hi, self._asm.model.der_rating)
        return -cost, True

    def _observe(self) -> np.ndarray:
        """Every DER's features at step t (through the measurement channel when the scenario has one)."""
        t, x, fm = self.t, self._x, self.fmap
        if self._named:
            seen = self.loop.observe(t, dict(zip(self._signal_names, self._rows[t].tolist())))
            x[self._at_signal] = [seen[fm.names[i]] for i in self._at_signal]
        else:
            x[self._at_signal] = self._rows[t, self._signal_cols]
        for j, i in enumerate(self._at_time):
            if i >= 0:
                x[i] = self._time[t, j]
        self._features = fm.features(x)
        return self._features
