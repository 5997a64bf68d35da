"""KPI speed on a real day: `metrics_from_array` over a recorded IEEE 69 day at 1-min steps.

The day comes from the mosaik-free rollout of `scenarios/ieee69-pv.yaml` (1,440 steps, every
signal the grid model publishes); the KPIs are then computed repeatedly and timed by this
thread's CPU time (other processes' load does not count). Target: under 5 ms per day.

Usage: python benchmarks/bench_metrics.py [--repeat 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controllers.rollout import rollout  # noqa: E402
from cosim.assembly import assemble  # noqa: E402
from cosim.metrics import metrics_from_array  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "ieee69-pv.yaml"))
    args = parser.parse_args()
    loaded = load_scenario(args.scenario)
    day = rollout(assemble(loaded), None)
    scn = loaded.scenario
    gens = [g.name for g in scn.generators]
    score = lambda: metrics_from_array(day.rows, day.names, scn.clock.step, scn.grid.voltage_limits, gens)  # noqa: E731
    score()  # builds the column plan once
    times = []
    for _ in range(args.repeat):
        t0 = time.thread_time()
        score()
        times.append(time.thread_time() - t0)
    print(json.dumps({"scenario": Path(args.scenario).name, "steps": day.rows.shape[0], "signals": day.rows.shape[1],
                      "kpi_ms_min": round(min(times) * 1e3, 2), "kpi_ms_median": round(float(np.median(times)) * 1e3, 2),
                      "target_ms": 5.0}, indent=1))


if __name__ == "__main__":
    main()
