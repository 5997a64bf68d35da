"""Consensus: DER agents agree on reactive setpoints by distributed online dual ascent on LinDistFlow.

Problem (linearised on the feeder, `_lindistflow.py`): minimise 1/2 sum_i q_i^2 subject to
v_lo <= v_j <= v_hi at every DER bus j, |q_i| <= capability * S_i, with dv = X_DD dq (X_DD: the
shared-path reactance between DER buses, pu on 1 MVA, q in Mvar).

Agent j knows its own bus, rating and row X_Dj; it owns the duals of its own bus's two limits,
lambda_j^+ and lambda_j^-, and broadcasts mu_j = lambda_j^+ - lambda_j^- to all other agents
(all-to-all) as the message signal `msg.<der>.mu`. Each step, every agent
  1. reads the messages sent one step earlier (the channel delivers step k's messages at k+1),
  2. sets q_i = clip(-sum_j X_ij mu_j, +-q_max_i) (the primal minimiser of the Lagrangian),
  3. updates its duals from its own measured voltage, lambda^+ <- max(0, lambda^+ + a (v - v_hi)),
     lambda^- <- max(0, lambda^- + a (v_lo - v)), and sends the new mu_j.
This is the feedback-based (measured, not predicted, voltages) asynchronous dual ascent: one
message exchange per step, warm-started, so the agents track the optimum as loads and PV move.
The step a = `step_size` / lambda_max(X_DD X_DD^T) keeps the dual iteration stable.

Messages pass a `MeasurementPath` (the same transform as the measurement channel: delay, drop,
fdi, ... as `Attack`s on `msg.<der>.mu` signals); a lost message leaves the last received value.
Params: `capability` (share of S, default 0.44 as IEEE 1547 Cat. B), `margin` (pu inside the
limits, default 0.005), `step_size` (default 0.5).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from controllers.base import Controller, ControllerError, ControllerInfo
from controllers.baselines._lindistflow import lindistflow
from cosim import signals as sig
from cosim.events.build import build_schedule
from cosim.events.measurement import MeasurementPath
from cosim.events.paths import message_path


class Consensus(Controller):
    """Per-DER agents exchanging duals over a channel; see the module docstring for the algorithm."""

    uses_scenario = True  # the feeder's impedances and the events on its messages (never the run's state)
    messages = ("mu",)

    def __init__(self, capability: float = 0.44, margin: float = 0.005, step_size: float = 0.5):
        if not 0.0 < capability <= 1.0:
            raise ValueError(f"capability must be in (0, 1], got {capability}")
        if not 0.0 < step_size <= 1.9:
            raise ValueError(f"step_size must be in (0, 1.9] (stability of the dual ascent), got {step_size}")
        self.capability, self.margin, self.step_size = float(capability), float(margin), float(step_size)
        self.channel = MeasurementPath([])  # agent-to-agent messages; a run puts the events on msg.* signals here

    def setup(self, info: ControllerInfo) -> None:
        super().setup(info)
        if info.scenario is None:
            raise ControllerError("consensus needs the scenario's feeder (info.scenario), which a run provides")
        loaded = info.scenario
        feeder = loaded.feeder
        pos = [feeder.net.bus.index.get_loc(feeder.bus_index(d.bus)) for d in info.ders]
        self.setup_agents(lindistflow(feeder).X[np.ix_(pos, pos)])
        schedule, _ = build_schedule(loaded.scenario, feeder, loaded.base_dir)
        self.channel = message_path(loaded.scenario, schedule)

    def setup_agents(self, X: np.ndarray) -> None:
        """Reset every agent for DER-bus reactance matrix `X` (pu, DERs in `info.ders` order)."""
        self.X = np.asarray(X, float)
        lam = np.linalg.eigvalsh(self.X @ self.X.T).max() if len(self.X) else 1.0
        self.alpha = self.step_size / lam
        self.qmax = np.asarray([self.capability * d.s_mva for d in self.info.ders], float)
        self.lo, self.hi = self.info.voltage_limits[0] + self.margin, self.info.voltage_limits[1] - self.margin
        n = len(self.info.ders)
        self.up, self.down = np.zeros(n), np.zeros(n)
        self.names = [sig.message(d.name, "mu") for d in self.info.ders]
        self.outbox = dict.fromkeys(self.names, 0.0)
        self.inbox = dict(self.outbox)
        self.k = 0

    def exchange(self) -> np.ndarray:
        """Deliver last step's messages through the channel; the mu each agent sees (lost ones: last received)."""
        seen, _ = self.channel.step(self.k, dict(self.outbox))
        for name in self.names:
            if math.isfinite(seen[name]):
                self.inbox[name] = seen[name]
        self.k += 1
        return np.asarray([self.inbox[n] for n in self.names])

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        mu_seen = self.exchange()
        out = {}
        for i, der in enumerate(self.info.ders):
            mu = mu_seen.copy()
            mu[i] = self.up[i] - self.down[i]  # an agent knows its own dual without a message
            q = float(np.clip(-self.X[i] @ mu, -self.qmax[i], self.qmax[i]))
            out[f"{der.name}.q_set_mvar"] = q
            v = observation.get(sig.bus(der.bus), math.nan)
            if math.isfinite(v):  # no measurement: the duals stay
                self.up[i] = max(0.0, self.up[i] + self.alpha * (v - self.hi))
                self.down[i] = max(0.0, self.down[i] + self.alpha * (self.lo - v))
            self.outbox[self.names[i]] = self.up[i] - self.down[i]
        return out


CONTROLLER = Consensus
