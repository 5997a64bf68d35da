"""`cosim train-detector --seeds 0,1`: an ensemble of per-seed CNN+RNNs whose logits are averaged.

The ensemble's score is checked against the members' own logits (torch, outside the ensemble code), the CLI's
ensemble against one assembled from separately trained `--seed` checkpoints (training is reproducible, which is
how the shipped ensemble was assembled), and bad `--seeds` exits 2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli
from cosim.detection.cnn_rnn import ensemble, load, threshold_at
from cosim.detection.dataset import read_dataset
from cosim.detection.train import splits
from test_detectors import GROSS, write


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-day dataset with gross false data, `--seeds 0,1` and the two seeds trained alone."""
    tmp = tmp_path_factory.mktemp("ensemble")
    path = write(tmp, "", GROSS.format(at="1h", duration="40min"), "3h", "2min")
    assert run_cli("dataset", path, "--out", tmp / "ds", "--days", "3", "-q")[0] == 0
    base = ("--epochs", "2", "--conv-layers", "2")
    code, output, _ = run_cli("train-detector", tmp / "ds", "--out", tmp / "ens", "--seeds", "0,1", *base)
    assert code == 0, output
    for seed in (0, 1):
        code, output_one, _ = run_cli("train-detector", tmp / "ds", "--out", tmp / f"s{seed}.pt", "--seed",
                                      str(seed), *base)
        assert code == 0, output_one
    return tmp, output


def test_the_ensemble_averages_its_members_logits(trained):
    tmp, output = trained
    ens, members = load(tmp / "ens" / "model.pt"), [load(tmp / f"s{s}.pt") for s in (0, 1)]
    data = read_dataset(tmp / "ds")
    _, _, Xv, yv = splits(data, ens.hyper)
    x = torch.from_numpy(ens.layout.images(Xv))
    with torch.inference_mode():
        logits = [m.model.eval()(x).numpy() for m in members]
    expected = 1.0 / (1.0 + np.exp(-(logits[0] + logits[1]) / 2))
    assert ens.members == 2 and "2 seeds averaged" in " ".join(output.split())
    assert ens.score(Xv) == pytest.approx(expected, rel=1e-5)  # and so the CLI's trainings are reproducible
    assert ens.threshold == pytest.approx(threshold_at(expected, yv < 0.5, 0.01), rel=1e-5)
    curve = pd.read_csv(tmp / "ens" / "learning_curve.csv")
    assert curve[["seed", "epoch"]].values.tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]


def test_members_of_another_recipe_are_refused(trained):
    tmp, _ = trained
    one = load(tmp / "s0.pt")
    other = load(tmp / "s1.pt")
    other.hyper = type(other.hyper)(**{**vars(other.hyper), "neurons": other.hyper.neurons + 1})
    with pytest.raises(ValueError, match="layout and hyperparameters"):
        ensemble([one, other], [0, 1], np.zeros((1, 8, len(one.layout.names))), np.zeros(1))


@pytest.mark.parametrize("args, words", [
    (("--seeds", "0,x"), "comma-separated integers"),
    (("--seeds", "3"), "two or more distinct"),
    (("--seeds", "0,1", "--tune", "nsabc"), "without --tune"),
])
def test_bad_seeds_exit_2(trained, args, words):
    tmp, _ = trained
    code, output, _ = run_cli("train-detector", tmp / "ds", "--out", tmp / "bad.pt", "--epochs", "1", *args)
    assert code == 2 and words in " ".join(output.split()) and "Traceback" not in output
