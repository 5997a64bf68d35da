"""Training the CNN+RNN detector on a dataset, optionally with its hyperparameters searched by NSABC or TPE."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from cosim.detection.cnn_rnn import Hyper, Trained, ensemble, train
from cosim.detection.dataset import Dataset
from cosim.detection.nsabc import Param, Result, nsabc, summary

# the paper's search ranges (neurons and layers of the RNN)
SPACE = (Param("lr", 1e-4, 1e-2, log=True), Param("gamma", 0.8, 0.99), Param("neurons", 16, 128, integer=True),
         Param("layers", 1, 10, integer=True))
TPE_TRIALS = 12  # TPE's trainings without a budget: as many as NSABC's default colony spends at most


def splits(data: Dataset, hyper: Hyper) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation windows of the inputs `hyper` reads (validation: the val runs, else the
    training runs themselves)."""
    names = data.inputs(hyper.residuals, hyper.clock)
    X, y = data.windows(names, hyper.window, split="train")
    has_val = (data.frame["split"] == "val").any()
    Xv, yv = data.windows(names, hyper.window, split="val") if has_val else (X, y)
    return X, y, Xv, yv


def fit(data: Dataset, hyper: Hyper, seed: int, target_fpr: float = 0.01,
        on_epoch: Callable[[dict], None] | None = None, keep_best: bool = False) -> Trained:
    """One training run on the dataset's train split, threshold on its validation split (`keep_best`: the
    epoch of the best validation AUC)."""
    X, y, Xv, yv = splits(data, hyper)
    return train(X, y, Xv, yv, data.inputs(hyper.residuals, hyper.clock), data.feeder, hyper, seed, target_fpr, on_epoch, keep_best)


def fit_ensemble(data: Dataset, hyper: Hyper, seeds: Sequence[int], target_fpr: float = 0.01,
                 on_epoch: Callable[[dict], None] | None = None,
                 keep_best: bool = False) -> tuple[Trained, float]:
    """One training per seed (as `fit`), averaged into an ensemble whose threshold is set on validation; with
    the ensemble's validation AUC."""
    from cosim.events.impact import roc_auc

    X, y, Xv, yv = splits(data, hyper)
    names = data.inputs(hyper.residuals, hyper.clock)
    members = [train(X, y, Xv, yv, names, data.feeder, hyper, s, target_fpr, on_epoch, keep_best) for s in seeds]
    trained = ensemble(members, seeds, Xv, yv, target_fpr)
    return trained, roc_auc(trained.score(Xv), yv >= 0.5)


class Trainings:
    """The objective both searches minimise: one training per call, (1 - validation AUC, parameters / 10^5);
    keeps the model of the best call (lowest 1 - AUC, then size) so that the best is not trained twice."""

    def __init__(self, data: Dataset, hyper: Hyper, seed: int, target_fpr: float = 0.01,
                 on_trial: Callable[[dict, tuple], None] | None = None) -> None:
        self.data, self.hyper, self.seed, self.target_fpr, self.on_trial = data, hyper, seed, target_fpr, on_trial
        self.X, self.y, self.Xv, self.yv = splits(data, hyper)
        self.best: tuple[tuple[float, float], Trained] | None = None

    def __call__(self, x: dict) -> tuple[float, float]:
        """Train with the searched values `x` over the base hyperparameters; the objectives."""
        from cosim.events.impact import roc_auc

        t = train(self.X, self.y, self.Xv, self.yv, self.data.inputs(self.hyper.residuals, self.hyper.clock), self.data.feeder,
                  replace(self.hyper, **x), self.seed, self.target_fpr)
        auc = roc_auc(t.score(self.Xv), self.yv >= 0.5)
        f = (1.0 - (auc if np.isfinite(auc) else 0.5), sum(p.numel() for p in t.model.parameters()) / 1e5)
        if self.best is None or f < self.best[0]:
            self.best = (f, t)
        if self.on_trial is not None:
            self.on_trial(x, f)
        return f


def tpe(objective: Callable[[dict], Sequence[float]], space: Sequence[Param], trials: int, seed: int = 0,
        startup: int = 10) -> Result:
    """Minimise the first of `objective`'s values over `space` with Optuna's TPE in `trials` evaluations
    (the first `startup` at random); the result as NSABC's (front over every value, best on the first)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    evaluations: list[tuple[dict, tuple[float, ...]]] = []

    def run(trial: optuna.Trial) -> float:
        x = {p.name: trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log) if p.integer
             else trial.suggest_float(p.name, p.low, p.high, log=p.log) for p in space}
        f = tuple(float(v) for v in objective(x))
        evaluations.append((x, f))
        return f[0]

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    optuna.create_study(sampler=sampler).optimize(run, n_trials=trials)
    return summary(evaluations)


def tune(data: Dataset, hyper: Hyper, seed: int, method: str, colony: dict, budget: int | None = None,
         target_fpr: float = 0.01, on_trial: Callable[[dict, tuple], None] | None = None) -> tuple[Trained, Result]:
    """The paper's ranges searched by `method` (nsabc: `colony`, at most `budget` trainings; optuna: TPE,
    `budget` (else TPE_TRIALS) trainings, the first `colony["scouts"]` at random); the best trial's model
    and the search."""
    objective = Trainings(data, hyper, seed, target_fpr, on_trial)
    if method == "nsabc":
        result = nsabc(objective, SPACE, seed=seed, budget=budget, **colony)
    else:
        result = tpe(objective, SPACE, TPE_TRIALS if budget is None else budget, seed, startup=colony["scouts"])
    return objective.best[1], result


def write_curve(history: Sequence[dict], folder: Path) -> None:
    """The learning curve (one row per epoch: train loss, validation AUC; per seed for an ensemble) as
    learning_curve.csv and .png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    seeded = any("seed" in e for e in history)
    frame = pd.DataFrame(list(history), columns=["seed"] * seeded + ["epoch", "train_loss", "val_auc"])
    frame.to_csv(folder / "learning_curve.csv", index=False)
    fig, loss = plt.subplots(figsize=(7, 4))
    auc = loss.twinx()
    for i, (seed, part) in enumerate(frame.groupby("seed") if seeded else [(None, frame)]):
        shade = max(0.3, 1 - 0.2 * i)
        loss.plot(part["epoch"], part["train_loss"], marker=".", color="tab:blue", alpha=shade,
                  label="" if seed is None else f"seed {seed}")
        auc.plot(part["epoch"], part["val_auc"], marker=".", color="tab:red", alpha=shade)
    if seeded:
        loss.legend(loc="center right")
    loss.set_xlabel("epoch")
    loss.set_ylabel("training loss", color="tab:blue")
    auc.set_ylabel("validation ROC AUC", color="tab:red")
    fig.tight_layout()
    fig.savefig(folder / "learning_curve.png", dpi=100)
    plt.close(fig)
