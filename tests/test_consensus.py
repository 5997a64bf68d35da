"""consensus: converges to the centralised optimum of the same linearised problem (cvxpy), improves voltages in a
real run, and degrades without crashing when messages are dropped."""

from __future__ import annotations

import json

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from controllers.base import ControllerInfo, DERInfo
from controllers.baselines._lindistflow import lindistflow
from controllers.baselines.consensus import Consensus
from cosim import signals as sig
from cosim.events.kinds.drop import Drop, DropAttack
from cosim.events.measurement import MeasurementPath
from cosim.events.schedule import ScheduledEvent
from cosim.grid.feeders import load_feeder

BUSES, S = (18, 33, 25, 22), (2.0, 1.5, 1.5, 1.0)
V0 = np.array([1.07, 1.06, 1.052, 1.049])  # no-Q voltages at the DER buses under high PV (pu)


def agents() -> tuple[Consensus, np.ndarray]:
    """A consensus controller on IEEE 33's DER-bus reactances, and that matrix."""
    feeder = load_feeder("ieee33")
    pos = [feeder.net.bus.index.get_loc(feeder.bus_index(b)) for b in BUSES]
    X = lindistflow(feeder).X[np.ix_(pos, pos)]
    ders = tuple(DERInfo(f"pv{i + 1}", "pv", b, s, s) for i, (b, s) in enumerate(zip(BUSES, S)))
    c = Consensus()
    c.info = ControllerInfo("ieee33", 300.0, (0.95, 1.05), ders, tuple(f"bus.{b}.vm_pu" for b in BUSES))
    c.setup_agents(X)
    return c, X


def closed_loop(c: Consensus, X: np.ndarray, steps: int) -> np.ndarray:
    """Run the agents against the linear plant v = V0 + X q, setpoints in force one step later; the last q."""
    q = np.zeros(len(V0))
    for _ in range(steps):
        v = V0 + X @ q
        out = c.act({f"bus.{b}.vm_pu": float(x) for b, x in zip(BUSES, v)})
        q = np.array([out[f"pv{i + 1}.q_set_mvar"] for i in range(len(V0))])
    return q


def centralised(X: np.ndarray, hi: float, qmax: np.ndarray) -> np.ndarray:
    q = cp.Variable(len(V0))
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(q)), [V0 + X @ q <= hi, cp.abs(q) <= qmax]).solve()
    return q.value


def test_agents_reach_the_centralised_optimum_of_the_linearised_problem():
    c, X = agents()
    q = closed_loop(c, X, 400)
    q_star = centralised(X, 1.05 - c.margin, c.qmax)
    assert np.abs(q_star).max() > 0.1  # the case needs reactive power
    assert q == pytest.approx(q_star, abs=0.01 * np.abs(q_star).max())
    assert (V0 + X @ q).max() <= 1.05 - c.margin + 1e-3


def test_dropped_messages_degrade_without_crashing():
    c, X = agents()
    names = tuple(sig.message(d.name, "mu") for d in c.info.ders)
    event = ScheduledEvent(Drop(kind="drop", target=list(names), rate=0.7, at="0s", duration="1h"), "measurement", 0, 10**6,
                           names)
    c.channel = MeasurementPath([DropAttack(event, np.random.default_rng(5))])
    q = closed_loop(c, X, 400)
    q_star = centralised(X, 1.05 - c.margin, c.qmax)
    v = V0 + X @ q
    assert np.isfinite(q).all()
    assert v.max() < V0.max()  # still better than no control
    assert v.max() <= 1.05 - c.margin + 0.01
    assert np.abs(q - q_star).max() < 0.2 * np.abs(q_star).max()


NOON = """\
name: consensus-noon
seed: 7
clock: {start: "2025-06-21T11:00:00", duration: 2h, step: 5min}
grid: {feeder: ieee33, voltage_limits: [0.95, 1.05], line_max_i_ka: 0.4}
loads: {profile: residential, noise: 0.03}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 2.0, cloudiness: 0.0}
  - {name: pv2, kind: pv, bus: 33, p_mw: 1.5, cloudiness: 0.0}
  - {name: pv3, kind: pv, bus: 25, p_mw: 1.5, cloudiness: 0.0}
  - {name: pv4, kind: pv, bus: 22, p_mw: 1.2, cloudiness: 0.0}
"""


def _metrics(cli, write_scenario, tmp_path, name: str, tail: str) -> dict:
    code, out, _ = cli("run", write_scenario(NOON + tail, f"{name}.yaml"), "--out", tmp_path / name)
    assert code == 0, out
    return json.loads((tmp_path / name / "metrics.json").read_text())


def test_a_mosaik_run_of_consensus_clears_most_of_the_overvoltage_and_beats_local_droop(cli, write_scenario, tmp_path):
    none = _metrics(cli, write_scenario, tmp_path, "none", "controller: {kind: none}\n")
    agreed = _metrics(cli, write_scenario, tmp_path, "consensus", "controller: {kind: consensus}\n")
    droop = _metrics(cli, write_scenario, tmp_path, "droop", "controller: {kind: droop}\n")
    assert none["voltage_violation_bus_minutes"] > 100  # clear noon, high PV: the case has something to fix
    assert agreed["voltage_violation_bus_minutes"] < 0.2 * none["voltage_violation_bus_minutes"]
    assert agreed["voltage_violation_bus_minutes"] < droop["voltage_violation_bus_minutes"]  # coordination pays


def test_attacks_on_the_agents_messages_are_scheduled_labelled_and_hurt(cli, write_scenario, tmp_path):
    clean = _metrics(cli, write_scenario, tmp_path, "clean", "controller: {kind: consensus}\n")
    # false duals: every agent is told its neighbours' buses are far below the limit, so they absorb less
    lie = ("controller: {kind: consensus}\n"
           "events:\n  - {kind: fdi, target: ['msg.*.mu'], bias: -50.0, at: 0s, duration: 2h}\n")
    attacked = _metrics(cli, write_scenario, tmp_path, "lie", lie)
    assert attacked["voltage_violation_bus_minutes"] > clean["voltage_violation_bus_minutes"]
    events = pd.read_csv(tmp_path / "lie" / "events.csv")
    assert "fdi" in set(events["kind"])
    assert any("msg." in str(t) for t in events["target"])


def test_a_message_target_mixed_with_a_grid_signal_is_refused(cli, write_scenario, tmp_path):
    mixed = ("controller: {kind: consensus}\n"
             "events:\n  - {kind: drop, target: ['msg.pv1.mu', 'bus.18.vm_pu'], at: 0s, duration: 1h}\n")
    code, out, _ = cli("run", write_scenario(NOON + mixed), "--out", tmp_path / "mixed")
    assert code == 2
    assert "events[0].target" in out and "agent-to-agent message" in out
    assert "Traceback" not in out
    code, out, _ = cli("run", write_scenario(NOON + mixed.replace("consensus", "droop"), "droop.yaml"),
                       "--out", tmp_path / "droop")
    assert code == 2 and "msg.pv1.mu" in out  # without agents there are no messages to hit
