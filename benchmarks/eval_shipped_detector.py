"""The shipped learned detector beside WLS on held-out IEEE 33 runs, per attack kind (models/detectors/*.md).

Runs `scenarios/attacks/fdi-stealthy.yaml` and `red-team-day.yaml` for real (seed 7: no training
day's) with `wls` and the checkpoint side by side, as benchmarks/bench_detectors.py does; per
detector and scenario: ROC AUC, TPR at 1 % FPR, TPR / FPR at its own threshold, mean time to
detect, and per attack kind the AUC (that kind's steps against every clean step) and TPR.
Writes `<out>/eval.json` and prints the markdown tables of the model card.
Usage: python benchmarks/eval_shipped_detector.py [--model models/detectors/ieee33-cnn-rnn.pt]
       [--out runs/eval-shipped]
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

from bench_detectors import TESTS, test_scenario, tpr_at  # noqa: E402
from cosim.events.impact import roc_auc  # noqa: E402
from cosim.results import read_timeseries  # noqa: E402
from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402


def evaluate(name: str, model: Path, out: Path) -> dict:
    """One real run of test scenario `name` with wls and the model; per detector the figures, overall and per kind."""
    from threadpoolctl import threadpool_limits

    detectors = [{"kind": "wls", "name": "wls", "significance": 0.01},
                 {"kind": "learned", "name": "cnn_rnn", "model": str(model.resolve())}]
    path = test_scenario(name, "full", detectors, out)
    with threadpool_limits(1):
        outcome = run_scenario(load_scenario(path), out / name)
    ts = read_timeseries(out / name / "timeseries.parquet")
    truth = ts["label.attack"].to_numpy(float) >= 0.5
    kinds = ts["label.kind"].astype(str).to_numpy()
    rows = {}
    for n in ("wls", "cnn_rnn"):
        m = outcome.metrics
        score = ts[f"detector.{n}.score"].to_numpy(float)
        alarm = ts[f"detector.{n}.alarm"].to_numpy(float) >= 0.5
        per_kind = {}
        for kind in sorted({k for k in kinds[truth] if k}):
            steps = truth & (kinds == kind)
            keep = steps | ~truth
            per_kind[kind] = {"steps": int(steps.sum()), "roc_auc": roc_auc(score[keep], steps[keep]),
                              "tpr": float(alarm[steps].mean())}
        rows[n] = {"roc_auc": roc_auc(score, truth), "tpr_at_1pct_fpr": tpr_at(score, truth, 0.01),
                   "tpr": m.get(f"{n}_detector_tpr"), "fpr": m.get(f"{n}_detector_fpr"),
                   "events_detected": m.get(f"{n}_detector_events_detected"), "events": m.get(f"{n}_detector_events"),
                   "mean_time_to_detect_s": m.get(f"{n}_detector_mean_time_to_detect_s"), "kinds": per_kind}
    return {"steps": len(ts), "attack_steps": int(truth.sum()), "detectors": rows}


def markdown(results: dict) -> str:
    """The model card's tables: overall per scenario and detector, then AUC / TPR per attack kind."""
    fmt = lambda v: "-" if v is None or v != v else f"{v:.3f}"  # noqa: E731
    lines = ["| scenario | detector | ROC AUC | TPR at 1 % FPR | TPR | FPR | events detected | TTD s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        for n, r in res["detectors"].items():
            ttd = r["mean_time_to_detect_s"]
            lines.append(f"| {name} ({res['attack_steps']} of {res['steps']} steps attacked) | {n} | "
                         f"{fmt(r['roc_auc'])} | {fmt(r['tpr_at_1pct_fpr'])} | {fmt(r['tpr'])} | {fmt(r['fpr'])} | "
                         f"{r['events_detected']} of {r['events']} | "
                         f"{'-' if ttd is None or ttd != ttd else f'{ttd:.0f}'} |")
    lines += ["", "| scenario | attack kind (steps) | wls AUC / TPR | cnn_rnn AUC / TPR |", "|---|---|---|---|"]
    for name, res in results.items():
        d = res["detectors"]
        for kind, k in d["wls"]["kinds"].items():
            c = d["cnn_rnn"]["kinds"][kind]
            lines.append(f"| {name} | {kind} ({k['steps']}) | {fmt(k['roc_auc'])} / {fmt(k['tpr'])} | "
                         f"{fmt(c['roc_auc'])} / {fmt(c['tpr'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "detectors" / "ieee33-cnn-rnn.pt")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "eval-shipped")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {name: evaluate(name, args.model, args.out) for name in TESTS}
    (args.out / "eval.json").write_text(json.dumps(results, indent=2, default=float))
    print(markdown(results))


if __name__ == "__main__":
    main()
