"""Run one scenario with each shipped baseline and print a Markdown table of KPIs and run time.

    python benchmarks/compare_controllers.py scenarios/ieee33-pv-wind.yaml [--controllers none droop ...]

Reactive energy (sum of |Q| of the scenario's DERs over time) is computed here from the
time series; the other columns are the run's metrics.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


from controllers.registry import parse_spec
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario

COLUMNS = ("violation bus-min", "vm max pu", "losses kWh", "curtailed kWh", "reactive kvarh", "run s")


def compare(path: Path, specs: list[str], out: Path) -> list[tuple[str, ...]]:
    """One row per controller SPEC: the KPIs of the scenario run with it."""
    rows = []
    for spec in specs:
        loaded = load_scenario(path)
        loaded.scenario.controller = parse_spec(spec)
        t0 = time.perf_counter()
        outcome = run_scenario(loaded, out / spec.replace(":", "_").replace("/", "_"))
        wall = time.perf_counter() - t0
        m = outcome.metrics
        reactive = m["reactive_energy_kvarh"]
        rows.append((spec, f"{m['voltage_violation_bus_minutes']:,.0f}", f"{m['vm_max_pu']:.4f}",
                     f"{m['loss_energy_kwh']:,.1f}", f"{m['curtailed_energy_kwh']:,.1f}", f"{reactive:,.0f}",
                     f"{wall:.1f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--controllers", nargs="+", default=["none", "droop", "volt_watt", "opf"])
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = compare(args.scenario, args.controllers, args.out or Path(tmp))
    print("| controller | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
