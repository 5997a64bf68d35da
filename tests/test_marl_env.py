"""PettingZoo parallel environment: the library's API test, and the same grid as `GridEnv` under zero actions."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from controllers.drl.env import GridEnv, RewardWeights
from controllers.drl.marl_env import GridParallelEnv

from conftest import BASE


@pytest.fixture
def scenario(write_scenario):
    return write_scenario(BASE)


def test_pettingzoo_parallel_api(scenario):
    parallel_api_test(GridParallelEnv(scenario), num_cycles=30)


def test_all_agents_acting_zero_give_grid_envs_zero_action_day(scenario):
    marl, single = GridParallelEnv(scenario), GridEnv(scenario)
    marl.reset(seed=0, options={"day": 42})
    single.reset(seed=0, options={"day": 42})
    zero = np.zeros(single.action_space.shape, np.float32)
    steps = 0
    while marl.agents:
        marl.step({a: np.zeros(1, np.float32) for a in marl.agents})
        single.step(zero)
        names = sorted(single.signals())
        np.testing.assert_array_equal([marl.signals()[n] for n in names], [single.signals()[n] for n in names])
        steps += 1
    assert steps == single.n_steps - 1 and marl.day_kpis() == single.day_kpis()


def test_observation_is_local_and_action_is_q_as_a_fraction_of_rating(scenario):
    env = GridParallelEnv(scenario)
    env.reset(seed=0, options={"day": 1})
    obs, *_ = env.step({"pv1": np.array([0.5], np.float32), "wt1": np.array([-0.25], np.float32)})
    s = env.signals()
    pv1, wt1 = env.grid.ders
    assert s["pv1.q_mvar"] == pytest.approx(0.5 * pv1.s_mva) and s["wt1.q_mvar"] == pytest.approx(-0.25 * wt1.s_mva)
    # features: (V - 1.0) / 0.05 for limits 0.95..1.05; powers per unit of the DER's own rating
    assert obs["pv1"][:4] == pytest.approx([(s["bus.18.vm_pu"] - 1.0) / 0.05, s["pv1.p_avail_mw"] / pv1.s_mva,
                                            s["pv1.p_mw"] / pv1.s_mva, 0.5], abs=1e-6)
    assert obs["wt1"][0] == pytest.approx((s["bus.25.vm_pu"] - 1.0) / 0.05, abs=1e-6)


def test_local_reward_charges_own_violations_and_a_share_of_losses(scenario):
    w = RewardWeights()
    env = GridParallelEnv(scenario, reward="local", weights=w)
    env.reset(seed=0, options={"day": 1})
    _, rewards, *_ = env.step({"pv1": np.array([1.0], np.float32), "wt1": np.array([0.0], np.float32)})
    s = env.signals()
    for d in env.grid.ders:
        v = s[f"bus.{d.bus}.vm_pu"]
        excess = max(v - 1.05, 0.95 - v, 0.0)
        cost = (w.violation_count * (excess > 0) + w.violation_pu * excess + w.loss_per_kw * s["grid.loss_kw"] / 2
                + w.curtail_per_kw * (s[f"{d.name}.p_avail_mw"] - s[f"{d.name}.p_mw"]) * 1000.0)
        assert rewards[d.name] == pytest.approx(-cost, rel=1e-9)


def test_unknown_reward_kind_is_refused(scenario):
    with pytest.raises(ValueError, match="reward must be one of shared, local"):
        GridParallelEnv(scenario, reward="team")
