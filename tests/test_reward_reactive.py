"""The reactive reward term (`reactive_per_pu`, MAPDN's q loss): |Q| per unit of each DER's own rating, in every env."""

from __future__ import annotations

import json

import numpy as np
import pytest

from controllers.drl.env import GridEnv, RewardWeights
from controllers.drl.marl_env import GridParallelEnv
from controllers.drl.per_der_env import PerDEREnv
from controllers.drl.sources import open_source

# At midnight PV delivers no P, and wind at most its 0.8 MW nameplate, so both DERs can deliver
# the reactive setpoints below in full: pv1 0.4 x 1.25 = 0.5 Mvar, wt1 -0.5 x 1.0 = -0.5 Mvar.
SCENARIO = """\
name: q
seed: 7
clock: {start: "2025-06-21T00:00:00", duration: 1h, step: 5min}
grid: {feeder: ieee33}
loads: {profile: residential, noise: 0.03}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 1.0, s_mva: 1.25}
  - {name: wt1, kind: wind, bus: 25, p_mw: 0.8, s_mva: 1.0}
"""
ACTION = {"pv1": 0.4, "wt1": -0.5}
Q_MVAR = {"pv1": 0.5, "wt1": -0.5}
WEIGHT = 0.5  # actions are float32, hence the 1e-6 tolerances
# 0.5 x (|0.5| / 1.25 + |-0.5| / 1.0) = 0.5 x (0.4 + 0.5)
EXPECTED = 0.45


@pytest.fixture
def scenario(write_scenario):
    return write_scenario(SCENARIO)


def _first_step(env: GridEnv) -> tuple[float, dict[str, float]]:
    """The reward and signals of the first step of day 3 with `ACTION`."""
    env.reset(options={"day": 3})
    _, reward, *_ = env.step(np.array([ACTION[n.split(".")[0]] for n in env.layout.action_names], np.float32))
    return reward, env.signals()


def test_reactive_term_costs_q_per_unit_of_each_ders_rating(scenario):
    base, base_signals = _first_step(GridEnv(scenario))
    charged, signals = _first_step(GridEnv(scenario, weights=RewardWeights(reactive_per_pu=WEIGHT)))
    for name, q in Q_MVAR.items():
        assert signals[f"{name}.q_mvar"] == pytest.approx(q, abs=1e-6)
    assert signals == base_signals  # the term changes the reward, not the physics
    assert base - charged == pytest.approx(EXPECTED, abs=1e-6)


def test_reactive_term_in_the_per_der_env(scenario):
    """Every DER (learner and the shared-policy others) sets Q = 0.4 of its rating: 0.5 x (0.4 + 0.4) = 0.4."""
    def first_step(weights: RewardWeights) -> float:
        env = PerDEREnv(open_source(scenario), weights=weights)
        env.reset(seed=0, options={"day": 3})
        env.others = lambda features: np.full((len(features), 1), 0.4, np.float32)
        return env.step(np.array([0.4], np.float32))[1]

    charged = first_step(RewardWeights(reactive_per_pu=WEIGHT))
    assert first_step(RewardWeights()) - charged == pytest.approx(0.4, abs=1e-6)


def test_local_marl_reward_charges_each_agent_its_own_q(scenario):
    def first_step(weights: RewardWeights) -> dict[str, float]:
        env = GridParallelEnv(scenario, reward="local", weights=weights)
        env.reset(seed=0, options={"day": 3})
        return env.step({n: np.array([a], np.float32) for n, a in ACTION.items()})[1]

    base, charged = first_step(RewardWeights()), first_step(RewardWeights(reactive_per_pu=WEIGHT))
    assert base["pv1"] - charged["pv1"] == pytest.approx(WEIGHT * 0.4, abs=1e-6)  # 0.5 Mvar / 1.25 MVA
    assert base["wt1"] - charged["wt1"] == pytest.approx(WEIGHT * 0.5, abs=1e-6)  # 0.5 Mvar / 1.0 MVA


def test_cli_train_records_the_reactive_weight_and_refuses_a_negative_one(cli, scenario, tmp_path):
    code, output, _ = cli("train", scenario, "--steps", "40", "--reactive-weight", "0.5", "--out", tmp_path / "o", "-q")
    assert code == 0, output
    meta = json.loads((tmp_path / "o" / "policy.json").read_text())
    assert meta["training"]["reward"]["reactive_per_pu"] == 0.5
    code, output, _ = cli("train", scenario, "--reactive-weight", "-1", "--out", tmp_path / "bad", "-q")
    assert code == 2 and "--reactive-weight" in output and "Traceback" not in output
