"""The RL environment: gymnasium API, the co-simulation's physics and observation, seeding, events, engines."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest
from gymnasium.utils.env_checker import check_env

from controllers.base import time_features
from controllers.drl.env import DAY_KPIS, HELDOUT_BASE, GridEnv, heldout_days, time_of_day
from cosim.grid.engines import EngineUnsupported
from cosim.grid.feeders import load_feeder
from cosim.grid.model import DER, GridModel
from cosim.scenario.loader import load_scenario

from conftest import SCENARIOS

SCENARIO = SCENARIOS / "ieee33-pv-wind.yaml"


@pytest.fixture(scope="module")
def env() -> GridEnv:
    return GridEnv(SCENARIO)


def test_gymnasium_api(env):
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (len(env.layout.obs_names),)
    assert env.layout.action_names == ("pv1.q_set_mvar", "pv2.q_set_mvar", "pv3.q_set_mvar", "wt1.q_set_mvar")
    assert env.model.engine.name == "sweep" and env.engine_note == ""


def test_physics_and_observation_equal_pandapower(env):
    """Every 7th step: the env's voltages and losses are pandapower's for the same inputs and setpoints, and its
    observation is what a co-simulation controller reads by name."""
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=0)
    inputs, layout, loaded = env.inputs, env.layout, env.loaded
    scn = loaded.scenario
    ders = [DER(g.name, g.kind, g.bus, g.p_mw, g.rating_mva) for g in scn.generators]
    reference = GridModel(load_feeder(scn.grid.feeder), ders, "pandapower", scn.grid.line_max_i_ka)
    setpoints = np.zeros(len(env.ders))
    for t in range(0, 700):
        if t:
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            setpoints = layout.setpoints(action)  # chosen after step t-1, in force at step t
            obs, reward, terminated, truncated, info = env.step(action)
            assert np.isfinite(reward) and not terminated and not truncated
        if t % 7 == 0:  # the reference power flow is the slow part; every 7th step covers day and night
            ref = reference.step(inputs.load_scale[t], inputs.der_p_avail_mw[t], None, setpoints,
                                 inputs.native_pv_pu[t], inputs.native_wind_pu[t])
            signals = env.signals()
            vm = np.array([signals[f"bus.{b}.vm_pu"] for b in loaded.feeder.bus_labels])
            np.testing.assert_allclose(vm, ref.pf.vm_pu, atol=1e-6)
            assert env.loss_kw == pytest.approx(ref.pf.loss_mw * 1000, abs=1e-3)
            named = {**reference.signals(ref), **time_features(inputs.times[t], t)}
            np.testing.assert_allclose(obs, layout.obs_vector(named), atol=1e-5)


def test_sweep_and_lightsim2grid_give_the_same_episode(env):
    slow = GridEnv(SCENARIO, engine=None)
    assert slow.model.engine.name == "lightsim2grid"
    rng = np.random.default_rng(2)
    a, _ = env.reset(options={"day": 5})
    b, _ = slow.reset(options={"day": 5})
    for _ in range(30):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        a, ra, *_ = env.step(action)
        b, rb, *_ = slow.step(action)
        np.testing.assert_allclose(a, b, atol=1e-5)
        assert ra == pytest.approx(rb, abs=1e-4)


def test_seeded_days_are_reproducible_and_distinct(env):
    def episode(seed: int) -> tuple[int, np.ndarray]:
        obs, info = env.reset(seed=seed)
        trace = [obs]
        for _ in range(50):
            trace.append(env.step(np.full(4, 0.3, np.float32))[0])
        return info["day"], np.array(trace)

    day_a, first = episode(3)
    day_b, again = episode(3)
    day_c, other = episode(4)
    assert day_a == day_b and np.array_equal(first, again)
    assert day_c != day_a and not np.array_equal(first, other)
    assert day_a < HELDOUT_BASE and day_c < HELDOUT_BASE
    assert heldout_days(2) == [HELDOUT_BASE, HELDOUT_BASE + 1]


def test_training_disruptions_are_the_co_simulations_events():
    """`events_per_day` draws the co-simulation's dg_trip, load_step and cloud_transient events, and they act."""
    env = GridEnv(SCENARIO, events_per_day=12.0)
    env.reset(seed=11)
    kinds = {e.kind for e in env.schedule.on("physical")}
    assert kinds and kinds <= {"dg_trip", "load_step", "cloud_transient"}
    trips = [e for e in env.schedule.on("physical") if e.kind == "dg_trip"]
    steps, done, tripped = 0, False, []
    while not done:
        _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
        steps, done = steps + 1, terminated or truncated
        signals = env.signals()
        tripped += [signals[f"{name}.p_mw"] for e in trips if e.active(env.t) for name in e.targets]
    assert steps == env.n_steps - 1 and truncated
    assert set(DAY_KPIS) <= set(info["day_kpis"])
    if trips:
        assert tripped and max(tripped) == 0.0  # a tripped DER delivers nothing


def test_time_features_match_the_controller_interface():
    times = np.datetime64("2025-06-21T00:00:00") + np.arange(0, 86400, 397).astype("timedelta64[s]")
    expected = [[time_features(t, 0)["time.hour_sin"], time_features(t, 0)["time.hour_cos"]] for t in times]
    np.testing.assert_array_equal(time_of_day(times), expected)


def test_curtailment_actions_limit_active_power():
    env = GridEnv(SCENARIO, curtail=True)
    assert env.layout.action_names[4:] == ("pv1.p_limit_mw", "pv2.p_limit_mw", "pv3.p_limit_mw", "wt1.p_limit_mw")
    env.reset(options={"day": 1})
    for _ in range(720):  # to noon, PV limited to zero
        *_, info = env.step(np.array([0, 0, 0, 0, -1, -1, -1, 1], np.float32))
    signals = env.signals()
    assert max(signals[f"pv{i}.p_mw"] for i in (1, 2, 3)) == 0.0
    assert signals["pv1.p_avail_mw"] > 0 and env.day_kpis()["curtailed_energy_kwh"] > 0


def test_sweep_refuses_a_meshed_feeder_and_the_env_falls_back(tmp_path):
    feeder = load_feeder("ieee33")
    net = feeder.net
    pp.create_line_from_parameters(net, feeder.bus_index(8), feeder.bus_index(21), 1.0, 2.0, 2.0, 0.0, 0.4)
    with pytest.raises(EngineUnsupported, match="radial"):
        GridModel(feeder, [DER("pv1", "pv", 18, 1.0, 1.1)], engine="sweep")
    pp.to_json(net, str(tmp_path / "meshed.json"))
    (tmp_path / "meshed.yaml").write_text(  # a JSON feeder keeps pandapower's 0-based numbers
        "name: meshed\nclock: {duration: 1h, step: 15min}\ngrid: {feeder: meshed.json}\n"
        "generators:\n  - {name: pv1, kind: pv, bus: 17, p_mw: 1.0}\n")
    env = GridEnv(load_scenario(tmp_path / "meshed.yaml"))
    assert env.model.engine.name == "lightsim2grid" and "radial" in env.engine_note
