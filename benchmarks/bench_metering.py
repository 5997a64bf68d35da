"""WLS chi-square and LNR under full and realistic (sparse) metering, with noise and grid-model error.

Each attack scenario (`scenarios/attacks/fdi-stealthy.yaml`, `red-team-day.yaml`) is run for real
(`cosim.runner.run_scenario`) once per metering, with two WLS detectors side by side (alarm chi2,
alarm lnr, significance 0.01):
- full: today's 163 meters, noise drawn with the assumed sigma;
- full+noise: the same meters, the channel's noise 1.5 x the assumed sigma;
- full+model: the same meters, the detector's line r and x with 10 % seeded error (`model_error`);
- sparse: substation V, P, Q, voltages at the 4 feeder ends, load pseudo-measurements at 30 %;
- sparse+noise: sparse, the real meters' noise 1.5 x sigma and the pseudo-measurements' error 40 %
  where the estimator assumes 30 %;
- sparse+model: sparse with the 10 % line impedance error;
- sparse+ar1: sparse with the pseudo-measurement errors correlated over 2 h (AR(1), same std).
The score (and so the ROC AUC) of both blocks is the chi-square statistic over its threshold; they
differ in the test that raises the alarm.
Per detector: false-alarm rate on clean steps, TPR, TPR per attack kind, ROC AUC. Access-limited
stealthy attackers are benchmarks/bench_stealthy_access.py's.

Writes benchmarks/results/bench_metering.json. Usage: python benchmarks/bench_metering.py [--out runs/bench-metering]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402

TESTS = ("fdi-stealthy", "red-team-day")
METERING = {
    "full": None,
    "full+noise": {"preset": "full", "noise": {"voltage": 0.003, "injection": 0.0075, "flow": 0.0075}},
    "full+model": {"preset": "full", "model_error": 0.1},
    "sparse": "sparse",
    "sparse+noise": {"preset": "sparse", "noise": {"voltage": 0.003, "injection": 0.0075, "pseudo": 0.4}},
    "sparse+model": {"preset": "sparse", "model_error": 0.1},
    "sparse+ar1": {"preset": "sparse", "pseudo_loads": {"error": 0.3, "correlation_time": "2h"}},
}
DETECTORS = [{"kind": "wls", "name": "chi2", "alarm": "chi2", "significance": 0.01},
             {"kind": "wls", "name": "lnr", "alarm": "lnr", "significance": 0.01}]


def scenario(name: str, metering, out: Path, tag: str) -> Path:
    """The attack scenario with both WLS detectors and `metering`, written under `out`."""
    scn = yaml.safe_load((ROOT / "scenarios" / "attacks" / f"{name}.yaml").read_text())
    scn.pop("detector", None)
    scn["detectors"] = DETECTORS
    scn["impact"] = {"baseline": False}
    if metering is not None:
        scn["metering"] = metering
    path = out / f"{name}-{tag}.yaml"
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-metering")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for name in TESTS:
        results[name] = {}
        for tag, metering in METERING.items():
            loaded = load_scenario(scenario(name, metering, out, tag))
            t0 = time.perf_counter()
            with threadpool_limits(1):
                m = run_scenario(loaded, out / f"{name}-{tag}").metrics
            row = {"wall_s": round(time.perf_counter() - t0, 1)}
            for d in DETECTORS:
                n = d["name"]
                row[n] = {k.removeprefix(f"{n}_detector_"): v for k, v in m.items() if k.startswith(f"{n}_detector_")}
            results[name][tag] = row
            print(f"{name:13s} {tag:12s} " + "  ".join(
                f"{n}: FPR {row[n]['fpr']:.3f} TPR {row[n]['tpr']:.3f} AUC {row[n]['roc_auc']:.3f}"
                for n in ("chi2", "lnr")), flush=True)
    res = ROOT / "benchmarks" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "bench_metering.json").write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
