"""Forecast errors of each `forecast:` kind on a shipped scenario, and what mpc makes of each forecast.

    .venv/bin/python benchmarks/bench_forecast.py [--scenario scenarios/ieee33-pv-battery.yaml] [--horizon 1h]

Each row is a real `cosim run` of the scenario with the forecast block and `controller: {kind: mpc}`
(which then plans on the scenario's forecast); the error columns are the run's metrics.json (the
forecast at the full horizon against the recorded series), the nMAE by lead comes from the same
forecasts and the run's recorded series. A first row runs mpc on its own persistence forecast
without a forecast block, for reference. Tables are Markdown.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from controllers.registry import parse_spec
from cosim.assembly import assemble
from cosim.runner import run_scenario
from cosim.scenario.forecast import Forecast
from cosim.scenario.loader import load_scenario

REPO = Path(__file__).resolve().parents[1]
KINDS = [None, {"kind": "persistence"}, {"kind": "oracle"}, {"kind": "oracle", "noise": 0.1},
         {"kind": "learned"}]
ERRORS = ("forecast_nmae", "forecast_der_nmae", "forecast_load_nmae", "forecast_mae_mw")
MPC = ("voltage_violation_bus_minutes", "loss_energy_kwh", "curtailed_energy_kwh")


def label(spec: dict | None) -> str:
    return "mpc's own persistence (no block)" if spec is None else ", ".join(f"{k}: {v}" for k, v in spec.items())


def nmae_by_lead(values: np.ndarray, actual: np.ndarray) -> list[float]:
    """nMAE of every lead h: forecasts issued at k against the recorded value at k + h."""
    out = []
    for h in range(1, values.shape[1] + 1):
        err = values[:-h, h - 1] - actual[h:]
        out.append(float(np.abs(err).sum() / np.abs(actual[h:]).sum()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "ieee33-pv-battery.yaml")
    parser.add_argument("--horizon", default="1h")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    rows, leads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for i, spec in enumerate(KINDS):
            loaded = load_scenario(args.scenario)
            loaded.scenario.controller = parse_spec("mpc")
            if spec is not None:
                loaded.scenario.forecast = Forecast(horizon=args.horizon, **spec)
            t0 = time.perf_counter()
            outcome = run_scenario(loaded, out / f"run{i}")
            wall = time.perf_counter() - t0
            m = outcome.metrics
            rows.append([label(spec)] + [f"{m[k]:.3f}" if k in m else "-" for k in ERRORS]
                        + [f"{m[k]:,.1f}" for k in MPC] + [f"{wall:.0f}"])
            if spec is not None:
                f = assemble(loaded).forecasts
                ts = pd.read_parquet(outcome.out_dir / "timeseries.parquet")
                by_lead = nmae_by_lead(f.values, ts[list(f.signals)].to_numpy(float))
                leads.append([label(spec)] + [f"{v:.3f}" for v in by_lead])
    head = ["forecast", "nMAE", "DER nMAE", "load nMAE", "MAE MW", "mpc violation bus-min", "mpc losses kWh",
            "mpc curtailed kWh", "run s"]
    print("| " + " | ".join(head) + " |\n" + "|---" * len(head) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    n = len(leads[0]) - 1
    picks = sorted({0, n // 4, n // 2, n - 1})
    print("\nnMAE by lead (steps of the clock)\n")
    print("| forecast | " + " | ".join(f"+{p + 1}" for p in picks) + " |\n" + "|---" * (len(picks) + 1) + "|")
    for r in leads:
        print("| " + r[0] + " | " + " | ".join(r[1 + p] for p in picks) + " |")


if __name__ == "__main__":
    main()
