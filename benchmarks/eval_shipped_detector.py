"""The shipped learned detector beside WLS (and the scikit-learn baselines) on held-out IEEE 33 runs, per
attack kind, with 95 % intervals over seeds (models/detectors/*.md).

Runs `scenarios/attacks/fdi-stealthy.yaml` and `red-team-day.yaml` for real with seeds 7, 8, ...
(`--seeds`; no training day's: those are 100 + d) and the detectors side by side, as
benchmarks/bench_detectors.py does. A seed changes sensor noise, loads and clouds; the attacks'
times and targets are the files'. Per detector, scenario and seed: ROC AUC, TPR at 1 % FPR, TPR
(recall), FPR, precision, F1, accuracy and mean time to detect at its own threshold, and per attack
kind the AUC (that kind's steps against every clean step), TPR and mean time to detect; then per figure the mean over
seeds with its 95 % percentile-bootstrap interval (`cosim.evaluate.stats`).
`--heldout DATASET` also scores a held-out dataset (runs of other dates, layouts, attack times,
targets and strengths) offline, run by run, with WLS's largest-normalised-residual test and, where
the dataset records it (`wls.chi2`), the chi-square test and the model's union with it, and with
`--baselines DATASET` the scikit-learn baselines (`cosim.detection.baselines`) fitted once on that
dataset's train runs. There the stealthy steps are also split by target, at a DER bus or at load buses only.
Writes `<out>/eval.json` and prints the markdown tables of the model card.
Usage: python benchmarks/eval_shipped_detector.py [--model models/detectors/ieee33-cnn-rnn.pt]
       [--seeds 10] [--baselines DATASET] [--heldout DATASET]... [--out runs/eval-shipped]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_detectors import BASELINES, TESTS, test_scenario, tpr_at  # noqa: E402
from cosim.evaluate.stats import summarize  # noqa: E402
from cosim.detection.dataset import CHI2  # noqa: E402
from cosim.detection.kinds.learned import union_score  # noqa: E402
from cosim.detection.wls import bonferroni_lnr  # noqa: E402
from cosim.events.impact import Confusion, roc_auc  # noqa: E402
from cosim.report.data import attack_kind_masks  # noqa: E402
from cosim.results import read_timeseries  # noqa: E402
from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402

FIRST_SEED = 7
FIGURES = ("roc_auc", "tpr_at_1pct_fpr", "tpr", "fpr", "precision", "f1", "accuracy", "mean_time_to_detect_s")


def detectors_of(model: Path) -> list[dict]:
    """WLS at 1 % significance, the checkpoint alone and the checkpoint with WLS's chi-square test
    (`wls_test: chi2`, the union of both alarms), side by side in a run."""
    return [{"kind": "wls", "name": "wls", "significance": 0.01},
            {"kind": "learned", "name": "cnn_rnn", "model": str(model.resolve()), "wls_test": "none"},
            {"kind": "learned", "name": "cnn_rnn_chi2", "model": str(model.resolve()), "wls_test": "chi2"}]


def time_to_detect(steps: np.ndarray, alarm: np.ndarray, step_s: float) -> float:
    """Mean seconds from the start of each contiguous attacked stretch to its first alarm (detected ones only)."""
    edges = np.flatnonzero(np.diff(np.r_[0, steps.astype(int), 0]))
    delays = [np.argmax(alarm[a:b]) * step_s for a, b in zip(edges[::2], edges[1::2]) if alarm[a:b].any()]
    return float(np.mean(delays)) if delays else math.nan


def step_seconds(times: pd.Series) -> float:
    """The run's step in seconds (the median spacing of its times)."""
    return float(np.median(np.diff(times.to_numpy()).astype("timedelta64[s]").astype(float)))


def figures(score: np.ndarray, alarm: np.ndarray, truth: np.ndarray, kinds: dict[str, np.ndarray],
            step_s: float) -> dict:
    """One detector on one run: AUC, TPR at 1 % FPR, TPR, FPR, precision, F1, accuracy and TTD at its own alarm,
    and per attack kind (`kinds`: its steps, `attack_kind_masks`) AUC against every clean step, TPR and TTD."""
    c = Confusion.of(alarm, truth)
    per_kind = {kind: {"steps": int(steps.sum()), "roc_auc": roc_auc(score[steps | ~truth], steps[steps | ~truth]),
                       "tpr": float(alarm[steps].mean()), "ttd_s": time_to_detect(steps, alarm, step_s)}
                for kind, steps in kinds.items()}
    return {"roc_auc": roc_auc(score, truth), "tpr_at_1pct_fpr": tpr_at(score, truth, 0.01), "tpr": c.tpr,
            "fpr": c.fpr, "precision": c.precision, "f1": c.f1, "accuracy": float((alarm == truth).mean()),
            "mean_time_to_detect_s": time_to_detect(truth, alarm, step_s), "kinds": per_kind}


