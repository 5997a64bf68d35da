"""Batteries (`storage:`): state of charge, limits, power flow on every engine, KPIs, bad input, a real run."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

from controllers.base import Controller
from controllers.rollout import rollout
from cosim.assembly import assemble
from cosim.grid.feeders import load_feeder
from cosim.grid.model import DER, GridModel
from cosim.grid.storage import StorageUnit
from cosim.kernel import StepKernel
from cosim.scenario.loader import load_scenario
from tests.conftest import BASE

BATTERY = "storage:\n  - {name: bat1, bus: 18, p_mw: 0.5, e_mwh: 1.0, soc0: 0.5, efficiency: 0.9, soc_min: 0.1, soc_max: 0.9}\n"
DAY = BASE.replace("duration: 2h, step: 5min", "duration: 24h, step: 15min") + BATTERY


class Schedule(Controller):
    """Charge at 0.4 MW from 10:00 to 15:00, discharge at 0.5 MW from 18:00 (more than the SoC allows)."""

    def act(self, observation):
        hour = (observation["time.step"] * self.info.step_s / 3600.0) % 24
        p = 0.4 if 10 <= hour < 15 else (-0.5 if hour >= 18 else 0.0)
        return {"bat1.p_set_mw": p, "bat1.q_set_mvar": 0.3}


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    path = tmp_path_factory.mktemp("storage") / "day.yaml"
    path.write_text(DAY, encoding="utf-8")
    loaded = load_scenario(path)
    return rollout(assemble(loaded), Schedule())


def _col(result, name):
    return result.rows[:, result.names.index(name)]


def test_soc_change_equals_charged_times_eta_minus_discharged_over_eta(day):
    p, soc = _col(day, "bat1.p_mw"), _col(day, "bat1.soc")
    h = 0.25
    charged_mwh = p[p > 0].sum() * h  # by hand from the recorded terminal power
    discharged_mwh = -p[p < 0].sum() * h
    assert charged_mwh > 0.4 and discharged_mwh > 0.7  # the schedule filled and emptied it
    assert soc[-1] - 0.5 == pytest.approx((charged_mwh * 0.9 - discharged_mwh / 0.9) / 1.0, abs=1e-9)
    assert day.kpis["storage_charged_kwh"] == pytest.approx(charged_mwh * 1000)
    assert day.kpis["storage_discharged_kwh"] == pytest.approx(discharged_mwh * 1000)
    assert day.kpis["storage_soc_min"] == pytest.approx(soc.min())
    assert day.kpis["storage_soc_max"] == pytest.approx(soc.max())


def test_limits_hold_and_soc_limits_clip(day):
    p, q, soc = _col(day, "bat1.p_mw"), _col(day, "bat1.q_mvar"), _col(day, "bat1.soc")
    assert np.all(np.abs(p) <= 0.5 + 1e-12)
    assert np.all(p**2 + q**2 <= 0.5**2 + 1e-9)  # s_mva defaults to p_mw: Q takes what P leaves
    assert np.all((soc >= 0.1 - 1e-12) & (soc <= 0.9 + 1e-12))
    # 20 quarter-hours at 0.4 MW x 0.9 would add 1.8 MWh to a 1 MWh battery at 0.5: it stops at soc_max
    assert soc.max() == pytest.approx(0.9)
    assert soc[-1] == pytest.approx(0.1)  # the evening discharge empties it to soc_min, not below
    assert np.all(p[(soc >= 0.9 - 1e-12) & (np.roll(soc, 1) >= 0.9 - 1e-12)] <= 1e-12)  # full: no more charging


def test_energy_balance_accounts_for_storage(day):
    h = 0.25
    k = day.kpis
    loss = k["loss_energy_kwh"]
    supplied = k["import_energy_kwh"] + _col(day, "grid.gen_p_mw").sum() * h * 1000 + k["storage_discharged_kwh"]
    delivered = k["load_energy_kwh"] + k["export_energy_kwh"] + k["storage_charged_kwh"]
    assert supplied - delivered == pytest.approx(loss, rel=1e-6)  # power-flow conservation, step by step
    assert k["efficiency"] == pytest.approx(delivered / supplied)


@pytest.mark.parametrize("engine", ["pandapower", "lightsim2grid", "sweep"])
def test_power_flow_matches_pandapower_storage(engine):
    feeder = load_feeder("ieee33")
    units = [StorageUnit("bat1", 18, 0.6, 2.0, 0.5, 0.95, 0.1, 0.9, 0.8),
             StorageUnit("bat2", 30, 0.4, 1.0, 0.5, 0.95, 0.1, 0.9, 0.4)]
    model = GridModel(feeder, [DER("pv1", "pv", 18, 1.0, 1.1)], engine, storage=units, step_s=900)
    assert model.engine.name == engine, model.engine_note
    r = model.step(0.8, np.array([0.9]), storage_p_set=np.array([0.5, -0.3]), storage_q_set=np.array([-0.2, 0.1]))
    net = copy.deepcopy(feeder.net)  # an independent pandapower net: pandapower's own storage elements
    net.load["p_mw"] *= 0.8
    net.load["q_mvar"] *= 0.8
    pp.create_sgen(net, feeder.bus_index(18), p_mw=0.9)
    pp.create_storage(net, feeder.bus_index(18), p_mw=0.5, q_mvar=-0.2, max_e_mwh=2.0)
    pp.create_storage(net, feeder.bus_index(30), p_mw=-0.3, q_mvar=0.1, max_e_mwh=1.0)
    pp.runpp(net, tolerance_mva=1e-10)
    assert r.pf.converged
    np.testing.assert_allclose(r.pf.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-6)
    assert r.pf.loss_mw * 1000 == pytest.approx((net.res_line.pl_mw.sum()) * 1000, abs=1e-3)
    assert r.pf.ext_p_mw == pytest.approx(net.res_ext_grid.p_mw.sum(), abs=1e-6)


def test_trial_steps_leave_soc_and_reset_restores_it():
    model = GridModel(load_feeder("ieee33"), [], "sweep", storage=[StorageUnit("b", 18, 1.0, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0)],
                      step_s=3600)
    model.step(1.0, np.zeros(0), storage_p_set=np.array([0.3]))  # a trial (what the OPF oracle and MPC do)
    assert model.storage.soc[0] == 0.5
    kernel = StepKernel(model)
    kernel.setpoints.apply({"b.p_set_mw": 0.3})
    r = kernel.step(1.0, np.zeros(0), 1.0, 1.0)
    assert model.storage.soc[0] == pytest.approx(0.8)  # one hour at 0.3 MW, eta 1
    kernel.step(1.0, np.zeros(0), 1.0, 1.0)
    assert kernel.clipped(kernel.step(1.0, np.zeros(0), 1.0, 1.0)) == ["b.p_set_mw"]  # full: the setpoint is cut
    assert r.storage_p_mw[0] == pytest.approx(0.3)
    model.reset()
    assert model.storage.soc[0] == 0.5


BAD = {
    "soc0_outside": ("soc0: 0.5", "soc0: 0.95", "storage[0]", "soc0 0.95 is outside [soc_min, soc_max] = [0.1, 0.9]"),
    "soc_range": ("soc_min: 0.1", "soc_min: 0.9", "storage[0]", "soc_min 0.9 must be below soc_max 0.9"),
    "unknown_bus": ("bus: 18, p_mw: 0.5", "bus: 40, p_mw: 0.5", "storage[0].bus", "bus 40 does not exist on feeder ieee33"),
    "name_clash": ("name: bat1", "name: pv1", "storage[0].name", "storage name 'pv1' is also the name of generators[0]"),
    "negative_energy": ("e_mwh: 1.0", "e_mwh: -1.0", "storage[0].e_mwh", "greater than 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_storage_input_exit_2(case, write_scenario, cli):
    old, new, field, words = BAD[case]
    path = write_scenario((BASE + BATTERY).replace(old, new, 1))
    code, output, _ = cli("validate", path)
    text = " ".join(output.split())
    assert code == 2, output
    assert path.name in text.replace(" ", "") and f"field {field}" in text and "line 10" in text
    assert words in text and "Traceback" not in output


CHARGER = '''
from controllers.base import Controller

class Charger(Controller):
    def act(self, observation):
        assert "bat1.soc" in observation and self.info.storage[0].name == "bat1"
        return {"bat1.p_set_mw": 0.1, "bat1.q_set_mvar": -0.1}
'''


def test_cosim_run_records_battery_signals(write_scenario, tmp_path, cli):
    (tmp_path / "charger.py").write_text(CHARGER, encoding="utf-8")
    path = write_scenario(BASE + BATTERY + "controller: {kind: python, path: charger.py:Charger}\n")
    code, output, _ = cli("run", path, "--out", tmp_path / "out")
    assert code == 0, output
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert {"bat1.p_mw", "bat1.q_mvar", "bat1.soc"} <= set(ts.columns)
    # the first step runs before any setpoint arrives (one-step delay); then 0.1 MW every 5 min at eta 0.9
    np.testing.assert_allclose(ts["bat1.p_mw"].to_numpy()[1:], 0.1)
    np.testing.assert_allclose(ts["bat1.q_mvar"].to_numpy()[1:], -0.1)
    assert ts["bat1.soc"].iloc[-1] == pytest.approx(0.5 + 23 * 0.1 * 0.9 / 12)
    import json
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["storage_charged_kwh"] == pytest.approx(23 * 100 / 12)


def test_environment_drives_batteries_when_asked(write_scenario):
    from controllers.drl.env import GridEnv

    path = write_scenario(BASE + BATTERY)
    idle = GridEnv(path)
    assert "bat1.p_set_mw" not in idle.layout.action_names
    env = GridEnv(path, batteries=True)
    assert env.layout.action_names[-1] == "bat1.p_set_mw" and "bat1.soc" in env.layout.obs_names
    env.reset(options={"day": 1})
    action = np.zeros(env.action_space.shape, np.float32)
    action[-1] = 1.0  # full charge: 0.5 MW
    for _ in range(3):  # the first action acts at the next step
        env.step(action)
    s = env.signals()
    assert s["bat1.p_mw"] == pytest.approx(0.5)
    assert s["bat1.soc"] == pytest.approx(0.5 + 3 * 0.5 * 0.9 / 12 / 1.0)
    env.reset(options={"day": 1})
    assert env.signals()["bat1.soc"] == pytest.approx(0.5)
