"""Stealthy false data by the attacker's access, under full and realistic (sparse) metering.

`scenarios/attacks/fdi-stealthy.yaml` (buses 17 and 18 seem to inject 0.3 MW more for 1 h) is run for
real once per metering and access: `access: all | feeder | substation`, `meters:` the 6 meters at buses
17-18, those of buses 16-18 with lines 16-17, and (sparse) the real meters only. Per run: whether the
loader admits it, the residual the attack leaves (mean `attack.1.residual_j` over the attack), what it
writes on bus 17's P meter (seen - true), and TPR during the attack, FPR and ROC AUC per detector: WLS
chi-square and LNR (significance 0.01) and, under full metering (the one it was trained on), the shipped
learned detector at its threshold.

Writes benchmarks/results/bench_stealthy_access.json.
Usage: python benchmarks/bench_stealthy_access.py [--out runs/bench-stealthy-access]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from bench_metering import DETECTORS, scenario  # noqa: E402
from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.errors import ScenarioError  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402

LEARNED = {"kind": "learned", "name": "learned", "model": str(ROOT / "models" / "detectors" / "ieee33-cnn-rnn.pt")}
ACCESS = {
    "all": {"access": "all"},
    "feeder": {"access": "feeder"},
    "substation": {"access": "substation"},
    "buses 17-18": {"meters": ["bus.17.*", "bus.18.*"]},
    "buses 16-18, lines 16-17": {"meters": ["bus.1[678].*", "line.1[67].*"]},
    "real meters only": {"meters": ["bus.*.vm_pu", "bus.1.*"]},
}
METERING = {"full": None, "sparse": "sparse"}
SKIP = {("full", "real meters only"), ("sparse", "buses 16-18, lines 16-17")}  # all meters real; no line meters


def run(metering: str, access: str, out: Path) -> dict:
    """One run's row: refused (the loader's message), or the residual, what it wrote at bus 17 and each
    detector's rates."""
    path = scenario("fdi-stealthy", METERING[metering], out, f"{metering}-{access.replace(' ', '')}")
    scn = yaml.safe_load(path.read_text())
    scn["events"][0].update(ACCESS[access])
    if metering == "full":
        scn["detectors"] = [*DETECTORS, LEARNED]
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    try:
        loaded = load_scenario(path)
    except ScenarioError as exc:
        return {"refused": str(exc).split(": ", 1)[-1]}
    result = run_scenario(loaded, out / path.stem)
    ts = pd.read_parquet(out / path.stem / "timeseries.parquet")
    attack = ts["label.attack"].to_numpy(float) >= 0.5
    written = ts["seen.bus.17.p_mw"] - ts["bus.17.p_mw"] if "seen.bus.17.p_mw" in ts else pd.Series(np.zeros(len(ts)))
    row = {"meters_written": sum(c.startswith("seen.") for c in ts.columns),  # the attack's targets
           "residual_j": float(np.nanmean(ts["attack.1.residual_j"].to_numpy(float)[attack])),
           "written_bus17_mw": float(written.to_numpy(float)[attack].mean())}
    m = result.metrics
    for name in [d["name"] for d in scn["detectors"]]:
        row[name] = {"tpr": m[f"{name}_detector_tpr"], "fpr": m[f"{name}_detector_fpr"],
                     "roc_auc": m[f"{name}_detector_roc_auc"]}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-stealthy-access")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for metering in METERING:
        for access in ACCESS:
            if (metering, access) in SKIP:
                continue
            row = results.setdefault(metering, {})[access] = run(metering, access, args.out)
            if "refused" in row:
                print(f"{metering:6s} {access:26s} refused: {row['refused'][:110]}", flush=True)
                continue
            rates = "  ".join(f"{n}: TPR {row[n]['tpr']:.3f} FPR {row[n]['fpr']:.3f} AUC {row[n]['roc_auc']:.3f}"
                              for n in row if isinstance(row[n], dict))
            print(f"{metering:6s} {access:26s} {row['meters_written']:3d} meters  residual J {row['residual_j']:10.2f}  "
                  f"bus.17.p_mw {row['written_bus17_mw']:+.3f} MW  {rates}", flush=True)
    res = ROOT / "benchmarks" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "bench_stealthy_access.json").write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