def evaluate(name: str, seed: int, detectors: list[dict], out: Path) -> dict:
    """One real run of test scenario `name` with `seed`; per detector the figures, overall and per kind."""
    from threadpoolctl import threadpool_limits

    path = test_scenario(name, "full", detectors, out, seed)
    with threadpool_limits(1):
        run_scenario(load_scenario(path), out / path.stem)
    ts = read_timeseries(out / path.stem / "timeseries.parquet")
    truth = ts["label.attack"].to_numpy(float) >= 0.5
    kinds, step_s = attack_kind_masks(ts, truth), step_seconds(ts["time"])
    rows = {d["name"]: figures(ts[f"detector.{d['name']}.score"].to_numpy(float),
                               ts[f"detector.{d['name']}.alarm"].to_numpy(float) >= 0.5, truth, kinds, step_s)
            for d in detectors}
    return {"seed": seed, "steps": len(ts), "attack_steps": int(truth.sum()), "detectors": rows}


def cost_per_step(name: str, detectors: list[dict], out: Path) -> dict[str, float]:
    """Milliseconds per step of each detector as a run calls it (`step(k, seen)`), on the seen values the first
    run of `name` recorded; building (and fitting) the detectors is left out."""
    import time

    from cosim.assembly import assemble
    from cosim.detection.runtime import build_detectors

    path = test_scenario(name, "full", detectors, out, FIRST_SEED)
    ts = read_timeseries(out / path.stem / "timeseries.parquet")
    asm = assemble(load_scenario(path))
    names = [c.removeprefix("seen.") for c in ts.columns if c.startswith("seen.")]
    rows = [dict(zip(names, row)) for row in ts[[f"seen.{n}" for n in names]].to_numpy(float).tolist()]
    out_ms = {}
    for running in build_detectors(asm):
        t0 = time.perf_counter()
        for k, seen in enumerate(rows):
            running.detector.step(k, seen)
        out_ms[running.name] = 1000 * (time.perf_counter() - t0) / len(rows)
    return out_ms


def fit_baselines(dataset: Path | None) -> dict:
    """The scikit-learn baselines fitted on the train runs of `dataset` (none without one)."""
    from cosim.detection import baselines as sk
    from cosim.detection.dataset import read_dataset

    if dataset is None:
        return {}
    train = read_dataset(dataset)
    X, y = train.windows(train.signals, 8, split="train")
    fitted = {n: getattr(sk, c)() for n, c in BASELINES.items()}
    for b in fitted.values():
        b.fit(X, y)
    return fitted


