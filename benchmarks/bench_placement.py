"""Cost of running simulators outside the run's process (`placement`, docs/placement.md), side by side in one run.

IEEE 33, one day at 1-min steps (1,440 steps), PV, wind and the droop controller: the mosaik
world with every simulator in-process, with the grid in its own process, and with grid and
controller each in their own. Start-up (spawning the process, importing, rebuilding the model)
is measured apart with a one-step run of the same scenario; steps/s are of the day minus start-up.
Each placement's time series is checked equal to the in-process one.

Usage: python benchmarks/bench_placement.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.assembly import assemble  # noqa: E402
from cosim.recording import Recording  # noqa: E402
from cosim.results import read_timeseries  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402
from cosim.world import run_world  # noqa: E402

DAY = """\
name: bench-placement
seed: 1
clock: {{start: "2025-06-21T00:00:00", duration: {duration}, step: 1min}}
grid: {{feeder: ieee33, line_max_i_ka: 0.4}}
loads: {{profile: residential, noise: 0.03}}
generators:
  - {{name: pv1, kind: pv, bus: 18, p_mw: 2.0}}
  - {{name: pv2, kind: pv, bus: 33, p_mw: 1.5}}
  - {{name: wt1, kind: wind, bus: 25, p_mw: 0.8}}
controller: {{kind: droop}}
placement: {placement}
"""
PLACEMENTS = {"in-process": "{}", "grid: process": "{grid: process}",
              "grid + controller: process": "{grid: process, controller: process}"}


def world_seconds(workdir: Path, name: str, placement: str, duration: str) -> tuple[float, Path]:
    """Wall seconds of `run_world` (assembly excluded) and the time series it wrote."""
    path = workdir / f"{name}-{duration}.yaml"
    path.write_text(DAY.format(duration=duration, placement=placement), encoding="utf-8")
    asm = assemble(load_scenario(path))
    out = workdir / f"{name}-{duration}.parquet"
    recording = Recording(out, asm.inputs.times[0], asm.step_s)
    t0 = time.perf_counter()
    run_world(asm, recording)
    wall = time.perf_counter() - t0
    recording.close()
    return wall, out


def main() -> None:
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for i, (label, placement) in enumerate(PLACEMENTS.items()):
            name = f"p{i}"
            start, _ = world_seconds(workdir, name, placement, "1min")
            day, out = world_seconds(workdir, name, placement, "24h")
            ts = read_timeseries(out)
            reference = ts if reference is None else reference
            steps = len(ts)
            rows.append((label, start, day, (steps - 1) / max(day - start, 1e-9), ts.equals(reference)))
    base = rows[0][3]
    print(f"IEEE 33 day, 1,440 steps at 1 min, droop controller ({sys.platform}, Python {sys.version.split()[0]})")
    print(f"{'placement':<28}{'start-up s':>12}{'day s':>9}{'steps/s':>10}{'ms/step extra':>15}  same series")
    for label, start, day, rate, same in rows:
        extra = 1000 * (1 / rate - 1 / base)
        print(f"{label:<28}{start:>12.2f}{day:>9.2f}{rate:>10.1f}{extra:>15.2f}  {same}")


if __name__ == "__main__":
    main()
