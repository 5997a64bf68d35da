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

All of it under each metering (`--metering`, default every one): full (today's 163 meters),
realistic (sparse: substation V, P, Q, the feeder-end voltages, 30 % load pseudo-measurements with
errors correlated over 2 h) and realistic+model_error (the same, the WLS detector's line
impedances 20 % off). Each metering trains its own CNN+RNN and baselines on training days metered
the same way (realistic+model_error reuses realistic's); the CNN+RNN trained on full metering is
offered to the other meterings to record the loader's refusal.

Writes benchmarks/results/bench_detectors.json and bench_detectors_roc.png.
Usage: python benchmarks/bench_detectors.py [--days 6] [--epochs 5] [--metering full,realistic,...]
       [--out runs/bench-detectors]
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

from cosim.detection.dataset import generate, read_dataset  # noqa: E402
from cosim.detection.train import fit  # noqa: E402
from cosim.events.impact import roc_auc  # noqa: E402
from cosim.report.plots.detection import roc_points  # noqa: E402
from cosim.results import read_timeseries  # noqa: E402
from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.errors import ScenarioError  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402

TESTS = ("fdi-stealthy", "red-team-day")
TRAIN = ROOT / "benchmarks" / "detectors" / "train-day.yaml"
# full: today's 163 meters (no metering block); realistic: substation V, P, Q, the 4 feeder-end voltages, load
# pseudo-measurements at 30 % error correlated over 2 h; +model_error: the detector's line r and x 20 % off
METERING = {"full": None,
            "realistic": {"preset": "sparse", "pseudo_loads": {"error": 0.3, "correlation_time": "2h"}},
            "realistic+model_error": {"preset": "sparse", "pseudo_loads": {"error": 0.3, "correlation_time": "2h"},
                                      "model_error": {"line_r": 0.2, "line_x": 0.2, "seed": 0}}}
BASELINES = {"logreg": "LogisticBaseline", "forest": "ForestBaseline", "boosted": "BoostedBaseline",
             "iforest": "IsolationForestBaseline"}


def tpr_at(score: np.ndarray, truth: np.ndarray, fpr: float) -> float:
    """TPR at the threshold that leaves at most `fpr` of the clean steps alarmed."""
    s = np.nan_to_num(score, nan=-np.inf)
    neg = np.sort(s[~truth])
    thr = neg[len(neg) - int(np.floor(fpr * len(neg))) - 1] if len(neg) else -np.inf
    return float((s[truth] > thr).mean()) if truth.any() else float("nan")


def trained_detectors(metering: str, args: argparse.Namespace, out: Path) -> tuple[list[dict], dict]:
    """Dataset of the training days under `metering`, the CNN+RNN trained on it and the baselines fitted to it."""
    from cosim.detection.cnn_rnn import Hyper

    scn = yaml.safe_load(TRAIN.read_text())
    if METERING[metering] is not None:
        scn["metering"] = METERING[metering]
    out.mkdir(parents=True, exist_ok=True)
    (out / "train-day.yaml").write_text(yaml.safe_dump(scn, sort_keys=False))
    t0 = time.perf_counter()
    card = generate([load_scenario(out / "train-day.yaml")], args.days, out / "dataset")
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
    return detectors, {"days": args.days, "runs": card["runs"], "attack_steps": card["attack_steps"],
                       "steps": card["steps"], "dataset_s": round(t_data, 1), "train_s": round(t_train, 1),
                       "epochs": args.epochs, "val_history": trained.history, "threshold": trained.threshold}


def test_scenario(name: str, metering: str, detectors: list[dict], out: Path, seed: int | None = None) -> Path:
    """The test scenario with the detectors side by side under `metering` (and `seed`, default the file's),
    written to `out`."""
    scn = yaml.safe_load((ROOT / "scenarios" / "attacks" / f"{name}.yaml").read_text())
    if seed is not None:
        scn["seed"] = seed
    scn.pop("detector", None)
    scn["detectors"] = detectors
    scn["impact"] = {"baseline": False}
    if METERING[metering] is not None:
        scn["metering"] = METERING[metering]
    path = out / f"{name}-{metering}{'' if seed is None else f'-seed{seed}'}.yaml"
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    return path


def refusal(name: str, metering: str, model: Path, out: Path) -> str | None:
    """The loader's message when the full-metering CNN+RNN is asked to score `metering` (None: accepted)."""
    from cosim.assembly import assemble

    path = test_scenario(name, metering, [{"kind": "learned", "name": "cnn_full", "model": str(model)}], out)
    try:
        assemble(load_scenario(path))
    except ScenarioError as exc:
        return str(exc).replace(str(ROOT) + "/", "")
    return None


def score_run(name: str, metering: str, detectors: list[dict], out: Path) -> dict:
    """One real run of a test scenario; per detector AUC, TPR at 1 % FPR, TPR / FPR, accuracy, TTD, TPR per kind."""
    from threadpoolctl import threadpool_limits

    path = test_scenario(name, metering, detectors, out)
    t0 = time.perf_counter()
    with threadpool_limits(1):
        outcome = run_scenario(load_scenario(path), out / f"{name}-{metering}")
    wall = time.perf_counter() - t0
    ts = read_timeseries(out / f"{name}-{metering}" / "timeseries.parquet")
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
                      if k.startswith(f"{n}_detector_tpr_")},
                   "roc": [a.tolist() for a in roc_points(score, truth)]}
    return {"steps": len(ts), "attack_steps": int(truth.sum()), "run_wall_s": round(wall, 1), "detectors": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--metering", default=",".join(METERING), help=f"comma-separated of {', '.join(METERING)}")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-detectors")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    results: dict = {"metering": {}}
    trained: dict[str, list[dict]] = {}
    for metering in args.metering.split(","):
        base = "realistic" if metering.startswith("realistic") else metering
        if base not in trained:  # realistic+model_error detects with the realistic models (the error is the grid's)
            trained[base], results["metering"][f"train_{base}"] = trained_detectors(base, args, args.out / base)
        detectors = trained[base]
        res = results["metering"].setdefault(metering, {"spec": METERING[metering]})
        for name in TESTS:
            res[name] = score_run(name, metering, detectors, args.out)
            print(table(name, metering, res[name]), flush=True)
        if metering != "full" and "full" in trained:
            res["cnn_full_refused"] = refusal(TESTS[0], metering, args.out / "full" / "cnn_rnn.pt", args.out)
            print("cnn_rnn trained on full metering:", res["cnn_full_refused"] or "accepted", flush=True)
        write(results)  # after each metering: a late failure keeps what was measured
    print(markdown(results["metering"]))


