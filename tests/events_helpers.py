"""Shared helpers of the event tests: a small IEEE 33 scenario around noon, run through mosaik."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from cosim.recording import Recording
from cosim.scenario.loader import load_scenario
from cosim.assembly import assemble
from cosim.world import run_world

SHIPPED = Path(__file__).resolve().parents[1] / "scenarios" / "attacks"

NOON = """\
name: ev
seed: 5
clock: {{start: "2025-06-21T11:00:00", duration: {duration}, step: {step}}}
grid: {{feeder: ieee33, line_max_i_ka: 0.4}}
loads: {{profile: residential, noise: 0.02}}
generators:
  - {{name: pv1, kind: pv, bus: 18, p_mw: 1.0, cloudiness: 0.0}}
  - {{name: wt1, kind: wind, bus: 25, p_mw: 0.8}}
"""


def scenario_text(extra: str = "", duration: str = "1h", step: str = "1min") -> str:
    """The noon scenario plus `extra` YAML (events:, detector:)."""
    return NOON.format(duration=duration, step=step) + textwrap.dedent(extra)


def simulate(tmp_path: Path, extra: str = "", duration: str = "1h", step: str = "1min", name: str = "s") -> pd.DataFrame:
    """Run the scenario through a real mosaik world and return its recorded time series."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(scenario_text(extra, duration, step), encoding="utf-8")
    asm = assemble(load_scenario(path))
    recording = Recording(tmp_path / f"{name}.parquet", asm.inputs.times[0], asm.step_s)
    run_world(asm, recording)
    recording.close()
    return pd.read_parquet(tmp_path / f"{name}.parquet")
