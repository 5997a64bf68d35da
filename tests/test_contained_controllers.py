"""Hostile controllers are contained: SystemExit, KeyboardInterrupt, a poisoned return value, a call over budget.

A real run (IEEE 33, mosaik) with a plug-in that turns hostile on chosen steps must complete,
record a `controller_error` event on exactly those steps and keep the last valid setpoint; the
time budget is checked on the controller simulator itself with a call that blocks until released.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from controllers.base import Controller, ControllerInfo
from cosim.eventlog import EventLog
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from cosim.sims.controller import ControllerSim
from tests.conftest import BASE

HOSTILE = """\
import sys

from controllers.base import Controller


class Poisoned(dict):
    def items(self):
        raise RuntimeError("items exploded")


class Hostile(Controller):
    def act(self, observation):
        step = int(observation["time.step"])
        if step == 3:
            sys.exit(5)
        if step == 5:
            raise KeyboardInterrupt
        if step == 7:
            return Poisoned({"pv1.q_set_mvar": 0.3})
        return {"pv1.q_set_mvar": 0.1 * (step % 2)}
"""


def test_hostile_steps_are_contained_and_recorded(tmp_path, write_scenario):
    (tmp_path / "hostile.py").write_text(HOSTILE, encoding="utf-8")
    path = write_scenario(BASE + "controller: {kind: python, path: hostile.py:Hostile}\n")
    outcome = run_scenario(load_scenario(path), tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    assert outcome.metrics["steps"] == 24  # 2 h of 5-min steps: the run went on
    events = pd.read_csv(tmp_path / "out" / "events.csv", parse_dates=["start"])
    errors = events[events.kind == "controller_error"]
    start = pd.Timestamp("2025-06-21T00:00:00")
    assert sorted((errors.start - start) // pd.Timedelta(minutes=5)) == [3, 5, 7]
    assert set(errors.target) == {"act"}
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    held = ts["ctrl.pv1.q_set_mvar"].to_numpy()
    # steps 3, 5, 7 keep the setpoint of the step before (0.0 after the even steps 2, 4, 6)
    assert held[2] == 0.0 and held[3] == 0.0 and held[5] == 0.0 and held[7] == 0.0
    assert np.allclose(held[[1, 9, 11]], 0.1)


class Blocking(Controller):
    """Blocks in `act` on step 1 until the test releases it; counts its calls."""

    def __init__(self) -> None:
        self.release, self.returned, self.calls = threading.Event(), threading.Event(), 0

    def act(self, observation):
        self.calls += 1
        if observation["time.step"] == 1:
            self.release.wait()
            self.returned.set()
        return {}


def _sim(controller: Controller, events: EventLog, timeout: float) -> ControllerSim:
    sim = ControllerSim()
    info = ControllerInfo(feeder="ieee33", step_s=60.0, voltage_limits=(0.95, 1.05), ders=(), measurements=())
    sim.init("Controller-0", controller=controller, info=info, start=np.datetime64("2025-06-21T00:00"),
             events=events, timeout=timeout)
    sim.create(1, "Controller")
    return sim


def test_a_call_over_budget_holds_the_setpoints_and_is_not_repeated():
    controller, events = Blocking(), EventLog()
    sim = _sim(controller, events, timeout=0.2)
    for k in range(3):  # step 1 overruns, step 2 finds it still running
        sim.step(k, {}, None)
    assert controller.calls == 2  # steps 0 and 1; the blocked controller was not called again at step 2
    controller.release.set()
    assert controller.returned.wait(10)
    sim.step(3, {}, None)  # back to normal once the late call has returned
    assert controller.calls == 3
    timeouts = [(e.start, e.end, e.target) for e in events.events if e.kind == "controller_timeout"]
    assert timeouts == [(1, 3, "act")]  # steps 1 and 2, one merged event
    sim.finalize()


SLEEPY = """\
import time

from controllers.base import Controller


class Sleepy(Controller):
    def act(self, observation):
        if int(observation["time.step"]) == 4:
            time.sleep(1.5)
        return {"pv1.q_set_mvar": 0.05}
"""


def test_the_scenario_sets_the_time_budget(tmp_path, write_scenario):
    (tmp_path / "sleepy.py").write_text(SLEEPY, encoding="utf-8")
    path = write_scenario(BASE + "controller: {kind: python, path: sleepy.py:Sleepy, timeout: 0.3}\n")
    outcome = run_scenario(load_scenario(path), tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    events = pd.read_csv(tmp_path / "out" / "events.csv", parse_dates=["start"])
    late = events[events.kind == "controller_timeout"]
    start = pd.Timestamp("2025-06-21T00:00:00")
    assert list((late.start - start) // pd.Timedelta(minutes=5))[:1] == [4]  # the slow step, not before
    bad = write_scenario(BASE + "controller: {kind: droop, timeout: 0}\n", "bad.yaml")
    try:
        load_scenario(bad)
    except Exception as exc:  # noqa: BLE001 - the message is what is checked
        assert "controller.timeout" in str(exc) and "greater than 0" in str(exc)
    else:
        raise AssertionError("timeout 0 was accepted")


GREEDY = """\
from controllers.base import Controller


class Greedy(Controller):
    \"\"\"Asks pv1 for 5 Mvar from step 10 on, wt1 for -0.2 Mvar always, and a negative P limit for wt1 at step 4.\"\"\"

    def act(self, observation):
        step = int(observation["time.step"])
        out = {"wt1.q_set_mvar": -0.2, "wt1.p_limit_mw": -1.0 if step == 4 else 10.0}
        if step >= 10:
            out["pv1.q_set_mvar"] = 5.0
        return out
"""


def test_setpoints_beyond_capability_are_clipped_counted_and_grouped_events(tmp_path, write_scenario):
    (tmp_path / "greedy.py").write_text(GREEDY, encoding="utf-8")
    path = write_scenario(BASE + "controller: {kind: python, path: greedy.py:Greedy}\n")
    outcome = run_scenario(load_scenario(path), tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    # chosen at step k, in force at k + 1: pv1 is asked 5 Mvar on steps 11..23 and gets what its
    # 1.1 MVA rating leaves beside its P (hand computation, not the model's own capability function)
    p = ts["pv1.p_mw"].to_numpy()[11:]
    assert np.allclose(ts["pv1.q_mvar"].to_numpy()[11:], np.sqrt(1.1**2 - p**2), atol=1e-9)
    assert outcome.metrics["setpoints_clipped"] == 13 + 1  # pv1's Q on 13 steps, wt1's negative P limit once
    events = pd.read_csv(tmp_path / "out" / "events.csv", parse_dates=["start", "end"])
    clipped = events[events.kind == "setpoint_clipped"].set_index("target")
    assert sorted(clipped.index) == ["pv1.q_set_mvar", "wt1.p_limit_mw"]  # wt1's -0.2 Mvar fits: no event
    row = clipped.loc["pv1.q_set_mvar"]  # one row for the whole run of steps
    assert (row.end - row.start) == pd.Timedelta(minutes=5 * 13)
    assert ts["wt1.p_mw"].iloc[5] == 0.0
