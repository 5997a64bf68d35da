"""PettingZoo parallel environment: one agent per DER over the same kernel as `GridEnv`.

The grid, inputs, events and timing are `GridEnv`'s (composition: every step is one `GridEnv.step`
with the agents' actions in its action order), so a day with every agent acting 0 is the same day
as `GridEnv` with zero actions. Agents are the scenario's DER names.

Observation of agent `d` (local, `controllers.drl.features` units): its bus voltage (`v_own`), its
available and delivered P and its Q (`p_avail`, `p`, `q`, per unit of its rating), and the time of
day (`hour_sin`, `hour_cos`). They are read from the grid's signals, i.e. before any measurement
channel of the scenario (measurement attacks do not reach the agents in this environment).
Action of agent `d`: its reactive setpoint as a fraction of its rating, in [-1, 1].

Reward: `shared` (default) gives every agent `GridEnv`'s reward; `local` gives agent `d`
    -( violation_count * [own bus outside the limits] + violation_pu * (own distance outside, pu)
       + loss_per_kw * (network losses, kW) / agents + curtail_per_kw * (own curtailed power, kW)
       + reactive_per_pu * |own Q| / own rating ).
A day ends for all agents at once (truncation at the last step, termination on a failed power flow).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from controllers.drl.env import GridEnv, RewardWeights, reactive_pu, time_of_day
from controllers.drl.features import FeatureMap, PerDERSpec
from controllers.drl.layout import OBS_BOUND
from cosim import signals as sig
from cosim.scenario.loader import LoadedScenario

LOCAL_SPEC = PerDERSpec(features=("v_own", "p_avail", "p", "q", "hour_sin", "hour_cos"), actions=("q",))
REWARDS = ("shared", "local")


class GridParallelEnv(ParallelEnv):
    """One scenario's DERs as PettingZoo agents; an episode is a random day (see the module docstring)."""

    metadata = {"name": "cosim_grid_v0", "render_modes": []}

    def __init__(self, scenario: str | Path | LoadedScenario, reward: str = "shared", events_per_day: float = 0.0,
                 weights: RewardWeights = RewardWeights(), engine: str | None = "sweep"):
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        self.grid = GridEnv(scenario, events_per_day=events_per_day, weights=weights, engine=engine)
        self.reward_kind, self.weights = reward, weights
        ders = self.grid.ders
        self.possible_agents = [d.name for d in ders]
        self.agents: list[str] = []
        scn = self.grid.loaded.scenario
        self.fmap = FeatureMap(LOCAL_SPEC, ders, None, tuple(scn.grid.voltage_limits))
        self._q_order = [self.possible_agents.index(n.split(".")[0]) for n in self.grid.layout.action_names]
        self._bus_names = [sig.bus(d.bus) for d in ders]
        self._curtail_names = [(sig.der(d.name, "p_avail_mw"), sig.der(d.name, "p_mw")) for d in ders]
        self._q_names = [sig.der(d.name, "q_mvar") for d in ders]
        self._ratings = np.array([d.s_mva for d in ders], float)
        self._obs_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (len(LOCAL_SPEC.features),), np.float32)
        self._act_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str) -> gym.spaces.Box:
        """Every agent's local observation space (the same Box)."""
        return self._obs_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str) -> gym.spaces.Box:
        """Every agent's reactive setpoint, a fraction of its rating in [-1, 1]."""
        return self._act_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Start a day (`options={'day': seed}` picks it, as `GridEnv.reset`)."""
        _, info = self.grid.reset(seed=seed, options=options)
        self._time = time_of_day(self.grid.inputs.times)
        self.agents = list(self.possible_agents)
        return self._observations(), {a: dict(info) for a in self.agents}

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        """Every agent's Q setpoint acts at the next step (a missing agent acts 0); solve and score it."""
        q = np.zeros(len(self.possible_agents), np.float32)
        for i, name in enumerate(self.possible_agents):
            if name in actions:
                q[i] = float(np.asarray(actions[name]).reshape(-1)[0])
        _, reward, terminated, truncated, info = self.grid.step(q[self._q_order])
        observations = self._observations()
        rewards = self._rewards(reward)
        agents = self.agents
        if terminated or truncated:
            self.agents = []
        return (observations, rewards, {a: terminated for a in agents}, {a: truncated for a in agents},
                {a: dict(info) for a in agents})

    def signals(self) -> dict[str, float]:
        """Every grid signal of the current step by name (`GridEnv.signals`)."""
        return self.grid.signals()

    def day_kpis(self) -> dict[str, float]:
        """The KPIs of the day so far (`GridEnv.day_kpis`)."""
        return self.grid.day_kpis()

    # -- internals --------------------------------------------------------------------------
    def _observations(self) -> dict[str, np.ndarray]:
        """Every agent's local features of the current step."""
        hour_sin, hour_cos = self._time[self.grid.t]
        values = {**self.grid.signals(), "time.hour_sin": hour_sin, "time.hour_cos": hour_cos}
        x = np.array([values[name] for name in self.fmap.names])
        features = self.fmap.features(x)
        return {name: features[i] for i, name in enumerate(self.possible_agents)}

    def _rewards(self, shared: float) -> dict[str, float]:
        """The shared reward for every agent, or each agent's local reward."""
        if self.reward_kind == "shared":
            return {a: float(shared) for a in self.possible_agents}
        w, values, n = self.weights, self.grid.signals(), len(self.possible_agents)
        lo, hi = self.grid.v_lo, self.grid.v_hi
        q_pu = reactive_pu(np.array([values[q] for q in self._q_names]), self._ratings)
        out = {}
        for name, bus, (avail, p), own_q in zip(self.possible_agents, self._bus_names, self._curtail_names, q_pu):
            excess = max(values[bus] - hi, lo - values[bus], 0.0)
            if np.isnan(values[bus]):
                excess = 0.0
            cost = (w.violation_count * (excess > 0.0) + w.violation_pu * excess + w.loss_per_kw * self.grid.loss_kw / n
                    + w.curtail_per_kw * (values[avail] - values[p]) * 1000.0 + w.reactive_per_pu * own_q)
            out[name] = -float(cost) if np.isfinite(cost) else -w.nonconverged
        return out
