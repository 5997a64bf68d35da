"""Measurement and command channels: each attack changes exactly what it should."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cosim.events.commands import CommandPath, make_command_attack
from cosim.events.measurement import MeasurementPath, make_attack
from cosim.events.schedule import COMMAND, MEASUREMENT, ScheduledEvent
from cosim.events.kinds.command_injection import CommandInjection
from cosim.events.kinds.command_tamper import CommandTamper
from cosim.events.kinds.delay import Delay
from cosim.events.kinds.drop import Drop
from cosim.events.kinds.fdi import FDI
from cosim.events.kinds.replay import Replay
from cosim.events.kinds.sensor_stuck import SensorStuck
from cosim.events.kinds.timestamp_skew import TimestampSkew
from events_helpers import simulate


def _event(spec, start: int, end: int, targets: tuple[str, ...], path: str = MEASUREMENT) -> ScheduledEvent:
    return ScheduledEvent(spec, path, start, end, targets)


def _run_path(attack_spec, start, end, n=14, targets=("x",)):
    """Feed true values x = k (and y = 100 + k) through one attack; return what was seen of x."""
    event = _event(attack_spec, start, end, targets)
    path = MeasurementPath([make_attack(event, np.random.default_rng(0), step_s=60)])
    seen = []
    for k in range(n):
        out, record = path.step(k, {"x": float(k), "y": 100.0 + k})
        assert out["y"] == 100.0 + k  # untouched
        assert record == {f"seen.{t}": out[t] for t in targets}
        seen.append(out["x"])
    return seen


def _spec(model, **kw):
    return model(at=0, duration=60, **kw)


def test_fdi_bias_scale_ramp():
    assert _run_path(_spec(FDI, kind="fdi", target="x", bias=-0.5), 3, 6, n=8) == [0, 1, 2, 2.5, 3.5, 4.5, 6, 7]
    assert _run_path(_spec(FDI, kind="fdi", target="x", scale=2.0), 2, 4, n=5) == [0, 1, 4, 6, 4]
    assert _run_path(_spec(FDI, kind="fdi", target="x", ramp=1.0), 2, 6, n=7) == [0, 1, 2.25, 3.5, 4.75, 6, 6]


def test_fdi_random_is_seeded_noise():
    a = _run_path(_spec(FDI, kind="fdi", target="x", random=0.1), 0, 400, n=400)
    b = _run_path(_spec(FDI, kind="fdi", target="x", random=0.1), 0, 400, n=400)
    noise = np.array(a) - np.arange(400)
    assert a == b and abs(noise.std() - 0.1) < 0.015 and abs(noise.mean()) < 0.015


def test_replay_loops_the_window_before_the_attack():
    seen = _run_path(_spec(Replay, kind="replay", target="x", window=180), 5, 12)
    assert seen == [0, 1, 2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 12, 13]


def test_delay_holds_the_last_sample_until_late_ones_arrive():
    seen = _run_path(_spec(Delay, kind="delay", target="x", steps=2), 5, 10)
    assert seen == [0, 1, 2, 3, 4, 4, 4, 5, 6, 7, 10, 11, 12, 13]


def test_timestamp_skew_takes_old_samples_for_current():
    seen = _run_path(_spec(TimestampSkew, kind="timestamp_skew", target="x", skew=120), 5, 10)
    assert seen == [0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 10, 11, 12, 13]


def test_sensor_stuck_freezes_at_the_onset_reading_or_a_value():
    assert _run_path(_spec(SensorStuck, kind="sensor_stuck", target="x"), 4, 8, n=10) == [0, 1, 2, 3, 4, 4, 4, 4, 8, 9]
    seen = _run_path(_spec(SensorStuck, kind="sensor_stuck", target="x", value=-1.0), 4, 6, n=8)
    assert seen == [0, 1, 2, 3, -1, -1, 6, 7]


def test_drop_holds_or_blanks_lost_updates():
    assert _run_path(_spec(Drop, kind="drop", target="x", rate=1.0), 4, 7, n=9) == [0, 1, 2, 3, 3, 3, 3, 7, 8]
    blank = _run_path(_spec(Drop, kind="drop", target="x", rate=1.0, fill="nan"), 4, 7, n=9)
    assert [math.isnan(v) for v in blank] == [False] * 4 + [True] * 3 + [False] * 2
    assert _run_path(_spec(Drop, kind="drop", target="x", rate=0.0), 0, 9, n=9) == list(range(9))
    partial = np.array(_run_path(_spec(Drop, kind="drop", target="x", rate=0.5), 1, 2001, n=2001))
    lost = (partial[1:] != np.arange(1, 2001)).mean()
    assert 0.45 < lost < 0.55


def _commands(spec, start, end, sends, targets=("pv1.q_set_mvar",)):
    event = _event(spec, start, end, targets, COMMAND)
    path = CommandPath([make_command_attack(event, np.random.default_rng(0))],
                       {"pv1.q_set_mvar": 0.0, "pv1.p_limit_mw": 1.0})
    delivered, records = [], []
    for k, sent in enumerate(sends):
        delivered.append(path.step(k, sent))
        records.append(path.record())
    return delivered, records


def test_command_injection_overrides_every_step_and_restores():
    spec = _spec(CommandInjection, kind="command_injection", target="pv1.q_mvar", value=-0.5)
    delivered, records = _commands(spec, 2, 4, [{}, {"pv1.q_set_mvar": 0.1}, {}, {"pv1.p_limit_mw": 0.7}, {}, {}])
    assert delivered == [{}, {"pv1.q_set_mvar": 0.1}, {"pv1.q_set_mvar": -0.5},
                         {"pv1.q_set_mvar": -0.5, "pv1.p_limit_mw": 0.7}, {"pv1.q_set_mvar": 0.1}, {}]
    assert [r["cmd.pv1.q_set_mvar"] for r in records] == [0.0, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert [r["seen.cmd.pv1.q_set_mvar"] for r in records] == [0.0, 0.1, -0.5, -0.5, 0.1, 0.1]


def test_command_tamper_scales_the_intended_setpoint():
    spec = _spec(CommandTamper, kind="command_tamper", target="pv1.p_limit_mw", scale=0.5, offset=0.1)
    delivered, _ = _commands(spec, 1, 3, [{"pv1.p_limit_mw": 0.8}, {}, {"pv1.p_limit_mw": 0.6}, {}],
                             targets=("pv1.p_limit_mw",))
    assert delivered == [{"pv1.p_limit_mw": 0.8}, {"pv1.p_limit_mw": 0.5}, {"pv1.p_limit_mw": 0.4},
                         {"pv1.p_limit_mw": 0.6}]


def test_command_drop_and_delay():
    sends = [{"pv1.q_set_mvar": float(k)} for k in range(8)]
    dropped, _ = _commands(_spec(Drop, kind="drop", target="commands", rate=1.0), 2, 5, sends)
    assert dropped == [s if not 2 <= k < 5 else {} for k, s in enumerate(sends)]
    late, records = _commands(_spec(Delay, kind="delay", target="commands", steps=2), 2, 4, sends)
    # sent at 2 and 3 arrive at 4 and 5, but at 4 and 5 fresher commands arrive and win
    assert late == [{"pv1.q_set_mvar": 0.0}, {"pv1.q_set_mvar": 1.0}, {}, {},
                    {"pv1.q_set_mvar": 4.0}, {"pv1.q_set_mvar": 5.0}, {"pv1.q_set_mvar": 6.0}, {"pv1.q_set_mvar": 7.0}]
    assert [r["seen.cmd.pv1.q_set_mvar"] for r in records][:4] == [0.0, 1.0, 1.0, 1.0]
    sparse = [{"pv1.q_set_mvar": 1.0}, {}, {"pv1.q_set_mvar": 2.0}, {}, {}, {}]
    late, _ = _commands(_spec(Delay, kind="delay", target="commands", steps=2), 2, 4, sparse)
    assert late == [{"pv1.q_set_mvar": 1.0}, {}, {}, {}, {"pv1.q_set_mvar": 2.0}, {}]


def test_fdi_in_a_world_shifts_what_is_seen_and_leaves_the_truth(tmp_path):
    clean = simulate(tmp_path, name="clean")
    ts = simulate(tmp_path, """\
        events:
          - {at: 10min, duration: 20min, kind: fdi, target: bus.18.vm_pu, bias: -0.04}
        """)
    k = np.arange(len(ts))
    on = (k >= 10) & (k < 30)
    shift = ts["seen.bus.18.vm_pu"] - ts["bus.18.vm_pu"]
    assert np.allclose(shift[on], -0.04, rtol=0, atol=1e-12)
    assert (shift[~on] == 0).all()
    assert (ts["bus.18.vm_pu"] == clean["bus.18.vm_pu"]).all()  # no controller: physics untouched
    assert [c for c in ts.columns if c.startswith("seen.")] == ["seen.bus.18.vm_pu"]


def test_command_injection_in_a_world_moves_the_device_next_step(tmp_path):
    ts = simulate(tmp_path, """\
        events:
          - {at: 10min, duration: 5min, kind: command_injection, target: pv1.q_mvar, value: -0.3}
        """)
    q = ts["pv1.q_mvar"].to_numpy()
    acting = np.zeros(len(ts), bool)
    acting[11:16] = True  # sent at steps 10..14, acting one step later through the time-shifted edge
    assert np.allclose(q[acting], -0.3) and (q[~acting] == 0).all()
    assert (ts["cmd.pv1.q_set_mvar"] == 0).all()
    assert ts["seen.cmd.pv1.q_set_mvar"].tolist() == [-0.3 if 10 <= k < 15 else 0.0 for k in range(len(ts))]


@pytest.mark.parametrize("kind_yaml", [
    "{at: 10min, duration: 20min, kind: replay, target: 'bus.1?.vm_pu', window: 10min}",
    "{at: 10min, duration: 20min, kind: delay, target: 'bus.*.vm_pu', steps: 3}",
])
def test_wildcard_attacks_touch_only_their_targets(tmp_path, kind_yaml):
    ts = simulate(tmp_path, f"events:\n  - {kind_yaml}\n")
    seen = [c[5:] for c in ts.columns if c.startswith("seen.")]
    expected = [f"bus.{b}.vm_pu" for b in range(10, 20)] if "1?" in kind_yaml else [f"bus.{b}.vm_pu" for b in range(1, 34)]
    assert seen == expected
    k = np.arange(len(ts))
    on = (k >= 10) & (k < 30)
    diff = np.abs(ts[[f"seen.{s}" for s in seen]].to_numpy() - ts[seen].to_numpy())
    assert (diff[~on] == 0).all() and diff[on].max() > 1e-5
