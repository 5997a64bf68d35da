"""MPC against the baselines on the high-PV day with batteries: violations, losses, curtailment, run time.

    .venv/bin/python benchmarks/bench_mpc.py [--scenario scenarios/ieee33-pv-battery.yaml] [--controllers ...]

Each controller is a real `cosim run` of the scenario (mosaik, the scenario's engine); the
table is Markdown. The goal of issue 11: mpc has fewer violation bus-minutes than droop with
no higher losses. Only mpc drives the batteries; the others leave them idle. A second table gives
the batteries' throughput, their conversion losses (charged x (1 - eta) + discharged x (1/eta - 1),
not part of the network losses) and the energy they hold at the end against the start.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_controllers import COLUMNS, compare  # noqa: E402

from cosim.scenario.loader import load_scenario  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ["none", "droop", "droop_tuned", "opf", "drl:policies/ieee33-voltvar.pt", "mpc",
           "{kind: mpc, params: {forecast: oracle}}",
           "{kind: mpc, params: {soc_target: 0.3, soc_weight: 0.2}}"]  # ends the day near the start's SoC (0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "ieee33-pv-battery.yaml")
    parser.add_argument("--controllers", nargs="+", default=DEFAULT)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--days", type=int, default=0, help="also the mean over this many other days (seeds "
                        "100, 101, ...), each a rollout (cosim's loop without mosaik, same KPIs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        rows = compare(args.scenario, args.controllers, out)
        print(f"{args.scenario.name}")
        print("| controller | " + " | ".join(COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 1) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print()
        print("| controller | charged kWh | discharged kWh | conversion losses kWh | stored at end - start kWh |")
        print("|---|---|---|---|---|")
        for spec in args.controllers:
            print("| " + " | ".join((spec, *battery_row(args.scenario, out / spec.replace(":", "_").replace("/", "_"))))
                  + " |", flush=True)
    if args.days:
        print(f"\nmean over seeds 100..{99 + args.days}")
        print("| controller | violation bus-min | losses kWh | curtailed kWh | battery conversion losses kWh |")
        print("|---|---|---|---|---|")
        for spec in args.controllers:
            print("| " + " | ".join((spec, *days_row(args.scenario, spec, args.days))) + " |", flush=True)


def days_row(scenario: Path, spec: str, days: int) -> tuple[str, ...]:
    """Mean violations, losses, curtailment and battery conversion losses of `spec` over `days` seeds."""
    import dataclasses

    import numpy as np

    from controllers.registry import controller_class, instantiate, parse_spec
    from controllers.rollout import rollout
    from cosim.assembly import assemble

    loaded = load_scenario(scenario)
    block = parse_spec(spec, REPO)
    rows = []
    for seed in range(100, 100 + days):
        day = dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={"seed": seed}))
        controller = None if block.kind == "none" else instantiate(controller_class(block, REPO), block, REPO)
        r = rollout(assemble(day), controller)
        eta = {b.name: b.efficiency for b in day.scenario.storage}
        lost = 0.0
        for name, e in eta.items():
            p = np.nan_to_num(r.rows[:, r.names.index(f"{name}.p_mw")]) * 1000.0 * day.scenario.clock.step / 3600.0
            lost += p[p > 0].sum() * (1 - e) - p[p < 0].sum() * (1 / e - 1)
        k = r.kpis
        rows.append((k["voltage_violation_bus_minutes"], k["loss_energy_kwh"], k["curtailed_energy_kwh"], lost))
    mean = np.mean(rows, axis=0)
    return f"{mean[0]:,.0f}", f"{mean[1]:,.1f}", f"{mean[2]:,.1f}", f"{mean[3]:,.1f}"


def battery_row(scenario: Path, run: Path) -> tuple[str, ...]:
    """Throughput, conversion losses and change of stored energy of a run's batteries."""
    import pandas as pd

    scn = load_scenario(scenario).scenario
    units, h = scn.storage, scn.clock.step / 3600.0
    ts = pd.read_parquet(run / "timeseries.parquet")
    charged = discharged = lost = stored = 0.0
    for b in units:
        p = ts[f"{b.name}.p_mw"].fillna(0.0).to_numpy() * 1000.0
        c, d = p[p > 0].sum() * h, -p[p < 0].sum() * h
        charged, discharged = charged + c, discharged + d
        lost += c * (1 - b.efficiency) + d * (1 / b.efficiency - 1)
        stored += (ts[f"{b.name}.soc"].iloc[-1] - b.soc0) * b.e_mwh * 1000.0
    metrics = json.loads((run / "metrics.json").read_text())
    assert abs(metrics.get("storage_charged_kwh", 0.0) - charged) < 1e-6 * max(charged, 1.0)
    return f"{charged:,.1f}", f"{discharged:,.1f}", f"{lost:,.1f}", f"{stored:,.1f}"


if __name__ == "__main__":
    main()
