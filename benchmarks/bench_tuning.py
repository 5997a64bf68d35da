"""NSABC against Optuna's TPE as the hyperparameter search of the CNN+RNN detector, at equal trainings.

1. the dataset `cosim dataset benchmarks/detectors/train-stealthy.yaml --days 5 --out runs/tune-ds -q`
   (made if `--dataset` does not exist; about 1 min);
2. for each seed, both searches of `cosim train-detector --tune nsabc|optuna --budget N` (the same
   code: `cosim.detection.train.tune`, the default colony, TPE's first `--scouts` trials at random as
   NSABC's scout bees) over lr, gamma, RNN neurons and layers, each trial a training of `--epochs`;
3. per search: the best validation AUC after each training (best-so-far curve), the best
   hyperparameters, the AUC of the best trial's model on the dataset's held-out test day, the wall time.

Writes benchmarks/results/bench_tuning.json and bench_tuning.md.
Usage: python benchmarks/bench_tuning.py [--budget 12] [--epochs 6] [--seeds 0,1,2,3,4] [--dataset runs/tune-ds]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.detection.cnn_rnn import Hyper  # noqa: E402
from cosim.detection.dataset import read_dataset  # noqa: E402
from cosim.detection.train import tune  # noqa: E402
from cosim.events.impact import roc_auc  # noqa: E402

METHODS = ("nsabc", "optuna")
COLONY = {"employed": 3, "onlooker": 2, "scouts": 4}  # train-detector's defaults


def best_so_far(trials: list[dict]) -> list[float]:
    """The best validation AUC among the first k trainings, for each k."""
    aucs = [1.0 - t["objectives"][0] for t in trials]
    return [max(aucs[:k + 1]) for k in range(len(aucs))]


def table(results: dict, budget: int, every: int) -> str:
    """Markdown: best-so-far AUC of each search and seed after every `every` trainings, then the best points."""
    ks = sorted(set(range(every, budget + 1, every)) | {1, budget})
    rows = ["| search | seed | " + " | ".join(f"after {k}" for k in ks) + " | wall s |",
            "|---|---|" + "---|" * (len(ks) + 1)]
    for r in results["runs"]:
        curve = r["best_so_far"]
        rows.append(f"| {r['method']} | {r['seed']} | " + " | ".join(f"{curve[min(k, len(curve)) - 1]:.3f}" for k in ks)
                    + f" | {r['wall_s']:.0f} |")
    for method in METHODS:  # the mean over seeds
        runs = [r for r in results["runs"] if r["method"] == method]
        mean = lambda k: sum(r["best_so_far"][min(k, len(r["best_so_far"])) - 1] for r in runs) / len(runs)  # noqa: E731
        rows.append(f"| **{method}** | mean | " + " | ".join(f"**{mean(k):.3f}**" for k in ks)
                    + f" | {sum(r['wall_s'] for r in runs) / len(runs):.0f} |")
    rows += ["", "| search | seed | best lr | gamma | neurons | layers | parameters | validation AUC | test AUC |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        b = r["best"]
        rows.append(f"| {r['method']} | {r['seed']} | {b['lr']:.2e} | {b['gamma']:.3f} | {b['neurons']} | {b['layers']} "
                    f"| {r['best_size'] * 1e5:,.0f} | {r['best_auc']:.3f} | {r['test_auc']:.3f} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    """Make the dataset if needed, run both searches per seed, write the JSON and the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=12, help="trainings per search")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--conv-layers", type=int, default=2)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--every", type=int, default=2, help="table columns: best AUC after every k trainings")
    ap.add_argument("--dataset", type=Path, default=ROOT / "runs" / "tune-ds")
    args = ap.parse_args()
    if not (args.dataset / "steps.parquet").exists():
        subprocess.run([str(Path(sys.executable).with_name("cosim")), "dataset",
                        str(ROOT / "benchmarks" / "detectors" / "train-stealthy.yaml"), "--days", "5",
                        "--out", str(args.dataset), "-q"], check=True)
    import torch

    torch.set_num_threads(1)  # as train-detector
    data = read_dataset(args.dataset)
    hyper = Hyper(epochs=args.epochs, conv_layers=args.conv_layers)
    Xt, yt = data.windows(data.inputs(), hyper.window, split="test")
    results: dict = {"dataset": str(args.dataset), "budget": args.budget, "epochs": args.epochs,
                     "conv_layers": args.conv_layers, "colony": COLONY, "runs": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        for method in METHODS:
            t0 = time.perf_counter()
            trained, result = tune(data, hyper, seed, method, {**COLONY, "iterations": args.budget}, args.budget)
            trials = [{"params": x, "objectives": list(f)} for x, f in result.evaluations]
            run = {"method": method, "seed": seed, "wall_s": time.perf_counter() - t0, "trials": trials,
                   "best_so_far": best_so_far(trials), "best": result.best, "best_auc": 1.0 - result.best_f[0],
                   "best_size": result.best_f[1], "test_auc": roc_auc(trained.score(Xt), yt >= 0.5)}
            results["runs"].append(run)
            print(f"{method} seed {seed}: {len(trials)} trainings in {run['wall_s']:.0f} s, best AUC "
                  f"{run['best_auc']:.4f} (test {run['test_auc']:.4f}) at {json.dumps(result.best)}", flush=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_tuning.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    md = table(results, args.budget, args.every)
    (out / "bench_tuning.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
