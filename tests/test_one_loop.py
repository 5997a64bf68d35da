"""One control loop: the mosaik run, the evaluation rollout and the RL environment give the same steps.

Each comparison runs a real mosaik co-simulation (`cosim.runner.run_scenario`) and the same
scenario, seed and controller without mosaik, with discrete setpoints (tap changer, capacitor
step) and every physical event kind active at some point of the day.
"""

from __future__ import annotations

import json

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest

from controllers.drl.env import GridEnv
from controllers.plugin import load_class
from controllers.rollout import rollout
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from cosim.validation import validate

CONTROLLER = '''
import math
from controllers.base import Controller


class Schedule(Controller):
    """Setpoints from the step number and what it sees: taps, capacitor, Q and a P limit."""

    def act(self, observation):
        k = int(observation["time.step"])
        out = {n: 0.3 * math.sin(0.5 * k + i) * d.s_mva for i, d in enumerate(self.info.ders)
               for n in [d.name + ".q_set_mvar"]}
        if "trafo.0.tap" in self.info.action_names:
            out["trafo.0.tap"] = (k // 3) % 5 - 2
            out["cap.0.step"] = k % 2
        v = observation.get("bus.3.vm_pu", float("nan"))
        if v == v and v > 1.0:  # feedback: the loop must see the same voltages
            out[self.info.ders[0].name + ".p_limit_mw"] = 0.5 * self.info.ders[0].p_mw
        return out
'''



def _results(out_dir):
    ts = pd.read_parquet(out_dir / "timeseries.parquet")
    return ts, json.loads((out_dir / "metrics.json").read_text())


def _same_kpis(a: dict, b: dict, rel: float) -> None:
    for key, value in b.items():
        if key in a and isinstance(value, float) and np.isfinite(value):
            assert a[key] == pytest.approx(value, rel=rel, abs=1e-9), key


def test_mosaik_run_and_rollout_agree_step_by_step(tmp_path, write_scenario):
    """example_simple (tap changer, shunt capacitor, trafo), every physical event kind, a feedback controller."""
    pp.to_json(pn.example_simple(), str(tmp_path / "simple.json"))
    (tmp_path / "ctrl.py").write_text(CONTROLLER, encoding="utf-8")
    path = write_scenario("""\
        name: loop
        seed: 5
        clock: {start: "2025-06-21T11:00:00", duration: 30min, step: 1min}
        grid: {feeder: simple.json}
        loads: {profile: residential, noise: 0.05}
        generators:
          - {name: pv1, kind: pv, bus: 3, p_mw: 2.0}
          - {name: pv2, kind: pv, bus: 5, p_mw: 1.5}
        controller: {kind: python, path: ctrl.py:Schedule}
        impact: {baseline: false}
        events:
          - {at: 2min, duration: 3min, kind: line_outage, line: 2}
          - {at: 6min, duration: 2min, kind: trafo_outage, trafo: 0}
          - {at: 9min, duration: 4min, kind: dg_trip, generator: pv2}
          - {at: 12min, duration: 5min, kind: load_step, bus: 6, factor: 1.5}
          - {at: 15min, duration: 6min, kind: cloud_transient, generator: "pv*", depth: 0.6}
        """)
    loaded = load_scenario(path)
    outcome = run_scenario(loaded, tmp_path / "run", assembly=validate(loaded))
    assert outcome.status == "ok", outcome.message
    ts, metrics = _results(tmp_path / "run")

    controller = load_class(tmp_path / "ctrl.py", "Schedule")()
    loop = rollout(validate(load_scenario(path)), controller)
    rows = pd.DataFrame(loop.rows, columns=loop.names)
    assert set(ts["trafo.0.tap"]) == {-2.0, -1.0, 0.0, 1.0, 2.0} and set(ts["cap.0.step"]) == {0.0, 1.0}
    assert ts["grid.converged"].eq(1).all()
    for column in loop.names:  # every grid signal, every step: NaN where de-energised in both
        np.testing.assert_allclose(rows[column], ts[column], rtol=1e-9, atol=1e-9, err_msg=column)
    assert rows["grid.unserved_p_mw"].max() > 0  # the outages cut load off
    _same_kpis(loop.kpis, metrics, rel=1e-9)


def test_mosaik_run_and_environment_agree_on_ieee33(write_scenario):
    """IEEE 33 on the sweep engine (env) against lightsim2grid (mosaik): physical events and a Q schedule."""
    ctrl_dir = write_scenario(CONTROLLER, "ctrl.py").parent
    path = write_scenario("""\
        name: loop33
        seed: 11
        clock: {start: "2025-06-21T10:00:00", duration: 40min, step: 1min}
        grid: {feeder: ieee33}
        loads: {profile: residential, noise: 0.03}
        generators:
          - {name: pv1, kind: pv, bus: 18, p_mw: 1.5}
          - {name: pv2, kind: pv, bus: 33, p_mw: 1.0}
          - {name: wt1, kind: wind, bus: 25, p_mw: 0.8}
        controller: {kind: python, path: ctrl.py:Schedule}
        impact: {baseline: false}
        events:
          - {at: 3min, duration: 5min, kind: line_outage, line: 25}
          - {at: 10min, duration: 6min, kind: dg_trip, generator: wt1}
          - {at: 18min, duration: 8min, kind: load_step, bus: [30, 31], factor: 1.6}
          - {at: 28min, duration: 6min, kind: cloud_transient, generator: "pv*", depth: 0.5}
        """)
    loaded = load_scenario(path)
    outcome = run_scenario(loaded, ctrl_dir / "run", assembly=validate(loaded))
    assert outcome.status == "ok", outcome.message
    ts, metrics = _results(ctrl_dir / "run")

    env = GridEnv(loaded, days=[loaded.scenario.seed], curtail=True)
    assert env.model.engine.name == "sweep"
    controller = load_class(ctrl_dir / "ctrl.py", "Schedule")()
    from controllers.registry import controller_info

    controller.setup(controller_info(loaded.scenario, env.model.signal_names))
    layout = env.layout
    low, high = np.asarray(layout.action_low), np.asarray(layout.action_high)
    env.reset()
    held = {n: (high[i] if n.endswith("p_limit_mw") else 0.0) for i, n in enumerate(layout.action_names)}
    vm = [c for c in ts.columns if c.startswith("bus.") and c.endswith(".vm_pu")]
    for k in range(loaded.scenario.clock.n_steps):
        row = dict(zip(env.model.signal_names, env._rows[k].tolist()))
        np.testing.assert_allclose([row[c] for c in vm], ts.loc[k, vm].to_numpy(float), atol=1e-6, err_msg=f"step {k}")
        assert row["grid.loss_kw"] == pytest.approx(ts.loc[k, "grid.loss_kw"], abs=1e-3)
        if k == loaded.scenario.clock.n_steps - 1:
            break
        held.update(controller.act({**row, "time.step": float(k)}))  # setpoints hold until replaced, as in a run
        action = 2.0 * (np.array([held[n] for n in layout.action_names]) - low) / (high - low) - 1.0
        *_, info = env.step(action.astype(np.float32))
    assert ts["grid.unserved_p_mw"].max() > 0 and ts["wt1.p_mw"].min() == 0.0
    _same_kpis(info["day_kpis"], metrics, rel=1e-5)
