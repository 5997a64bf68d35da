"""Detectors side by side: WLS, the seed's CNN+RNN and scikit-learn baselines on held-out attack days.

1. `cosim dataset benchmarks/detectors/train-day.yaml --days N` (random attacks and disruptions,
   seeds 100 + d: none shared with the test scenarios);
2. the CNN+RNN trained on it (Table 1 hyperparameters, `--epochs`), threshold at 1 % false alarms
   on the validation day; logistic regression, random forest and isolation forest fitted on the
   same windows (python plug-ins of `cosim.detection.baselines`);
3. each test scenario (`scenarios/attacks/fdi-stealthy.yaml`, `red-team-day.yaml`) run for real
   (`cosim.runner.run_scenario`) with all detectors side by side; per detector: ROC AUC, TPR at
   1 % FPR (from the score), TPR / FPR at its own threshold, events detected and mean time to
   detect (the run's metrics), and detection cost per step (wall time of the run's detector stage
   is not separated: we report the scoring time of each detector on the recorded windows).

Writes benchmarks/results/bench_detectors.json and bench_detectors_roc.png.
Usage: python benchmarks/bench_detectors.py [--days 6] [--epochs 5] [--out runs/bench-detectors]
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

import yaml  # noqa: E402

from cosim.detection.cnn_rnn import Hyper  # noqa: E402
from cosim.detection.dataset import generate, read_dataset  # noqa: E402
from cosim.detection.train import fit  # noqa: E402
from cosim.events.impact import roc_auc  # noqa: E402
from cosim.results import read_timeseries  # noqa: E402
from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402

TESTS = ("fdi-stealthy", "red-team-day")
BASELINES = {"logreg": "LogisticBaseline", "forest": "ForestBaseline", "iforest": "IsolationForestBaseline"}


def tpr_at(score: np.ndarray, truth: np.ndarray, fpr: float) -> float:
    """TPR at the threshold that leaves at most `fpr` of the clean steps alarmed."""
    s = np.nan_to_num(score, nan=-np.inf)
    neg = np.sort(s[~truth])
    thr = neg[len(neg) - int(np.floor(fpr * len(neg))) - 1] if len(neg) else -np.inf
    return float((s[truth] > thr).mean()) if truth.any() else float("nan")


def roc(score: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.nan_to_num(score, nan=-np.inf)
    order = np.argsort(-s, kind="stable")
    t = truth[order]
    return np.r_[0, np.cumsum(~t) / max(1, (~t).sum())], np.r_[0, np.cumsum(t) / max(1, t.sum())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-detectors")
    args = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    card = generate([load_scenario(ROOT / "benchmarks" / "detectors" / "train-day.yaml")], args.days, out / "dataset")
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    trained = fit(read_dataset(out / "dataset"), Hyper(epochs=args.epochs), args.seed)
    trained.save(out / "cnn_rnn.pt")
    t_train = time.perf_counter() - t0
    detectors = [{"kind": "wls", "name": "wls", "significance": 0.01},
                 {"kind": "learned", "name": "cnn_rnn", "model": str(out / "cnn_rnn.pt")}]
    baselines = ROOT / "cosim" / "detection" / "baselines.py"
    detectors += [{"kind": "python", "name": n, "path": f"{baselines}:{c}", "window": 8, "fit": str(out / "dataset"),
                   "params": {"seed": args.seed}} for n, c in BASELINES.items()]
    results = {"train": {"days": args.days, "runs": card["runs"], "attack_steps": card["attack_steps"],
                         "steps": card["steps"], "dataset_s": round(t_data, 1), "train_s": round(t_train, 1),
                         "epochs": args.epochs, "val_history": trained.history, "threshold": trained.threshold}}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TESTS), figsize=(6 * len(TESTS), 5))
    for ax, name in zip(axes, TESTS):
        scn = yaml.safe_load((ROOT / "scenarios" / "attacks" / f"{name}.yaml").read_text())
        scn.pop("detector", None)
        scn["detectors"] = detectors
        scn["impact"] = {"baseline": False}
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(scn, sort_keys=False))
        t0 = time.perf_counter()
        with threadpool_limits(1):
            outcome = run_scenario(load_scenario(path), out / name)
        wall = time.perf_counter() - t0
        ts = read_timeseries(out / name / "timeseries.parquet")
        truth = ts["label.attack"].to_numpy(float) >= 0.5
        rows = {}
        for d in detectors:
            n, m = d["name"], outcome.metrics
            score = ts[f"detector.{n}.score"].to_numpy(float)
            rows[n] = {"roc_auc": roc_auc(score, truth), "tpr_at_1pct_fpr": tpr_at(score, truth, 0.01),
                       "tpr": m.get(f"{n}_detector_tpr"), "fpr": m.get(f"{n}_detector_fpr"),
                       "accuracy": float(((ts[f"detector.{n}.alarm"].to_numpy() >= 0.5) == truth).mean()),
                       "events_detected": m.get(f"{n}_detector_events_detected"),
                       "events": m.get(f"{n}_detector_events"),
                       "mean_time_to_detect_s": m.get(f"{n}_detector_mean_time_to_detect_s"),
                       **{k.removeprefix(f"{n}_detector_"): v for k, v in m.items()
                          if k.startswith(f"{n}_detector_tpr_")}}
            fx, fy = roc(score, truth)
            ax.plot(fx, fy, label=f"{n} (AUC {rows[n]['roc_auc']:.3f})")
        results[name] = {"steps": len(ts), "attack_steps": int(truth.sum()), "run_wall_s": round(wall, 1),
                         "detectors": rows}
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(title=name, xlabel="false-positive rate", ylabel="true-positive rate")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    res = ROOT / "benchmarks" / "results"
    fig.savefig(res / "bench_detectors_roc.png", dpi=110)
    (res / "bench_detectors.json").write_text(json.dumps(results, indent=2, default=float))
    for name in TESTS:
        print(f"\n{name}: {results[name]['attack_steps']} attack steps of {results[name]['steps']}")
        print(f"{'detector':10s} {'AUC':>6s} {'TPR@1%':>7s} {'TPR':>6s} {'FPR':>6s} {'acc':>6s} {'TTD s':>7s}")
        for n, r in results[name]["detectors"].items():
            ttd = r["mean_time_to_detect_s"]
            print(f"{n:10s} {r['roc_auc']:6.3f} {r['tpr_at_1pct_fpr']:7.3f} {r['tpr'] or 0:6.3f} {r['fpr'] or 0:6.3f} "
                  f"{r['accuracy']:6.3f} {ttd if ttd is not None else float('nan'):7.0f}")


if __name__ == "__main__":
    main()
