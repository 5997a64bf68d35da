"""Train the per-DER actor by imitating the OPF oracle (DAgger: Ross, Gordon and Bagnell, AISTATS 2011).

The oracle (`controllers.baselines.opf`) knows the grid and the next step's inputs; the actor sees only
its DER's local features. Each round runs days of the per-DER environment, labels every DER at every
step with the reactive setpoint (as a fraction of its rating) the oracle chooses for the next step, and
fits the actor to all labels so far by least squares. In round r the oracle itself acts on a day with
probability 0.5^r, the actor on the others, so later rounds label the states the actor's own
setpoints lead to. The oracle's label depends only on the grid and the inputs, not on who acted, so
the labels of every round answer the same question. It is the offline-OPF-then-regression design of
local controllers (Karagiannopoulos et al., IEEE Trans. Smart Grid 10(6), 2019) with DAgger's rounds.

The actor sets Q only, so the oracle labels as the bound of a volt-var controller (`q_only`): P at
the available power, the voltage limits only (a line that PV overloads is not Q's to relieve).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from controllers.base import ControllerInfo, Truth
from controllers.baselines.opf import OPFOracle
from controllers.drl.checkpoint import MLP
from controllers.drl.per_der_env import PerDEREnv

CURVE_EXTRA = ("round", "oracle_acted", "fit_mse")  # learning-curve columns of this learner


@dataclass(frozen=True)
class Imitation:
    """Rounds of labelled days and the regression that follows each."""

    rounds: int = 5
    epochs: int = 30  # passes over all labels so far, after each round
    batch: int = 1024
    learning_rate: float = 1e-3
    margin: float = 0.005  # pu inside the voltage limits the oracle labels for, room for the actor's error


class Labeller:
    """The oracle of one day, re-bound at every reset: `label(t)` is every DER's Q / S for step t + 1."""

    def __init__(self, env: PerDEREnv, margin: float = Imitation.margin):
        scn = env.loaded.scenario
        self.oracle = OPFOracle(voltage_margin=margin, q_only=True)
        self.oracle.setup(ControllerInfo(scn.grid.feeder, scn.clock.step, (env.v_lo, env.v_hi), env.ders, (),
                                         truth=Truth(env.model, env.loop.inputs)))
        self.q_names = [f"{d.name}.q_set_mvar" for d in env.ders]
        self.rating = np.array([d.s_mva for d in env.ders])

    def label(self, t: int) -> np.ndarray:
        """(DERs, 1) in [-1, 1]; 0 (no reactive power) when the oracle falls back or has nothing to set."""
        out = self.oracle.act({"time.step": float(t)})
        q = np.array([out.get(n, 0.0) for n in self.q_names])
        return np.clip(q / self.rating, -1.0, 1.0)[:, None].astype(np.float32)


def actor_action(net: MLP, features: np.ndarray) -> np.ndarray:
    """The actor's deterministic setpoints for (DERs, features)."""
    with torch.no_grad():
        return net(torch.from_numpy(features)).numpy()


def fit(net: MLP, x: np.ndarray, y: np.ndarray, cfg: Imitation, rng: np.random.Generator) -> float:
    """Least-squares fit of `net` to labels `y` at features `x` (warm start); the last epoch's mean loss."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net.train()
    loss_sum = 0.0
    for _ in range(cfg.epochs):
        loss_sum = 0.0
        for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // cfg.batch)):
            i = torch.from_numpy(idx)
            loss = torch.mean((net(xt[i]) - yt[i]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
    net.eval()
    return loss_sum / len(x)


def imitate(env: PerDEREnv, net: MLP, steps: int, seed: int, cfg: Imitation = Imitation(),
            on_day: Callable[[dict], None] | None = None) -> list[dict]:
    """Train `net` in place over `cfg.rounds` rounds of about steps / rounds environment steps each; returns one
    learning-curve row per day (`on_day` sees each as it ends), with the oracle's share and the fit loss."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    rows: list[dict] = []
    done = 0
    env.reset(seed=seed)  # seeds the environment's own draws of layouts and days
    for r in range(cfg.rounds):
        until = steps * (r + 1) // cfg.rounds
        while done < until:
            if rows:
                env.reset()
            expert_acts = rng.random() < 0.5**r
            features, labeller = env.features, Labeller(env, cfg.margin)
            total, truncated, terminated = 0.0, False, False
            while not (truncated or terminated):
                label = labeller.label(env.t)
                xs.append(features.copy())
                ys.append(label)
                acts = label if expert_acts else actor_action(net, features)
                features, reward, terminated, truncated, info = env.step_all(acts)
                total += reward
                done += 1
            rows.append({"episode": len(rows) + 1, "timesteps": done, "day": info.get("day"), "return": total,
                         "round": r, "oracle_acted": expert_acts, **info.get("day_kpis", {})})
            if on_day is not None:
                on_day(rows[-1])
        rows[-1]["fit_mse"] = fit(net, np.concatenate(xs), np.concatenate(ys), cfg, rng)
    return rows
