"""Hyperparameter search of the learned detector: TPE (Optuna) beside NSABC, at a budget of trainings."""

from __future__ import annotations

import pytest

from cosim.detection.nsabc import Param, nsabc
from cosim.detection.train import tpe
from events_helpers import scenario_text

BOWL = [Param("x", -5, 5), Param("y", -5, 5), Param("n", 1, 10, integer=True)]


def bowl(p: dict) -> list[float]:
    """Minimum 0 at x = 1.5, y = -2, n = 7."""
    return [(p["x"] - 1.5) ** 2 + (p["y"] + 2) ** 2 + (p["n"] - 7) ** 2]


def test_tpe_gets_near_the_minimum_of_a_known_function():
    result = tpe(bowl, BOWL, trials=80, seed=1)
    assert len(result.evaluations) == 80
    assert result.best["n"] == 7
    assert result.best["x"] == pytest.approx(1.5, abs=0.5) and result.best["y"] == pytest.approx(-2, abs=0.5)


def test_nsabc_with_a_budget_spends_exactly_that_many_evaluations():
    for budget in (2, 7, 23):  # inside the scouts' pool, inside the first iteration, several iterations on
        result = nsabc(bowl, BOWL, employed=3, onlooker=2, scouts=4, iterations=budget, seed=0, budget=budget)
        assert len(result.evaluations) == budget
        assert result.best_f == min(f for _, f in result.evaluations)


def test_train_detector_with_optuna_records_each_training_in_the_checkpoint(tmp_path, cli):
    import torch

    from cosim.detection.cnn_rnn import load
    from cosim.detection.dataset import generate
    from cosim.scenario.loader import load_scenario

    attack = "  - {at: 40min, duration: 40min, kind: fdi, target: \"bus.*.vm_pu\", bias: -0.05}\n"
    path = tmp_path / "s.yaml"
    path.write_text(scenario_text("events:\n" + attack, "2h", "5min"), encoding="utf-8")
    generate([load_scenario(path)], 3, tmp_path / "ds")
    code, output, _ = cli("train-detector", tmp_path / "ds", "--out", tmp_path / "m.pt", "--arch", "cnn_rnn",
                          "--tune", "optuna", "--budget", "2", "--epochs", "1", "--conv-layers", "2")
    assert code == 0, output
    search = torch.load(tmp_path / "m.pt", weights_only=True)["search"]
    assert search["method"] == "optuna" and search["budget"] == 2 and len(search["trials"]) == 2
    assert search["best_objectives"] == min(t["objectives"] for t in search["trials"])
    trained = load(tmp_path / "m.pt")
    assert {k: getattr(trained.hyper, k) for k in search["best"]} == search["best"]
    assert 0.0 <= search["best_objectives"][0] <= 1.0


@pytest.mark.parametrize("args, words", [
    (("--arch", "other"), ["--arch", "cnn_rnn", "'other'"]),
    (("--tune", "bogus"), ["--tune", "optuna", "'bogus'"]),
    (("--budget", "3"), ["--budget", "--tune nsabc"]),
])
def test_bad_search_options_exit_2_naming_the_option(tmp_path, cli, args, words):
    code, output, _ = cli("train-detector", tmp_path, "--out", tmp_path / "m.pt", *args)
    text = " ".join(output.split())
    assert code == 2 and "Traceback" not in text
    assert all(w in text for w in words), text
