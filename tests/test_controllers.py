"""The controller interface and the shipped baselines, on real power flows and real mosaik worlds."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from controllers.base import ControllerInfo, DERInfo, Truth, time_features
from controllers.baselines.opf import OPFOracle
from controllers.baselines.droop import VoltVar
from controllers.baselines.volt_watt import VoltWatt
from controllers.registry import controller_info
from cosim.grid.feeders import load_feeder
from cosim.grid.model import DER, GridModel
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from cosim.scenario.schema import Controller as ControllerBlock
from cosim.assembly import assemble
from tests.conftest import REPO, SCENARIOS

PV = DERInfo("pv1", "pv", 18, 2.0, 2.5)

SHORT = """\
name: short
seed: 7
clock: {start: "2025-06-21T10:00:00", duration: 1h, step: 5min}
grid: {feeder: ieee33}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 1.0}
"""

CTRL_FILE = """\
import math
from controllers.base import Controller


class Ramp(Controller):
    def act(self, observation):
        return {"pv1.q_set_mvar": -0.01 * observation["time.step"]}


class Flaky(Ramp):
    def act(self, observation):
        k = int(observation["time.step"])
        if k == 3:
            return {"pv1.q_set_mvar": math.nan, "pv9.q_set_mvar": 0.1, "pv1.p_limit_mw": "high"}
        if k == 5:
            raise ZeroDivisionError("oops")
        return super().act(observation)
