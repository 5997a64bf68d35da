"""Sweep speed-up (issue 12), side by side in one run: the same sweep with 1 job, 2 jobs, and on a local Ray instance.

The sweep is the IEEE 33 day of `scenarios/ieee33-pv-wind.yaml` over --runs / 2 seeds and two
controllers (none, droop): 100 runs by default. Each backend writes its own folder; the script
reports wall seconds, runs per second and the ratios, and checks that every backend gave the
same metrics for every run (the runs are seeded). The issue's goal: 2 local jobs at least 1.8x
faster than 1 job on a 2-core machine; Ray's overhead is reported against the local pool.

Usage: python benchmarks/bench_sweep.py [--runs 100] [--no-ray] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.sweep import load_sweep, run_sweep  # noqa: E402

METRICS = ["loss_energy_kwh", "voltage_violation_bus_minutes", "curtailed_energy_kwh"]


def sweep_file(folder: Path, runs: int) -> Path:
    """A sweep of the IEEE 33 day: runs / 2 seeds x {none, droop}."""
    seeds = ", ".join(str(s) for s in range(1, runs // 2 + 1))
    path = folder / "sweep.yaml"
    path.write_text(f"name: bench-sweep\nscenarios: [{ROOT / 'scenarios' / 'ieee33-pv-wind.yaml'}]\n"
                    f"seeds: [{seeds}]\ncontrollers: [none, droop]\n", encoding="utf-8")
    return path


def timed(path: Path, out: Path, backend: str, jobs: int) -> tuple[float, pd.DataFrame]:
    """Wall seconds of one whole sweep and its summary table."""
    t0 = time.perf_counter()
    result = run_sweep(load_sweep(path), out, backend, jobs)
    wall = time.perf_counter() - t0
    table = pd.read_parquet(out / "summary.parquet")
    assert (table["status"] == "ok").all(), f"{backend} x {jobs}: not every run succeeded ({result})"
    return wall, table.set_index("run_id").sort_index()[METRICS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray backend")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_sweep.json")
    args = ap.parse_args()
    results: dict = {"runs": args.runs, "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = sweep_file(folder, args.runs)
        configs = [("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", 2)])
        tables = {}
        for backend, jobs in configs:
            wall, tables[(backend, jobs)] = timed(path, folder / f"{backend}-{jobs}", backend, jobs)
            results[f"{backend}_{jobs}_wall_s"] = wall
            results[f"{backend}_{jobs}_runs_per_s"] = args.runs / wall
            print(f"{backend} x {jobs}: {wall:.1f} s ({args.runs / wall:.2f} runs/s)", flush=True)
        base = tables[("local", 1)]
        results["same_metrics"] = all(t.equals(base) for t in tables.values())
        results["speedup_2_jobs"] = results["local_1_wall_s"] / results["local_2_wall_s"]
        if not args.no_ray:
            results["ray_over_local_pool"] = results["ray_2_wall_s"] / results["local_2_wall_s"]
    results["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