def stealthy_by_bus(part: pd.DataFrame, kinds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stealthy steps split by target: at a bus hosting a DER (its true injection is positive at some step of
    the run: a PV or wind bus) or at a load bus only. Where PV and wind swing, a shift there looks like weather."""
    if "fdi_stealthy" not in kinds:
        return {}
    der = {int(c.split(".")[2]) for c in part.columns
           if c.startswith("true.bus.") and c.endswith(".p_mw") and (part[c] > 1e-6).any()}
    buses = part["label.target"].fillna("").str.extract(r"fdi_stealthy:buses ([\d,]+)")[0].fillna("")
    at_der = buses.map(lambda b: any(int(x) in der for x in b.split(",") if x)).to_numpy(bool)
    steps = kinds["fdi_stealthy"]
    split = {"fdi_stealthy at a DER bus": steps & at_der, "fdi_stealthy at load buses": steps & ~at_der}
    return {name: mask for name, mask in split.items() if mask.any()}


def heldout(dataset: Path, model: Path, fitted: dict) -> list[dict]:
    """Every run of a held-out dataset scored offline (the windows a run's detectors meet, `cosim.detection.windows`):
    the checkpoint, WLS's largest-normalised-residual test (its `resid.` columns, Bonferroni at 1 %) and the
    `fitted` baselines."""
    from cosim.detection.cnn_rnn import load
    from cosim.detection.dataset import read_dataset

    data, trained = read_dataset(dataset), load(model)
    lnr_threshold = bonferroni_lnr(0.01, len(data.signals))
    out = []
    for run, part in data.frame.groupby("run", sort=False):
        one = dataclasses.replace(data, frame=part)
        truth = part["label.attack"].to_numpy(float) >= 0.5
        kinds, step_s = attack_kind_masks(part, truth), step_seconds(part["time"])
        kinds.update(stealthy_by_bus(part, kinds))
        lnr = np.nanmax(np.abs(part[[f"resid.{n}" for n in data.signals]].to_numpy(float)), axis=1)
        scores = {"wls_lnr": (lnr, lnr > lnr_threshold)}
        if CHI2 in part:
            chi = part[CHI2].to_numpy(float)
            scores["wls"] = (chi, chi > 1.0)
        cnn = trained.score(one.windows(trained.layout.names, trained.hyper.window)[0])
        scores["cnn_rnn"] = (cnn, cnn >= trained.threshold)
        if CHI2 in part:  # the union a run's `wls_test: chi2` gives, from the same estimates
            union = union_score(cnn / trained.threshold, chi)
            scores["cnn_rnn_chi2"] = (union, union >= 1.0)
        windows = one.windows(data.signals, 8)[0]
        for n, b in fitted.items():
            s = b.scores(windows)
            scores[n] = (s, s >= b.threshold)
        out.append({"run": run, "steps": len(part), "attack_steps": int(truth.sum()),
                    "detectors": {n: figures(s, a, truth, kinds, step_s) for n, (s, a) in scores.items()}})
    return out


def summary(runs: list[dict]) -> dict:
    """Per detector: each figure's and each kind's AUC / TPR summary over the runs (mean, 95 % bootstrap interval)."""
    value = lambda v: math.nan if v is None else float(v)  # noqa: E731
    out = {}
    for n in runs[0]["detectors"]:
        rows = [r["detectors"][n] for r in runs]
        out[n] = {f: summarize(np.array([value(r[f]) for r in rows])) for f in FIGURES}
        kinds = sorted({k for r in rows for k in r["kinds"]})
        out[n]["kinds"] = {kind: {f: summarize(np.array([value(r["kinds"].get(kind, {}).get(f)) for r in rows]))
                                  for f in ("roc_auc", "tpr", "ttd_s")} for kind in kinds}
    return out


def cell(s: dict, digits: int = 3) -> str:
    """`mean [low, high]` of a summary (the bootstrap interval), `-` without finite values."""
    if not s.get("n"):
        return "-"
    low, high = s["boot_low"], s["boot_high"]
    ci = f" [{low:.{digits}f}, {high:.{digits}f}]" if low == low else ""
    return f"{s['mean']:.{digits}f}{ci}"


def markdown(results: dict) -> str:
    """The model card's tables per evaluation set: overall per detector, AUC / TPR / TTD per attack kind, and
    the cost per step where measured."""
    lines = []
    for name, res in results.items():
        names = list(res["summary"])
        lines += [f"### {name} ({len(res['runs'])} runs)", "",
                  "| detector | ROC AUC | TPR at 1 % FPR | TPR (recall) | FPR | precision | F1 | accuracy | TTD s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {n} | " + " | ".join(cell(s[f]) for f in FIGURES[:-1]) + f" | {cell(s['mean_time_to_detect_s'], 0)} |"
                  for n, s in res["summary"].items()]
        lines += ["", "| attack kind (steps per run) | " + " | ".join(f"{n} AUC / TPR / TTD s" for n in names) + " |",
                  "|---|" + "---|" * len(names)]
        for kind in res["summary"][names[0]]["kinds"]:
            steps = sum(r["detectors"][names[0]]["kinds"].get(kind, {}).get("steps", 0) for r in res["runs"])
            k = {n: res["summary"][n]["kinds"][kind] for n in names}
            cells = [f"{cell(k[n]['roc_auc'])} / {k[n]['tpr']['mean']:.3f} / {cell(k[n]['ttd_s'], 0).split(' [')[0]}"
                     for n in names]
            lines.append(f"| {kind} ({steps / len(res['runs']):.0f}) | " + " | ".join(cells) + " |")
        if "cost_ms_per_step" in res:
            lines += ["", "| " + " | ".join(f"{n} ms/step" for n in names) + " |", "|" + "---|" * len(names),
                      "| " + " | ".join(f"{res['cost_ms_per_step'][n]:.2f}" for n in names) + " |"]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "detectors" / "ieee33-cnn-rnn.pt")
    ap.add_argument("--seeds", type=int, default=10, help="runs per test scenario, seeds 7, 8, ... (0: none)")
    ap.add_argument("--baselines", type=Path, default=None,
                    help="a cosim dataset to fit the baselines on (scored on --heldout)")
    ap.add_argument("--heldout", type=Path, action="append", default=[],
                    help="a held-out cosim dataset (e.g. of scenarios/detection/ieee33-attacks.yaml --seed 1000), "
                         "scored offline run by run; repeat for several")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "eval-shipped")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    detectors = detectors_of(args.model)
    results = {}
    fitted = fit_baselines(args.baselines) if args.heldout else {}
    for dataset in args.heldout:
        runs = heldout(dataset, args.model, fitted)
        results[dataset.name] = {"runs": runs, "summary": summary(runs)}
    for name in TESTS if args.seeds else ():
        runs = [evaluate(name, FIRST_SEED + i, detectors, args.out) for i in range(args.seeds)]
        results[name] = {"runs": runs, "summary": summary(runs),
                         "cost_ms_per_step": cost_per_step(name, detectors, args.out)}
    (args.out / "eval.json").write_text(json.dumps(results, indent=2, default=float))
    print(markdown(results))


if __name__ == "__main__":
    main()
