"""The shipped learned detector beside WLS (and the scikit-learn baselines) on held-out IEEE 33 runs, per
attack kind, with 95 % intervals over seeds (models/detectors/*.md).

Runs `scenarios/attacks/fdi-stealthy.yaml` and `red-team-day.yaml` for real with seeds 7, 8, ...
(`--seeds`; no training day's: those are 100 + d) and the detectors side by side, as
benchmarks/bench_detectors.py does. A seed changes sensor noise, loads and clouds; the attacks'
times and targets are the files'. Per detector, scenario and seed: ROC AUC, TPR at 1 % FPR, TPR
(recall), FPR, precision, F1, accuracy and mean time to detect at its own threshold, and per attack
kind the AUC (that kind's steps against every clean step), TPR and mean time to detect; then per figure the mean over
seeds with its 95 % percentile-bootstrap interval (`cosim.evaluate.stats`). `--baselines DATASET`
fits the scikit-learn baselines (`cosim.detection.baselines`) on that dataset and runs them too.
Writes `<out>/eval.json` and prints the markdown tables of the model card.
Usage: python benchmarks/eval_shipped_detector.py [--model models/detectors/ieee33-cnn-rnn.pt]
       [--seeds 10] [--baselines runs/ship-ieee33/dataset] [--out runs/eval-shipped]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_detectors import BASELINES, TESTS, test_scenario, tpr_at  # noqa: E402
from cosim.evaluate.stats import summarize  # noqa: E402
from cosim.events.impact import roc_auc  # noqa: E402
from cosim.results import read_timeseries  # noqa: E402
from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402

FIRST_SEED = 7
FIGURES = ("roc_auc", "tpr_at_1pct_fpr", "tpr", "fpr", "precision", "f1", "accuracy", "mean_time_to_detect_s")


def detectors_of(model: Path, baselines: Path | None) -> list[dict]:
    """WLS at 1 % significance, the checkpoint, and the baselines fitted on `baselines` when given."""
    out = [{"kind": "wls", "name": "wls", "significance": 0.01},
           {"kind": "learned", "name": "cnn_rnn", "model": str(model.resolve())}]
    if baselines is not None:
        path = ROOT / "cosim" / "detection" / "baselines.py"
        out += [{"kind": "python", "name": n, "path": f"{path}:{c}", "window": 8, "fit": str(baselines.resolve())}
                for n, c in BASELINES.items()]
    return out


def time_to_detect(steps: np.ndarray, alarm: np.ndarray, step_s: float) -> float:
    """Mean seconds from the start of each contiguous attacked stretch to its first alarm (detected ones only)."""
    edges = np.flatnonzero(np.diff(np.r_[0, steps.astype(int), 0]))
    delays = [np.argmax(alarm[a:b]) * step_s for a, b in zip(edges[::2], edges[1::2]) if alarm[a:b].any()]
    return float(np.mean(delays)) if delays else math.nan


def evaluate(name: str, seed: int, detectors: list[dict], out: Path) -> dict:
    """One real run of test scenario `name` with `seed`; per detector the figures, overall and per kind."""
    from threadpoolctl import threadpool_limits

    path = test_scenario(name, "full", detectors, out, seed)
    with threadpool_limits(1):
        outcome = run_scenario(load_scenario(path), out / path.stem)
    ts = read_timeseries(out / path.stem / "timeseries.parquet")
    truth = ts["label.attack"].to_numpy(float) >= 0.5
    kinds = ts["label.kind"].astype(str).to_numpy()
    step_s = float(np.median(np.diff(ts["time"].to_numpy()).astype("timedelta64[s]").astype(float)))
    rows = {}
    for n in (d["name"] for d in detectors):
        m = {k.removeprefix(f"{n}_detector_"): v for k, v in outcome.metrics.items() if k.startswith(f"{n}_detector_")}
        score = ts[f"detector.{n}.score"].to_numpy(float)
        alarm = ts[f"detector.{n}.alarm"].to_numpy(float) >= 0.5
        per_kind = {}
        for kind in sorted({k for k in kinds[truth] if k}):
            steps = truth & (kinds == kind)
            keep = steps | ~truth
            per_kind[kind] = {"steps": int(steps.sum()), "roc_auc": roc_auc(score[keep], steps[keep]),
                              "tpr": float(alarm[steps].mean()), "ttd_s": time_to_detect(steps, alarm, step_s)}
        rows[n] = {"roc_auc": roc_auc(score, truth), "tpr_at_1pct_fpr": tpr_at(score, truth, 0.01),
                   "tpr": m.get("tpr"), "fpr": m.get("fpr"), "precision": m.get("precision"), "f1": m.get("f1"),
                   "accuracy": float((alarm == truth).mean()), "mean_time_to_detect_s": m.get("mean_time_to_detect_s"),
                   "events_detected": m.get("events_detected"), "events": m.get("events"), "kinds": per_kind}
    return {"seed": seed, "steps": len(ts), "attack_steps": int(truth.sum()), "detectors": rows}


def summary(runs: list[dict]) -> dict:
    """Per detector: each figure's and each kind's AUC / TPR summary over the runs (mean, 95 % bootstrap interval)."""
    value = lambda v: math.nan if v is None else float(v)  # noqa: E731
    out = {}
    for n in runs[0]["detectors"]:
        rows = [r["detectors"][n] for r in runs]
        out[n] = {f: summarize(np.array([value(r[f]) for r in rows])) for f in FIGURES}
        out[n]["kinds"] = {kind: {f: summarize(np.array([value(r["kinds"][kind][f]) for r in rows]))
                                  for f in ("roc_auc", "tpr", "ttd_s")} for kind in rows[0]["kinds"]}
    return out


def cell(s: dict, digits: int = 3) -> str:
    """`mean [low, high]` of a summary (the bootstrap interval), `-` without finite values."""
    if not s.get("n"):
        return "-"
    low, high = s["boot_low"], s["boot_high"]
    ci = f" [{low:.{digits}f}, {high:.{digits}f}]" if low == low else ""
    return f"{s['mean']:.{digits}f}{ci}"


def markdown(results: dict) -> str:
    """The model card's tables: overall per scenario and detector, then AUC / TPR per attack kind."""
    lines = ["| scenario | detector | ROC AUC | TPR at 1 % FPR | TPR (recall) | FPR | precision | F1 | accuracy | TTD s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        for n, s in res["summary"].items():
            lines.append(f"| {name} | {n} | " + " | ".join(cell(s[f]) for f in FIGURES[:-1])
                         + f" | {cell(s['mean_time_to_detect_s'], 0)} |")
    names = list(next(iter(results.values()))["summary"])
    lines += ["", "| scenario | attack kind (steps) | " + " | ".join(f"{n} AUC / TPR / TTD s" for n in names) + " |",
              "|---|---|" + "---|" * len(names)]
    for name, res in results.items():
        first = res["runs"][0]["detectors"][names[0]]["kinds"]
        for kind, k in first.items():
            cells = [f"{cell(res['summary'][n]['kinds'][kind]['roc_auc'])} / "
                     f"{res['summary'][n]['kinds'][kind]['tpr']['mean']:.3f} / "
                     f"{cell(res['summary'][n]['kinds'][kind]['ttd_s'], 0).split(' [')[0]}" for n in names]
            lines.append(f"| {name} | {kind} ({k['steps']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "detectors" / "ieee33-cnn-rnn.pt")
    ap.add_argument("--seeds", type=int, default=10, help="runs per test scenario, seeds 7, 8, ...")
    ap.add_argument("--baselines", type=Path, default=None, help="a cosim dataset to fit the baselines on")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "eval-shipped")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    detectors = detectors_of(args.model, args.baselines)
    results = {}
    for name in TESTS:
        runs = [evaluate(name, FIRST_SEED + i, detectors, args.out) for i in range(args.seeds)]
        results[name] = {"runs": runs, "summary": summary(runs)}
    (args.out / "eval.json").write_text(json.dumps(results, indent=2, default=float))
    print(markdown(results))


if __name__ == "__main__":
    main()
