"""Controllers on variations of one scenario (issue 9): PV and load from 0.5x to 1.5x, the four seasons, attacks.

Writes each variant of SCENARIO (PV nameplates scaled, load scale scaled, the start date moved
to an equinox or solstice keeping the time of day, or one disruption of `ATTACKS` added), runs `cosim evaluate` on it with every
controller, the OPF oracle and droop as the reference, and prints one Markdown table: mean
violation bus-minutes and losses per variant and controller, with the loss gap to the oracle.

    python benchmarks/eval_variations.py scenarios/ieee33-pv-wind.yaml \
        --controller drl:policies/voltvar-general.pt --controller droop_tuned --seeds 5 --out runs/variations
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

DATES = {"spring": "2025-03-20", "summer": "2025-06-21", "autumn": "2025-09-22", "winter": "2025-12-21"}
PV_SCALES = (0.5, 1.5)
LOAD_SCALES = (0.5, 1.3, 1.5)
# Disruptions from 11:00 for 2 h (the scenario's start is midnight): false data on every bus voltage the
# controllers read (all 0.03 pu low, so they see less over-voltage than there is), a replay of the 15
# minutes before, and line 7 out (buses 8-18 de-energised: their voltages read NaN).
ATTACKS = {
    "fdi -0.03 pu": {"at": "11h", "duration": "2h", "kind": "fdi", "target": "bus.*.vm_pu", "bias": -0.03},
    "replay": {"at": "11h", "duration": "2h", "kind": "replay", "target": "bus.*.vm_pu", "window": "15min"},
    "line 7 out": {"at": "11h", "duration": "2h", "kind": "line_outage", "line": 7},
}


def variants(base: dict) -> dict[str, dict]:
    """The named variants of scenario `base` (a parsed YAML mapping), the base itself (the clean day) first."""
    out = {"base": base}
    for s in PV_SCALES:
        gens = [{**g, "p_mw": g["p_mw"] * s} if g.get("kind") == "pv" else g for g in base["generators"]]
        out[f"pv x{s}"] = {**base, "generators": gens}
    for s in LOAD_SCALES:
        out[f"load x{s}"] = {**base, "loads": {**base["loads"], "scale": base["loads"].get("scale", 1.0) * s}}
    time_of_day = str(base["clock"]["start"])[10:]
    for season, date in DATES.items():
        if not str(base["clock"]["start"]).startswith(date):
            out[season] = {**base, "clock": {**base["clock"], "start": date + time_of_day}}
    for name, event in ATTACKS.items():
        out[name] = {**base, "events": [*base.get("events", []), event]}
    return out


def evaluate(path: Path, controllers: list[str], seeds: int, out: Path) -> pd.DataFrame:
    """`cosim evaluate` on one scenario file; its summary table."""
    cmd = [sys.executable, "-m", "cosim", "evaluate", str(path), *sum((["--controller", c] for c in controllers), []),
           "--against", "droop", "--seeds", str(seeds), "--jobs", "0", "--out", str(out), "-q"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return pd.read_csv(out / "summary.csv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", type=Path)
    ap.add_argument("--controller", action="append", required=True, help="controller SPEC; repeat")
    ap.add_argument("--seeds", type=int, default=5, help="held-out days per variant")
    ap.add_argument("--out", type=Path, default=Path("runs/variations"))
    args = ap.parse_args()
    base = yaml.safe_load(args.scenario.read_text(encoding="utf-8"))
    print("| variant | controller | bus-min | losses kWh | loss gap to the oracle |\n|---|---|---:|---:|---:|")
    for name, scn in variants(base).items():
        slug = name.replace(" ", "-")
        path = args.out / "scenarios" / f"{slug}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({**scn, "name": f"{base['name']}-{slug}"}, sort_keys=False), encoding="utf-8")
        summary = evaluate(path, args.controller, args.seeds, args.out / slug)
        means = summary.pivot(index="controller", columns="metric", values="mean")
        gaps = summary[summary["metric"] == "loss_energy_kwh"].set_index("controller")["gap_rel"]
        for controller in means.index:
            gap = gaps.get(controller, float("nan"))
            cell = "" if pd.isna(gap) else f"{100 * gap:+.1f} %"
            print(f"| {name} | {controller} | {means.loc[controller, 'voltage_violation_bus_minutes']:,.1f} | "
                  f"{means.loc[controller, 'loss_energy_kwh']:,.1f} | {cell} |", flush=True)


if __name__ == "__main__":
    main()
