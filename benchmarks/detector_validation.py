"""A checkpoint's ROC AUC on one split of a cosim dataset, pooled over its runs: overall and per attack kind (that
kind's steps against every clean step). The figure detector candidates are chosen by, on validation days, before
any held-out set is scored (models/detectors/ieee33-cnn-rnn.md, "Stealthy shifts at the DER buses").
Usage: python benchmarks/detector_validation.py DATASET MODEL... [--split val]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cosim.detection.cnn_rnn import load  # noqa: E402
from cosim.detection.dataset import read_dataset  # noqa: E402
from cosim.events.impact import roc_auc  # noqa: E402
from cosim.report.data import attack_kind_masks  # noqa: E402


def pooled(dataset: Path, model: Path, split: str) -> dict[str, float]:
    """Overall and per-kind AUC of the model alone over the split's runs (kinds absent from a run count as
    not attacked there)."""
    data, trained = read_dataset(dataset), load(model)
    scores, truth, kinds = [], [], []
    for _, part in data.frame.groupby("run", sort=False):
        if part["split"].iloc[0] != split:
            continue
        one = dataclasses.replace(data, frame=part)
        scores.append(trained.score(one.windows(trained.layout.names, trained.hyper.window)[0]))
        truth.append(part["label.attack"].to_numpy(float) >= 0.5)
        kinds.append(attack_kind_masks(part, truth[-1]))
    s, t = np.concatenate(scores), np.concatenate(truth)
    out = {"overall": roc_auc(s, t)}
    for kind in sorted({k for run in kinds for k in run}):
        mask = np.concatenate([run.get(kind, np.zeros(len(x), bool)) for run, x in zip(kinds, scores)])
        out[kind] = roc_auc(s[mask | ~t], mask[mask | ~t])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--split", default="val")
    args = ap.parse_args()
    for model in args.models:
        figures = pooled(args.dataset, model, args.split)
        print(f"{model}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
