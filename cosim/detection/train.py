"""Training the CNN+RNN detector on a dataset, optionally with its hyperparameters searched by NSABC."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from cosim.detection.cnn_rnn import Hyper, Trained, train
from cosim.detection.dataset import Dataset
from cosim.detection.nsabc import Param, Result, nsabc

# the paper's search ranges (neurons and layers of the RNN)
SPACE = (Param("lr", 1e-4, 1e-2, log=True), Param("gamma", 0.8, 0.99), Param("neurons", 16, 128, integer=True),
         Param("layers", 1, 10, integer=True))


def splits(data: Dataset, hyper: Hyper) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation windows of the inputs `hyper` reads (validation: the val runs, else the
    training runs themselves)."""
    names = data.inputs(hyper.residuals)
    X, y = data.windows(names, hyper.window, split="train")
    has_val = (data.frame["split"] == "val").any()
    Xv, yv = data.windows(names, hyper.window, split="val") if has_val else (X, y)
    return X, y, Xv, yv


def fit(data: Dataset, hyper: Hyper, seed: int, target_fpr: float = 0.01,
        on_epoch: Callable[[dict], None] | None = None, keep_best: bool = False) -> Trained:
    """One training run on the dataset's train split, threshold on its validation split (`keep_best`: the
    epoch of the best validation AUC)."""
    X, y, Xv, yv = splits(data, hyper)
    return train(X, y, Xv, yv, data.inputs(hyper.residuals), data.feeder, hyper, seed, target_fpr, on_epoch, keep_best)


def tune(data: Dataset, hyper: Hyper, seed: int, colony: dict, target_fpr: float = 0.01,
         on_trial: Callable[[dict, tuple], None] | None = None) -> tuple[Trained, Result]:
    """NSABC over the paper's ranges: objectives (1 - validation AUC, parameters / 10^5); then the best retrained."""
    from cosim.events.impact import roc_auc

    X, y, Xv, yv = splits(data, hyper)
    names = data.inputs(hyper.residuals)

    def objective(x: dict) -> tuple[float, float]:
        h = replace(hyper, **x)
        t = train(X, y, Xv, yv, names, data.feeder, h, seed, target_fpr)
        auc = roc_auc(t.score(Xv), yv >= 0.5)
        size = sum(p.numel() for p in t.model.parameters()) / 1e5
        f = (1.0 - (auc if np.isfinite(auc) else 0.5), size)
        if on_trial is not None:
            on_trial(x, f)
        return f

    result = nsabc(objective, SPACE, seed=seed, **colony)
    best = train(X, y, Xv, yv, names, data.feeder, replace(hyper, **result.best), seed, target_fpr)
    return best, result