def write(results: dict) -> None:
    """bench_detectors.json (without the ROC points) and the ROC plot."""
    res_dir = ROOT / "benchmarks" / "results"
    plot_rocs(results["metering"], res_dir / "bench_detectors_roc.png")
    slim = json.loads(json.dumps(results, default=float))
    for res in slim["metering"].values():
        for name in TESTS:
            for row in res.get(name, {}).get("detectors", {}).values():
                row.pop("roc", None)
    (res_dir / "bench_detectors.json").write_text(json.dumps(slim, indent=2))


def table(name: str, metering: str, res: dict) -> str:
    """One scenario's detectors as text lines."""
    lines = [f"\n{name} under {metering}: {res['attack_steps']} attack steps of {res['steps']}",
             f"{'detector':10s} {'AUC':>6s} {'TPR@1%':>7s} {'TPR':>6s} {'FPR':>6s} {'acc':>6s} {'TTD s':>7s}"]
    for n, r in res["detectors"].items():
        ttd = r["mean_time_to_detect_s"]
        lines.append(f"{n:10s} {r['roc_auc']:6.3f} {r['tpr_at_1pct_fpr']:7.3f} {r['tpr'] or 0:6.3f} "
                     f"{r['fpr'] or 0:6.3f} {r['accuracy']:6.3f} {ttd if ttd is not None else float('nan'):7.0f}")
    return "\n".join(lines)


def markdown(by_metering: dict) -> str:
    """The side-by-side tables of docs/detection.md: AUC / TPR / FPR / TTD per metering, then TPR per attack kind."""
    meterings = [m for m in by_metering if not m.startswith("train_")]
    head = "| scenario | detector | " + " | ".join(f"{m} AUC / TPR / FPR / TTD s" for m in meterings) + " |"
    lines = [head, "|---|---|" + "---|" * len(meterings)]
    for name in TESTS:
        for n in by_metering[meterings[0]][name]["detectors"]:
            cells = []
            for m in meterings:
                r = by_metering[m][name]["detectors"][n]
                ttd = r["mean_time_to_detect_s"]
                cells.append(f"{r['roc_auc']:.2f} / {r['tpr'] or 0:.2f} / {r['fpr'] or 0:.3f} / "
                             f"{'-' if ttd is None or ttd != ttd else f'{ttd:.0f}'}")
            lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    kinds = sorted({k.removeprefix("tpr_") for m in meterings for r in by_metering[m][TESTS[-1]]["detectors"].values()
                    for k in r if k.startswith("tpr_") and k != "tpr_at_1pct_fpr"})
    lines += ["", f"TPR per attack kind on {TESTS[-1]}:", "",
              "| metering | detector | " + " | ".join(kinds) + " |", "|---|---|" + "---|" * len(kinds)]
    for m in meterings:
        for n, r in by_metering[m][TESTS[-1]]["detectors"].items():
            lines.append(f"| {m} | {n} | " + " | ".join(f"{r.get('tpr_' + k, 0):.2f}" for k in kinds) + " |")
    return "\n".join(lines)


def plot_rocs(by_metering: dict, path: Path) -> None:
    """ROC curves: a row per metering, a column per test scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [m for m in by_metering if not m.startswith("train_")]
    fig, axes = plt.subplots(len(rows), len(TESTS), figsize=(6 * len(TESTS), 5 * len(rows)), squeeze=False)
    for axrow, metering in zip(axes, rows):
        for ax, name in zip(axrow, TESTS):
            for n, r in by_metering[metering][name]["detectors"].items():
                ax.plot(*r["roc"], label=f"{n} (AUC {r['roc_auc']:.3f})")
            ax.plot([0, 1], [0, 1], "k:", lw=0.8)
            ax.set(title=f"{name}, {metering}", xlabel="false-positive rate", ylabel="true-positive rate")
            ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
