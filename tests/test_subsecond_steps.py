"""Steps shorter than a second (`step: 100ms`): exact step arithmetic, whole runs, and devices at 10 Hz.

The clock counts in milliseconds, so 0.3 s of 100 ms steps is 3 steps (not the 2 that float
floor division gives) and mosaik's time is the step number. Checked: the schema's spellings and
refusals, a run of 100 ms steps whose events start and end on sub-second times, and an emulated
inverter at 100 ms steps whose output follows its curtailment at the next step (the k -> k+1
rule) with the guard's rate limit per simulated second spread over the short steps.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from cosim.scenario.units import format_duration, parse_duration, steps_in
from hil_support import inverter_scenario

RUN = """\
name: fast
seed: 5
clock: {start: "2025-06-21T12:00:00", duration: 10s, step: 100ms}
grid: {feeder: ieee33}
loads: {profile: constant, scale: 0.5}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 1.0, cloudiness: 0.0}
controller: {kind: droop}
"""


def test_durations_in_milliseconds_are_exact():
    assert parse_duration("100ms") == pytest.approx(0.1) and format_duration(0.1) == "100ms"
    assert format_duration(0.25) == "250ms" and format_duration(1.5) == "1.5s" and format_duration(60) == "1min"
    assert 0.3 // 0.1 == 2.0  # the float pitfall the clock avoids ...
    assert steps_in(0.3, 0.1) == 3 and steps_in(2.55, 0.1) == 25 and steps_in(3600, 300) == 12  # ... by counting ms


@pytest.mark.parametrize("clock, expected", [
    ("{duration: 10s, step: 0.0005}", "must be a whole number of milliseconds"),
    ("{duration: 1.05s, step: 100ms}", "step 100ms does not divide duration 1.05s"),
])
def test_clocks_that_do_not_fit_the_millisecond_grid_are_refused(tmp_path, cli, clock, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(RUN.replace('{start: "2025-06-21T12:00:00", duration: 10s, step: 100ms}', clock), encoding="utf-8")
    code, output, _ = cli("validate", path)
    assert code == 2 and expected in output, output


def test_a_run_of_100ms_steps_places_events_on_sub_second_times(tmp_path, cli):
    path = tmp_path / "fast.yaml"
    path.write_text(RUN + "events:\n  - {kind: dg_trip, at: 2.5s, duration: 1200ms, generator: pv1}\n", encoding="utf-8")
    code, output, _ = cli("validate", path)
    assert code == 0 and "100 steps of 100ms" in output, output
    outcome = run_scenario(load_scenario(path), tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert len(ts) == 100
    assert (np.diff(ts["time"].to_numpy()) == np.timedelta64(100, "ms")).all()
    p = ts["pv1.p_mw"].to_numpy()
    tripped = np.flatnonzero(p == 0.0)
    assert tripped.tolist() == list(range(25, 37))  # 2.5 s .. 3.7 s: steps 25..36, by hand
    events = pd.read_csv(tmp_path / "out" / "events.csv", parse_dates=["start", "end"])
    trip = events[events.kind == "dg_trip"].iloc[0]
    assert trip.start == pd.Timestamp("2025-06-21T12:00:02.500") and trip.end == pd.Timestamp("2025-06-21T12:00:03.700")
    # energy is integrated over 0.1 s steps: 10 s at ~0.9 MW is ~2.5 kWh, not 25 or 0
    assert 0.5 < outcome.metrics["renewable_energy_kwh"] < 3.0


CURTAIL = """\
from controllers.base import Controller


class Curtail(Controller):
    def act(self, observation):
        return {"pv1.p_limit_mw": 0.2} if observation["time.step"] >= 5 else {}
"""


def test_an_emulated_inverter_at_100ms_steps_acts_at_the_next_step_within_its_rate_limit(tmp_path):
    (tmp_path / "curtail.py").write_text(CURTAIL, encoding="utf-8")
    text = inverter_scenario("fast-hil", "3s", "{kind: python, path: curtail.py:Curtail}", device=textwrap.dedent("""\
        stub_args: {ramp_rate: 100000, tick: 0.02}
        limits: {max_step_pct_per_s: 100}
        """)).replace("step: 1s", "step: 100ms")
    path = tmp_path / "hil.yaml"
    path.write_text(text, encoding="utf-8")
    outcome = run_scenario(load_scenario(path), tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert len(ts) == 30 and ts["inv1.stale"].sum() == 0
    lim = ts["inv1.w_max_lim_pct"].to_numpy()
    assert lim[4] == 100.0  # chosen at step 5, written by the bridge in step 5 ...
    # ... and 100 %/s on 100 ms steps is 10 % a step: 100 -> 90 -> ... -> 20 over steps 5..12, then held
    assert lim[5:14].tolist() == pytest.approx([90, 80, 70, 60, 50, 40, 30, 20, 20])
    p, avail = ts["pv1.p_mw"].to_numpy(), ts["pv1.p_avail_mw"].to_numpy()
    # the grid takes the device's answer at the next step (k -> k+1)
    assert p[6:15] == pytest.approx(np.minimum(avail[6:15], lim[5:14] / 100.0), abs=2e-3)