"""


def _info(*ders: DERInfo) -> ControllerInfo:
    return ControllerInfo("ieee33", 60.0, (0.95, 1.05), ders, ("bus.18.vm_pu",))


def _set_up(controller, *ders: DERInfo):
    controller.setup(_info(*ders or (PV,)))
    return controller


@pytest.mark.parametrize("vm, q_fraction", [(1.08, -0.44), (1.12, -0.44), (1.05, -0.22), (1.0, 0.0), (1.02, 0.0),
                                            (0.98, 0.0), (0.95, 0.22), (0.92, 0.44), (0.85, 0.44)])
def test_volt_var_follows_ieee1547_category_b(vm, q_fraction):
    ctrl = _set_up(VoltVar(gain=1.0))
    out = ctrl.act({"bus.18.vm_pu": vm})
    assert set(out) == {"pv1.q_set_mvar"}  # reactive power only, from its own bus
    # 1 - 1e-12 of the way in one 1-min step (5 s response time)
    assert out["pv1.q_set_mvar"] == pytest.approx(q_fraction * PV.s_mva, abs=1e-9)  # % of nameplate apparent power


def test_volt_var_default_gain_approaches_the_curve_geometrically():
    ctrl = _set_up(VoltVar())
    qs = [ctrl.act({"bus.18.vm_pu": 1.08})["pv1.q_set_mvar"] for _ in range(30)]
    target = -0.44 * PV.s_mva
    assert qs[0] == pytest.approx(target / 2)
    assert qs[1] == pytest.approx(target * 3 / 4)
    assert qs[-1] == pytest.approx(target, rel=1e-6)


def test_volt_var_holds_when_its_voltage_is_missing():
    ctrl = _set_up(VoltVar(gain=1.0))
    assert ctrl.act({"bus.18.vm_pu": math.nan}) == {}
    assert ctrl.act({"bus.5.vm_pu": 1.1}) == {}  # another bus: a local controller ignores it


def test_volt_watt_curtails_between_106_and_110():
    ctrl = _set_up(VoltWatt(gain=1.0))
    for vm, fraction in [(1.0, 1.0), (1.06, 1.0), (1.08, 0.6), (1.10, 0.2), (1.2, 0.2)]:
        out = ctrl.act({"bus.18.vm_pu": vm})
        assert out == {"pv1.p_limit_mw": pytest.approx(fraction * PV.p_mw)}


def test_configurable_points_and_bad_curves():
    ctrl = _set_up(VoltVar(v=[0.9, 1.0, 1.1], q=[0.3, 0.0, -0.3], gain=1.0))
    assert ctrl.act({"bus.18.vm_pu": 1.05})["pv1.q_set_mvar"] == pytest.approx(-0.15 * PV.s_mva)
    with pytest.raises(ValueError, match="increase strictly"):
        VoltVar(v=[1.0, 0.9], q=[0, 0])
    with pytest.raises(ValueError, match="same length"):
        VoltWatt(v=[1.06, 1.1], p=[1.0])
    with pytest.raises(ValueError, match="gain"):
        VoltVar(gain=0)


def test_positive_q_injects_and_raises_voltage():
    """Sign convention of q_set_mvar: positive injects (generator convention), so it raises the voltage."""
    model = GridModel(load_feeder("ieee33"), [DER("pv1", "pv", 18, 1.0, 1.1)])
    load = np.ones(len(model.load_p_nom))
    v = {q: model.signals(model.step(load, np.array([0.5]), None, np.array([q])))["bus.18.vm_pu"] for q in (-0.3, 0, 0.3)}
    assert v[-0.3] < v[0] < v[0.3]


def test_capability_clips_every_setpoint():
    model = GridModel(load_feeder("ieee33"), [DER("a", "pv", 18, 1.0, 1.0), DER("b", "pv", 25, 2.0, 2.5)])
    p, q = model.capability(np.array([0.8, 2.0]), np.array([5.0, 1.5]), np.array([0.9, -3.0]))
    assert p.tolist() == [0.8, 1.5]  # P <= available and <= limit
    assert q[0] == pytest.approx(0.6) and q[1] == pytest.approx(-2.0)  # |S| <= rating: sqrt(1 - .64), sqrt(6.25 - 2.25)
    p, q = model.capability(np.array([0.8, 2.0]), np.array([-1.0, np.inf]), np.array([0.0, 0.0]))
    assert p.tolist() == [0.0, 2.0]  # a negative limit means no export; no limit means all available power
    r = model.step(np.ones(len(model.load_p_nom)), np.array([0.8, 2.0]), np.array([5.0, 1.5]), np.array([0.9, -3.0]))
    assert r.der_p_mw.tolist() == [0.8, 1.5] and np.hypot(r.der_p_mw, r.der_q_mvar) == pytest.approx([1.0, 2.5])


def test_time_features():
    noon = time_features(np.datetime64("2025-06-21T12:00:00"), 7)
    assert noon == pytest.approx({"time.hour_sin": 0.0, "time.hour_cos": -1.0, "time.step": 7.0}, abs=1e-12)
    six = time_features(np.datetime64("2025-06-21T06:00:00"), 0)
    assert six["time.hour_sin"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- in the co-simulation

def _run(path, out, controller: dict | None = None):
    loaded = load_scenario(path)
    if controller is not None:
        loaded.scenario.controller = ControllerBlock.model_validate(controller)
    outcome = run_scenario(loaded, out)
    assert outcome.status == "ok", outcome.message
    return outcome, pd.read_parquet(out / "timeseries.parquet")


def test_droop_pulls_the_pv_wind_over_voltage_down(tmp_path):
    none, ts_none = _run(SCENARIOS / "ieee33-pv-wind.yaml", tmp_path / "none")
    droop, ts = _run(SCENARIOS / "ieee33-pv-wind.yaml", tmp_path / "droop", {"kind": "droop"})
    assert not any(c.startswith("ctrl.") for c in ts_none)  # kind none: no controller in the world
    assert droop.metrics["vm_max_pu"] < none.metrics["vm_max_pu"] - 0.01
    assert droop.metrics["voltage_violation_bus_minutes"] < 0.5 * none.metrics["voltage_violation_bus_minutes"]
    noon = ts["time"].dt.hour == 12
    assert ts.loc[noon, "pv1.q_mvar"].median() < -0.3  # absorbing at noon
    # local rule check: the setpoint moves halfway from the last one towards curve(own voltage)
    curve = np.interp(ts["bus.18.vm_pu"], [0.92, 0.98, 1.02, 1.08], [0.44, 0, 0, -0.44]) * 2.2
    q = ts["ctrl.pv1.q_set_mvar"].to_numpy()
    assert q[1:] == pytest.approx(q[:-1] + 0.5 * (curve[1:] - q[:-1]), abs=1e-9)


def test_setpoints_reach_the_grid_one_step_later(tmp_path, write_scenario):
    ctrl = write_scenario(CTRL_FILE, "ctrls.py")
    path = write_scenario(SHORT + f"controller: {{kind: python, path: {ctrl.name}:Ramp}}\n")
    _, ts = _run(path, tmp_path / "r")
    issued = ts["ctrl.pv1.q_set_mvar"].to_numpy()
    assert issued.tolist() == pytest.approx([-0.01 * k for k in range(len(ts))])
    applied = ts["pv1.q_mvar"].to_numpy()
    assert applied[0] == 0.0  # nothing issued before the first step
    assert applied[1:] == pytest.approx(issued[:-1])


def test_bad_actions_are_events_and_the_last_setpoint_holds(tmp_path, write_scenario, caplog):
    ctrl = write_scenario(CTRL_FILE, "ctrls.py")
    path = write_scenario(SHORT + f"controller: {{kind: python, path: {ctrl.name}:Flaky}}\n")
    _, ts = _run(path, tmp_path / "f")
    q = ts["ctrl.pv1.q_set_mvar"].to_numpy()
    assert q[3] == q[2] == pytest.approx(-0.02) and q[5] == q[4] == pytest.approx(-0.04) and q[6] == pytest.approx(-0.06)
    assert ts["pv1.q_mvar"].iloc[4] == pytest.approx(-0.02)  # the held value reached the grid
    events = pd.read_csv(tmp_path / "f" / "events.csv")
    rows = set(zip(events["start"], events["kind"], events["target"]))
    assert rows == {("2025-06-21T10:15:00", "controller_error", "pv1.q_set_mvar"),  # NaN
                    ("2025-06-21T10:15:00", "controller_error", "pv9.q_set_mvar"),  # unknown name
                    ("2025-06-21T10:15:00", "controller_error", "pv1.p_limit_mw"),  # not a number
                    ("2025-06-21T10:25:00", "controller_error", "act")}  # raised
    assert "act raised ZeroDivisionError: oops" in caplog.text


def test_opf_is_never_worse_than_doing_nothing(tmp_path):
    path = SCENARIOS / "regression" / "ieee33-noon-overvoltage.yaml"
    none, a = _run(path, tmp_path / "none")
    opf, b = _run(path, tmp_path / "opf", {"kind": "opf"})
    vm_cols = [c for c in a if c.startswith("bus.") and c.endswith(".vm_pu")]
    va, vb = a[vm_cols].to_numpy(), b[vm_cols].to_numpy()
    viol_a = ((va > 1.05) | (va < 0.95)).sum(axis=1)
    viol_b = ((vb > 1.05) | (vb < 0.95)).sum(axis=1)
    assert (viol_b <= viol_a).all() and viol_b[1:].sum() == 0  # from step 1 on (setpoints act a step late)
    ders = ["pv1", "pv2", "pv3", "wt1"]
    cost_b = b["grid.loss_kw"] + sum(b[f"{d}.p_avail_mw"] - b[f"{d}.p_mw"] for d in ders) * 1000
    feasible = ((va < 1.049) & (va > 0.951)).all(axis=1)  # doing nothing was within the oracle's limits
    assert feasible.sum() > 5
    assert (cost_b[feasible] <= a["grid.loss_kw"][feasible] + 1e-3).all()
    assert (b["grid.loss_kw"][feasible] <= a["grid.loss_kw"][feasible] + 1e-3).all()
    assert opf.metrics["voltage_violation_bus_minutes"] < none.metrics["voltage_violation_bus_minutes"] / 10


def test_example_user_controller_runs(tmp_path):
    outcome, ts = _run(REPO / "scenarios" / "examples" / "ieee33-my-ctrl.yaml", tmp_path / "x")
    assert ts["ctrl.pv1.q_set_mvar"].min() < 0 and outcome.metrics["vm_max_pu"] < 1.08


def test_opf_falls_back_to_doing_nothing_and_says_so(monkeypatch):
    asm = assemble(load_scenario(SCENARIOS / "regression" / "ieee33-noon-overvoltage.yaml"))
    oracle = OPFOracle()
    oracle.setup(controller_info(asm.loaded.scenario, asm.model.signal_names, Truth(asm.model, asm.inputs)))
    events = []
    oracle._event_sink = lambda kind, target: events.append((kind, target))
    solved = oracle.act({"time.step": 30.0})
    assert events == [] and min(v for k, v in solved.items() if k.endswith("q_set_mvar")) < -0.1
    # a solver that wanders off to full reactive injection at noon: worse than doing nothing
    monkeypatch.setattr("controllers.baselines.opf.minimize", lambda fun, x0, **kw: SimpleNamespace(x=np.r_[x0[:4], np.ones(4), 0.0]))
    out = oracle.act({"time.step": 30.0})
    assert events == [("opf_fallback", "opf")]
    assert out == {"pv1.p_limit_mw": 2.0, "pv1.q_set_mvar": 0.0, "pv2.p_limit_mw": 1.5, "pv2.q_set_mvar": 0.0,
                   "pv3.p_limit_mw": 1.5, "pv3.q_set_mvar": 0.0, "wt1.p_limit_mw": 1.2, "wt1.q_set_mvar": 0.0}


def test_opf_q_only_keeps_every_p_and_holds_the_voltages_an_overloaded_line_cannot(tmp_path):
    # a line rating the PV export at noon breaks: the full oracle curtails to relieve it; the Q-only bound
    # (volt-var's) cannot, and still brings every voltage within limits with Q alone
    path = tmp_path / "tight.yaml"
    text = (SCENARIOS / "regression" / "ieee33-noon-overvoltage.yaml").read_text()
    path.write_text(text.replace("line_max_i_ka: 0.4", "line_max_i_ka: 0.06"))
    asm = assemble(load_scenario(path))
    info = controller_info(asm.loaded.scenario, asm.model.signal_names, Truth(asm.model, asm.inputs))
    nameplate = {f"{d.name}.p_limit_mw": d.p_mw for d in info.ders}
    full, volt_var = OPFOracle(), OPFOracle(q_only=True)
    for oracle in (full, volt_var):
        oracle.setup(info)
    k, inp = 31, asm.inputs  # the setpoints of step 30 act at step 31
    flow = lambda q=None: asm.model.step(inp.load_scale[k], inp.der_p_avail_mw[k], None, q,  # noqa: E731
                                         inp.native_pv_pu[k], inp.native_wind_pu[k]).pf
    nothing = flow()
    assert np.nanmax(nothing.line_loading_pct) > 100 and np.nanmax(nothing.vm_pu) > 1.06
    curtailed = full.act({"time.step": 30.0})
    assert any(curtailed[n] < p - 1e-3 for n, p in nameplate.items())
    out = volt_var.act({"time.step": 30.0})
    assert {n: out[n] for n in nameplate} == nameplate
    pf = flow(np.array([out[f"{d.name}.q_set_mvar"] for d in info.ders]))
    assert np.nanmax(pf.vm_pu) <= 1.05 - 0.001 + 1e-4 and np.nanmax(pf.line_loading_pct) > 100
