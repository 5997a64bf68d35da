"""The guard's clamps and rate limits in whole runs, with writes after idle periods.

An emulated inverter with `max_step_pct_per_s: 10` and `w_max_lim_pct: [30, 100]`; the
controller leaves the limit alone for six steps, asks for 20 % (below the clamp), holds, then
asks for 100 % again. Not paced, the rate is per simulated second: 10 % a 1 s step, however long
the controller was idle. Paced at `--realtime 0.1`, it is per wall second: 1 % a step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.assembly import RunOptions
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from hil_support import inverter_scenario

IDLE = """\
from controllers.base import Controller


class Idle(Controller):
    \"\"\"No command for six steps, then 20 % of pv1's 1 MW until step 13, then 100 %.\"\"\"

    def act(self, observation):
        k = observation["time.step"]
        if k < 6:
            return {}
        return {"pv1.p_limit_mw": 0.2 if k < 14 else 1.0}
"""


def run(tmp_path: Path, realtime: float | None, steps: int) -> pd.DataFrame:
    (tmp_path / "idle.py").write_text(IDLE, encoding="utf-8")
    text = inverter_scenario("rate-limits", f"{steps}s", "{kind: python, path: idle.py:Idle}", seed=2, device="""\
        stub_args: {ramp_rate: 100000, tick: 0.02}
        limits: {w_max_lim_pct: [30, 100], max_step_pct_per_s: 10}
        """)
    path = tmp_path / "rate.yaml"
    path.write_text(text, encoding="utf-8")
    outcome = run_scenario(load_scenario(path), tmp_path / "out", options=RunOptions(realtime=realtime))
    assert outcome.status == "ok", outcome.message
    return pd.read_parquet(tmp_path / "out" / "timeseries.parquet")


def test_rate_limit_per_simulated_second_after_idle_periods(tmp_path):
    ts = run(tmp_path, None, 22)
    lim = ts["inv1.w_max_lim_pct"].to_numpy()
    expected = [100] * 6 + [90, 80, 70, 60, 50, 40, 30, 30] + [40, 50, 60, 70, 80, 90, 100, 100]
    assert lim.tolist() == pytest.approx(expected)  # 10 % a step, down to the clamp at 30 %, and back
    assert (ts["guard.clamped"].to_numpy()[6:14] == 1).all() and ts["guard.clamped"].iloc[-1] == 0
    assert ts["pv1.p_mw"].iloc[13] == pytest.approx(0.3, abs=1e-3)  # the grid follows the clamped device at k+1


def test_rate_limit_per_wall_second_in_real_time(tmp_path):
    ts = run(tmp_path, 0.1, 14)  # 0.1 wall s a step: 1 % a step at 10 %/s
    lim = ts["inv1.w_max_lim_pct"].to_numpy()
    assert (lim[:6] == 100).all()
    drops = -np.diff(lim[5:])
    assert (drops <= 1.0 + 0.05).all() and (drops >= 0).all()  # never more than 1 % a step (+ register rounding)
    assert 100 - lim[-1] <= 8 * 1.0 + 0.05  # 8 steps of budget in all, however the wall clock jittered
    assert 100 - lim[-1] >= 4  # and the limit did move down
