"""`cosim train-detector`: the CNN+RNN detector trained on a `cosim dataset`, optionally tuned by NSABC or TPE."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from cosim.commands._common import app, err, fail, out


def checkpoint_target(out: Path) -> tuple[Path, Path | None]:
    """--out as the checkpoint path and the folder it names (None for a .pt file); exit 2 naming the option when
    a folder is asked for where a file is."""
    if out.suffix == ".pt":
        return out, None
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: expected a folder to write model.pt into (or a .pt checkpoint path), found a file")
    return out / "model.pt", out


def _seeds(text: str) -> list[int]:
    """`0,1,2` as distinct integers; exit 2 naming --seeds otherwise."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        fail(f"--seeds: expected comma-separated integers such as 0,1,2, got {text!r}")
    if len(values) < 2 or len(set(values)) != len(values):
        fail(f"--seeds: expected two or more distinct seeds, got {text!r}")
    return values


@app.command("train-detector")
def train_detector(dataset: Path = typer.Argument(..., help="a folder written by cosim dataset"),
                   out_path: Path = typer.Option(..., "--out", help="a folder (model.pt, learning_curve.csv/.png "
                                                 "written into it) or the checkpoint to write, a .pt file"),
                   epochs: int = typer.Option(10, "--epochs", min=1),
                   window: int = typer.Option(8, "--window", min=1, help="steps per window (the paper: 8)"),
                   conv_layers: int = typer.Option(6, "--conv-layers", min=1, help="the paper: 6"),
                   neurons: int = typer.Option(32, "--neurons", min=1, help="RNN hidden units"),
                   layers: int = typer.Option(1, "--layers", min=1, help="RNN layers"),
                   lr: float = typer.Option(0.003, "--lr", min=1e-6, help="the paper: 0.003"),
                   gamma: float = typer.Option(0.93, "--gamma", min=0.01, max=1.0, help="per-epoch LR decay (0.93)"),
                   arch: str = typer.Option("cnn_rnn", "--arch", help="cnn_rnn (the only architecture)"),
                   tune: str = typer.Option("none", "--tune", help="none | nsabc | optuna (TPE)"),
                   budget: Optional[int] = typer.Option(None, "--budget", min=1,
                                                        help="trainings of the search (optuna: 12 if not given)"),
                   employed: Optional[int] = typer.Option(None, "--employed", min=1,
                                                          help="NSABC employed bees [3] (paper: 120)"),
                   onlooker: Optional[int] = typer.Option(None, "--onlooker", min=0,
                                                          help="NSABC onlooker bees [2] (paper: 80)"),
                   scouts: Optional[int] = typer.Option(None, "--scouts", min=1,
                                                        help="NSABC scout bees, TPE's random first trials [4] "
                                                             "(paper: 150)"),
                   iterations: Optional[int] = typer.Option(None, "--iterations", min=0,
                                                            help="NSABC iterations [1; with --budget: until it "
                                                                 "is spent] (paper: 300)"),
                   target_fpr: float = typer.Option(0.01, "--target-fpr", min=0.0, max=0.5,
                                                    help="false-alarm rate of the threshold on validation windows"),
                   keep_best: bool = typer.Option(False, "--keep-best/--keep-last",
                                                  help="weights of the epoch with the best validation AUC"),
                   residuals: bool = typer.Option(False, "--residuals/--no-residuals",
                                                  help="also read each meter's WLS normalised residual"),
                   clock: bool = typer.Option(False, "--clock/--no-clock",
                                              help="also read the step's time of day and of year"),
                   scaling: str = typer.Option("std", "--scaling",
                                               help="input standardisation: std (per signal) | asinh (per-signal "
                                                    "median, per-family spread, asinh; docs/detection.md)"),
                   wls_test: str = typer.Option("none", "--wls-test",
                                                help="in a run, also alarm on this WLS test of the same estimate: "
                                                     "none | chi2 | lnr | any (the checkpoint's default)"),
                   seed: int = typer.Option(0, "--seed"),
                   seeds: Optional[str] = typer.Option(None, "--seeds",
                                                       help="comma-separated seeds, e.g. 0,1,2: one training "
                                                            "per seed, their logits averaged (an ensemble)")) -> None:
    """Train on the dataset's train runs, set the threshold on its validation runs, write the checkpoint."""
    import torch

    from cosim.detection.cnn_rnn import Hyper
    from cosim.detection.dataset import DatasetError, read_dataset
    from cosim.detection.train import fit, fit_ensemble, tune as search, write_curve
    from cosim.detection.features import SCALINGS
    from cosim.detection.kinds.wls import TESTS as WLS_TESTS

    if arch != "cnn_rnn":
        fail(f"--arch: the only architecture is cnn_rnn, got {arch!r}")
    if tune not in ("none", "nsabc", "optuna"):
        fail(f"--tune: expected none, nsabc or optuna, got {tune!r}")
    if wls_test not in ("none", *WLS_TESTS):
        fail(f"--wls-test: expected none, {', '.join(WLS_TESTS)}, got {wls_test!r}")
    if scaling not in SCALINGS:
        fail(f"--scaling: expected {' or '.join(SCALINGS)}, got {scaling!r}")
    out_path, folder = checkpoint_target(out_path)
    if tune == "none" and budget is not None:
        fail("--budget: counts the trainings of a search; give it with --tune nsabc or --tune optuna")
    members = _seeds(seeds) if seeds is not None else None
    if members is not None and (tune != "none" or seed != 0):
        fail("--seeds: trains an ensemble of the given seeds without a search; give it without --tune and --seed")
    try:
        data = read_dataset(dataset)
        if not (data.frame["split"] == "train").any():
            raise DatasetError(f"{dataset} has no train runs (make it with --days 2 or more)")
    except DatasetError as exc:
        fail(str(exc))
    torch.set_num_threads(1)  # small batches: threads cost more than they give, and results stay reproducible
    hyper = Hyper(lr=lr, gamma=gamma, window=window, conv_layers=conv_layers, neurons=neurons, layers=layers,
                  epochs=epochs, residuals=residuals, scaling=scaling, clock=clock)
    say = lambda e: err.print(f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}, val AUC {e['val_auc']:.4f}")  # noqa: E731
    extra = {}
    if tune != "none":
        given = {"employed": employed, "onlooker": onlooker, "scouts": scouts, "iterations": iterations}
        colony = {"employed": 3, "onlooker": 2, "scouts": 4, "iterations": 1 if budget is None else budget,
                  **{k: v for k, v in given.items() if v is not None}}  # budget iterations: always enough
        trial = lambda x, f: err.print(f"trial {x}: 1 - AUC {f[0]:.4f}, size {f[1]:.3f}e5 parameters")  # noqa: E731
        trained, result = search(data, hyper, seed, tune, colony, budget, target_fpr, trial)
        shape = {"colony": colony} if tune == "nsabc" else {"startup": colony["scouts"]}
        extra = {"search": {"method": tune, "budget": budget, **shape, "best": result.best,
                            "best_objectives": list(result.best_f),
                            "trials": [{"params": x, "objectives": list(f)} for x, f in result.evaluations],
                            "front": [{"params": x, "objectives": list(f)} for x, f in result.front]}}
        err.print(f"{tune}: {len(result.evaluations)} trainings, best {json.dumps(result.best)} "
                  f"(1 - AUC {result.best_f[0]:.4f})")
    elif members is not None:
        trained, ensemble_auc = fit_ensemble(data, hyper, members, target_fpr, say, keep_best)
        extra = {"keep_best": keep_best, "seeds": members}
    else:
        trained = fit(data, hyper, seed, target_fpr, say, keep_best)
        extra = {"keep_best": keep_best}
    trained.wls_test = wls_test
    out_path.parent.mkdir(parents=True, exist_ok=True)
    trained.save(out_path, {"dataset": str(dataset.resolve()), "seed": seed, **extra})
    if folder is not None:
        write_curve(trained.history, folder)
    if members is not None:
        auc = ensemble_auc
    else:
        aucs = [e["val_auc"] for e in trained.history if e["val_auc"] == e["val_auc"]] or [float("nan")]
        auc = max(aucs) if keep_best else aucs[-1]  # the AUC of the weights kept
    err.print(f"threshold {trained.threshold:.4f} (validation false-alarm rate {target_fpr:g}); "
              f"validation AUC {auc:.4f}{f' ({trained.members} seeds averaged)' if members else ''}; "
              f"hyperparameters {json.dumps(asdict(trained.hyper))}")
    out.print(str(out_path))
