"""Cost of running simulators outside the run's process (`placement`, docs/placement.md), side by side in one run.

Three scenarios, each run with every simulator in-process and then with one placement per row:
- day: IEEE 33, one day at 1-min steps (1,440 steps), PV, wind and the droop controller; the grid,
  the inputs, and grid and controller in their own processes;
- detector: the first 6 h of that day (360 steps) with a WLS detector; the detector in its own process;
- device: IEEE 33 at noon, an emulated inverter (firmware stub on 127.0.0.1, 10-ms ticks) behind
  the bridge, 600 steps of 1 s as fast as possible; the bridge in its own process.
Start-up is from starting the world to the end of step 0 (spawning the process, importing,
rebuilding its part); ms/step from the end of step 0 to the end of the last step. Each placement's
time series is checked equal to its scenario's in-process one (with a device: but for what is measured on the
wall clock, `*.rtt_ms`, `*.io_ms`, `bridge.step_ms`); the columns that differ are listed.

Each placement runs `--repeat` times (default 3), interleaved with the in-process runs; the medians
are printed, with the load average, since other work on the machine moves every figure.

Usage: python benchmarks/bench_placement.py [--repeat N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
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
DETECTOR = DAY.replace("placement:", "detector: {{significance: 0.01}}\nplacement:")
DEVICE = """\
name: bench-placement-bridge
seed: 1
clock: {{start: "2025-06-21T12:00:00", duration: {duration}, step: 1s}}
grid: {{feeder: ieee33}}
loads: {{profile: constant, scale: 0.5}}
generators:
  - {{name: pv1, kind: pv, bus: 18, p_mw: 1.0, cloudiness: 0.0}}
controller: {{kind: droop}}
devices:
  - {{name: inv1, kind: inverter, bus: 18, modbus: {{timeout: 0.3}}, emulate: true,
     stub_args: {{ramp_rate: 100000, tick: 0.01}}}}
placement: {placement}
"""
# scenario -> (template, duration, placements after the in-process reference)
CASES = {
    "day": (DAY, "24h", ["{grid: process}", "{inputs: process}", "{grid: process, controller: process}"]),
    "detector": (DETECTOR, "6h", ["{detector: process}"]),
    "device": (DEVICE, "10min", ["{bridge: process}"]),
}
WALL_CLOCK = ("inv1.rtt_ms", "inv1.io_ms", "bridge.step_ms")


def world_seconds(workdir: Path, name: str, template: str, placement: str, duration: str) -> tuple[float, float, Path]:
    """Start-up seconds of `run_world` (to the end of step 0; assembly and starting the device stubs excluded),
    steps per second after it, and the time series it wrote."""
    from hil.stubs import DeviceSession

    path = workdir / f"{name}-{duration}.yaml"
    path.write_text(template.format(duration=duration, placement=placement), encoding="utf-8")
    loaded = load_scenario(path)
    devices = DeviceSession(loaded, workdir / f"{name}-devices") if loaded.scenario.devices else contextlib.nullcontext()
    with devices:
        asm = assemble(loaded)
        out = workdir / f"{name}-{duration}.parquet"
        recording = Recording(out, asm.inputs.times[0], asm.step_s)
        done: dict[int, float] = {}
        t0 = time.perf_counter()
        run_world(asm, recording, lambda n: done.setdefault(n, time.perf_counter()))
        recording.close()
    last = max(done)
    return done[1] - t0, (last - 1) / (done[last] - done[1]), out


def measure(workdir: Path, name: str, template: str, duration: str, placement: str, reference) -> tuple:
    """One run of `placement`: (start-up s, ms per step, time series, what differs from `reference`)."""
    start, rate, out = world_seconds(workdir, name, template, placement, duration)
    ts = read_timeseries(out).drop(columns=list(WALL_CLOCK), errors="ignore")
    reference = ts if reference is None else reference
    differ = [c for c in ts.columns if c not in reference or not ts[c].equals(reference[c])]
    if not differ and list(ts.columns) != list(reference.columns):
        differ = ["column order"]
    return start, 1000 / rate, ts, differ


def main(repeat: int) -> None:
    """Each scenario's placements `repeat` times, interleaved (in-process, placed, ..., in-process, placed, ...),
    so a change of the machine's load hits every row alike; the medians are printed."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for scenario, (template, duration, placements) in CASES.items():
            placements = ["{}", *placements]
            runs: dict[str, list] = {p: [] for p in placements}
            reference = None
            for _ in range(repeat):
                for i, placement in enumerate(placements):
                    start, ms, ts, differ = measure(workdir, f"{scenario}{i}", template, duration, placement, reference)
                    reference = ts if reference is None else reference
                    runs[placement].append((start, ms, differ))
            base = statistics.median(ms for _, ms, _ in runs["{}"])
            for placement, done in runs.items():
                ms = statistics.median(m for _, m, _ in done)
                differ = sorted({c for *_, d in done for c in d})
                rows.append((scenario, "in-process" if placement == "{}" else placement.strip("{}"), len(reference),
                             statistics.median(s for s, _, _ in done), ms, ms - base,
                             f"no: {', '.join(differ[:5])}" if differ else "yes"))
    print(f"IEEE 33, droop controller ({sys.platform}, Python {sys.version.split()[0]}); medians of {repeat} runs, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'scenario':<10}{'placement':<36}{'steps':>6}{'start-up s':>11}{'ms/step':>9}{'extra ms/step':>14}"
          "  same series")
    for scenario, label, steps, start, ms, extra, same in rows:
        print(f"{scenario:<10}{label:<36}{steps:>6}{start:>11.2f}{ms:>9.2f}{extra:>14.2f}  {same}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each placement (default 3)")
    main(parser.parse_args().repeat)
