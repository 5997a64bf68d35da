"""`cosim train-detector`: the CNN+RNN detector trained on a `cosim dataset`, optionally tuned by NSABC."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from cosim.commands._common import app, err, fail, out


@app.command("train-detector")
def train_detector(dataset: Path = typer.Argument(..., help="a folder written by cosim dataset"),
                   out_path: Path = typer.Option(..., "--out", help="checkpoint to write (model.pt)"),
                   epochs: int = typer.Option(10, "--epochs", min=1),
                   window: int = typer.Option(8, "--window", min=1, help="steps per window (the paper: 8)"),
                   conv_layers: int = typer.Option(6, "--conv-layers", min=1, help="the paper: 6"),
                   neurons: int = typer.Option(32, "--neurons", min=1, help="RNN hidden units"),
                   layers: int = typer.Option(1, "--layers", min=1, help="RNN layers"),
                   lr: float = typer.Option(0.003, "--lr", min=1e-6, help="the paper: 0.003"),
                   gamma: float = typer.Option(0.93, "--gamma", min=0.01, max=1.0, help="per-epoch LR decay (0.93)"),
                   tune: str = typer.Option("none", "--tune", help="none | nsabc"),
                   employed: int = typer.Option(3, "--employed", min=1, help="NSABC employed bees (paper: 120)"),
                   onlooker: int = typer.Option(2, "--onlooker", min=0, help="NSABC onlooker bees (paper: 80)"),
                   scouts: int = typer.Option(4, "--scouts", min=1, help="NSABC scout bees (paper: 150)"),
                   iterations: int = typer.Option(1, "--iterations", min=0, help="NSABC iterations (paper: 300)"),
                   target_fpr: float = typer.Option(0.01, "--target-fpr", min=0.0, max=0.5,
                                                    help="false-alarm rate of the threshold on validation windows"),
                   keep_best: bool = typer.Option(False, "--keep-best/--keep-last",
                                                  help="weights of the epoch with the best validation AUC"),
                   residuals: bool = typer.Option(False, "--residuals/--no-residuals",
                                                  help="also read each meter's WLS normalised residual"),
                   seed: int = typer.Option(0, "--seed")) -> None:
    """Train on the dataset's train runs, set the threshold on its validation runs, write the checkpoint."""
    import torch

    from cosim.detection.cnn_rnn import Hyper
    from cosim.detection.dataset import DatasetError, read_dataset
    from cosim.detection.train import fit, tune as tune_nsabc

    if tune not in ("none", "nsabc"):
        fail(f"--tune: expected none or nsabc, got {tune!r}")
    try:
        data = read_dataset(dataset)
        if not (data.frame["split"] == "train").any():
            raise DatasetError(f"{dataset} has no train runs (make it with --days 2 or more)")
    except DatasetError as exc:
        fail(str(exc))
    torch.set_num_threads(1)  # small batches: threads cost more than they give, and results stay reproducible
    hyper = Hyper(lr=lr, gamma=gamma, window=window, conv_layers=conv_layers, neurons=neurons, layers=layers,
                  epochs=epochs, residuals=residuals)
    say = lambda e: err.print(f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}, val AUC {e['val_auc']:.4f}")  # noqa: E731
    extra = {}
    if tune == "nsabc":
        colony = {"employed": employed, "onlooker": onlooker, "scouts": scouts, "iterations": iterations}
        trial = lambda x, f: err.print(f"trial {x}: 1 - AUC {f[0]:.4f}, size {f[1]:.3f}e5 parameters")  # noqa: E731
        trained, result = tune_nsabc(data, hyper, seed, colony, target_fpr, trial)
        extra = {"nsabc": {"colony": colony, "best": result.best, "trials": len(result.evaluations),
                           "front": [{"params": x, "objectives": list(f)} for x, f in result.front]}}
    else:
        trained = fit(data, hyper, seed, target_fpr, say, keep_best)
        extra = {"keep_best": keep_best}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    trained.save(out_path, {"dataset": str(dataset.resolve()), "seed": seed, **extra})
    aucs = [e["val_auc"] for e in trained.history if e["val_auc"] == e["val_auc"]] or [float("nan")]
    auc = max(aucs) if keep_best else aucs[-1]  # the AUC of the weights kept
    err.print(f"threshold {trained.threshold:.4f} (validation false-alarm rate {target_fpr:g}); "
              f"validation AUC {auc:.4f}; hyperparameters {json.dumps(asdict(trained.hyper))}")
    out.print(str(out_path))
