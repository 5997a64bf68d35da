"""Pluggable detectors: the kind registry, python plug-ins and the learned CNN+RNN in real runs, datasets, NSABC."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cosim.assembly import assemble
from cosim.detection.dataset import generate, read_dataset
from cosim.detection.models import DETECTOR_KINDS, metering_of
from cosim.detection.nsabc import Param, nsabc
from cosim.detection.scoring import detectors_metrics
from cosim.events.impact import roc_auc
from cosim.recording import Recording
from cosim.scenario.loader import load_scenario
from cosim.world import run_world
from events_helpers import scenario_text

GROSS = "  - {{at: {at}, duration: {duration}, kind: fdi, target: bus.18.vm_pu, bias: -0.05}}\n"
RULE = """\
class LowVoltage:
    threshold = 0.03
    def setup(self, names):
        self.col = names.index("bus.18.vm_pu")
    def score(self, window):
        return float(1.0 - window[-1, self.col])
"""
RAISES = """\
class Broken:
    def score(self, window):
        raise RuntimeError("no")
"""


def write(tmp_path, detectors: str, events: str, duration: str = "2h", step: str = "5min", name: str = "s",
          seed: int = 5):
    path = tmp_path / f"{name}.yaml"
    text = scenario_text(detectors + "events:\n" + events, duration, step).replace("seed: 5", f"seed: {seed}")
    path.write_text(text, encoding="utf-8")
    return path


def real_run(path):
    """A real mosaik run of the scenario: its time series, its assembly, and the metrics the runner computes."""
    loaded = load_scenario(path)
    asm = assemble(loaded)
    recording = Recording(path.with_suffix(".parquet"), asm.inputs.times[0], asm.step_s)
    run_world(asm, recording)
    recording.close()
    ts = pd.read_parquet(path.with_suffix(".parquet"))
    return ts, asm, detectors_metrics(ts, loaded.scenario, asm.schedule, loaded.scenario.clock.step)


def test_registry_has_the_three_kinds_and_wls_is_the_default(tmp_path):
    assert set(DETECTOR_KINDS) == {"wls", "learned", "python"}
    scn = load_scenario(write(tmp_path, "detector: {significance: 0.05, alarm: any}\n", "  []\n")).scenario
    assert scn.detector.kind == "wls" and scn.detector.significance == 0.05 and scn.detector.alarm == "any"
    assert metering_of(scn) == scn.detector


def test_one_wls_detector_keeps_its_signals_and_metric_names(tmp_path):
    ts, _, metrics = real_run(write(tmp_path, "detector: {significance: 0.01}\n", GROSS.format(at="1h", duration="30min")))
    assert {"detector.alarm", "detector.score", "detector.chi2", "detector.lnr", "detector.suspect"} <= set(ts.columns)
    assert metrics["detector_tpr"] == 1.0  # a 0.05 pu bias against sigma 0.002 pu
    assert not any(k.startswith("wls_") for k in metrics)


def test_python_plugin_beside_wls_is_scored_like_a_hand_count(tmp_path):
    (tmp_path / "rule.py").write_text(RULE, encoding="utf-8")
    detectors = "detectors:\n  - {kind: wls}\n  - {kind: python, name: low, path: rule.py:LowVoltage}\n"
    ts, _, metrics = real_run(write(tmp_path, detectors, GROSS.format(at="1h", duration="30min")))
    # independent count: the rule on the recorded seen value against the recorded labels
    alarm = (1.0 - ts["seen.bus.18.vm_pu"].to_numpy()) >= 0.03
    truth = ts["label.attack"].to_numpy() >= 0.5
    assert np.array_equal(ts["detector.low.alarm"].to_numpy() >= 0.5, alarm)
    assert metrics["low_detector_tpr"] == pytest.approx((alarm & truth).sum() / truth.sum())
    assert metrics["low_detector_fpr"] == pytest.approx((alarm & ~truth).sum() / (~truth).sum())
    assert metrics["wls_detector_tpr"] == 1.0 and "detector_tpr" not in metrics


def test_a_plugin_that_raises_is_an_event_and_the_run_goes_on(tmp_path):
    (tmp_path / "broken.py").write_text(RAISES, encoding="utf-8")
    ts, asm, _ = real_run(write(tmp_path, "detector: {kind: python, path: broken.py:Broken}\n", "  []\n", "30min"))
    assert len(ts) == 6 and ts["detector.score"].isna().all()
    assert [(e.kind, e.target, e.start, e.end) for e in asm.events.events] == [("detector_error", "python", 0, 6)]


def test_dataset_is_deterministic_for_a_seed_and_changes_with_it(tmp_path):
    path = write(tmp_path, "", GROSS.format(at="30min", duration="20min"), "1h")
    loaded = load_scenario(path)
    a = generate([loaded], 2, tmp_path / "a")
    generate([loaded], 2, tmp_path / "b")
    fa, fb = read_dataset(tmp_path / "a").frame, read_dataset(tmp_path / "b").frame
    pd.testing.assert_frame_equal(fa, fb)
    assert a["runs"] == {"train": 1, "val": 0, "test": 1} and a["attack_steps"] == 2 * 4
    assert list(fa.groupby("run")["split"].first()) == ["train", "test"]
    other = dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={"seed": 6}))
    generate([other], 1, tmp_path / "c")
    fc = read_dataset(tmp_path / "c").frame
    assert not np.allclose(fc.filter(like="seen.").to_numpy(), fa[fa["day"] == 0].filter(like="seen.").to_numpy())


def test_learned_detector_trained_briefly_beats_chance_on_a_held_out_day(tmp_path):
    from cosim.detection.cnn_rnn import Hyper
    from cosim.detection.train import fit

    gross = GROSS.replace("bus.18.vm_pu", '"bus.*.vm_pu"')  # every voltage 0.05 pu low
    train_path = write(tmp_path, "", "".join(gross.format(at=a, duration="20min") for a in ("20min", "80min", "140min")),
                       "3h", "2min", "train")
    generate([load_scenario(train_path)], 3, tmp_path / "ds")
    trained = fit(read_dataset(tmp_path / "ds"), Hyper(epochs=8, conv_layers=2, neurons=16), seed=0)
    trained.save(tmp_path / "m.pt")
    # held out: another seed (noise, loads, clouds) and another attack time, through a real run
    held = write(tmp_path, "detector: {kind: learned, model: m.pt}\n", gross.format(at="110min", duration="30min"),
                 "3h", "2min", "held", seed=11)
    ts, _, metrics = real_run(held)
    assert metrics["detector_roc_auc"] > 0.8
    assert metrics["detector_roc_auc"] == pytest.approx(
        roc_auc(ts["detector.score"].to_numpy(), ts["label.attack"].to_numpy() >= 0.5))
    # trained on full metering, it cannot score the realistic meter set (the unmetered signals carry no noise)
    from cosim.scenario.errors import ScenarioError

    sparse = held.with_name("sparse.yaml")
    sparse.write_text(held.read_text() + "metering: sparse\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        assemble(load_scenario(sparse))
    text = " ".join(str(exc.value).split())
    assert "detector.model" in text and "another measurement set" in text and "bus.2.vm_pu" in text


@pytest.mark.parametrize("block, field, words", [
    ("detector: {kind: learned, model: missing.pt}\n", "detector.model", "does not exist"),
    ("detector: {kind: python, path: rule.py:Nope}\n", "detector.path", "no class 'Nope'"),
    ("detector: {kind: learned}\n", "detector.model", "missing required key"),
    ("detector: {kind: magic}\n", "detector", "magic"),
    ("detectors:\n  - {kind: wls}\n  - {kind: wls, alarm: lnr}\n", "", "distinct names"),
    ("detector: {kind: wls}\ndetectors: [{kind: wls}]\n", "", "not both"),
])
def test_bad_detector_config_exits_2_with_a_clear_message(tmp_path, cli, block, field, words):
    (tmp_path / "rule.py").write_text(RULE, encoding="utf-8")
    code, output, _ = cli("validate", write(tmp_path, block, "  []\n"))
    text = " ".join(output.split())
    assert code == 2 and "Traceback" not in text
    assert field in text and words in text


def test_train_detector_on_a_folder_without_a_dataset_exits_2(tmp_path, cli):
    code, output, _ = cli("train-detector", tmp_path, "--out", tmp_path / "m.pt")
    assert code == 2 and "steps.parquet is missing" in " ".join(output.split())


def test_train_detector_into_a_folder_writes_the_checkpoint_and_its_learning_curve(tmp_path, cli):
    """`--out DIR` (the issue's form): DIR/model.pt, and learning_curve.csv/.png with one row per epoch as the
    checkpoint's own history has it; a file where the folder should be exits 2."""
    import torch

    path = write(tmp_path, "", GROSS.format(at="1h", duration="40min"), "3h", "2min")
    assert cli("dataset", path, "--out", tmp_path / "ds", "--days", "3", "-q")[0] == 0
    code, output, _ = cli("train-detector", tmp_path / "ds", "--out", tmp_path / "det", "--epochs", "3",
                          "--conv-layers", "2")
    assert code == 0, output
    history = torch.load(tmp_path / "det" / "model.pt", map_location="cpu", weights_only=True)["history"]
    curve = pd.read_csv(tmp_path / "det" / "learning_curve.csv")
    assert list(curve["epoch"]) == [1, 2, 3]
    assert curve["train_loss"].tolist() == pytest.approx([e["train_loss"] for e in history])
    assert curve["val_auc"].tolist() == pytest.approx([e["val_auc"] for e in history])
    assert (tmp_path / "det" / "learning_curve.png").stat().st_size > 0
    (tmp_path / "taken").write_text("x")
    code, output, _ = cli("train-detector", tmp_path / "ds", "--out", tmp_path / "taken", "--epochs", "1")
    assert code == 2 and "--out" in output and "Traceback" not in output


def test_nsabc_finds_the_minimum_of_a_known_function():
    space = [Param("x", -5, 5), Param("y", -5, 5), Param("n", 1, 10, integer=True)]
    result = nsabc(lambda p: [(p["x"] - 1.5) ** 2 + (p["y"] + 2) ** 2 + (p["n"] - 7) ** 2], space,
                   employed=10, onlooker=10, scouts=20, iterations=40, seed=1)
    assert result.best["n"] == 7
    assert result.best["x"] == pytest.approx(1.5, abs=0.05) and result.best["y"] == pytest.approx(-2, abs=0.05)


def test_nsabc_spreads_along_a_known_pareto_front():
    # Schaffer's problem: f = (x^2, (x - 2)^2), Pareto-optimal exactly for x in [0, 2]
    result = nsabc(lambda p: [p["x"] ** 2, (p["x"] - 2) ** 2], [Param("x", -10, 10)],
                   employed=8, onlooker=8, scouts=10, iterations=20, seed=2)
    xs = np.array([x["x"] for x, _ in result.front])
    assert xs.min() > -0.05 and xs.max() < 2.05 and xs.max() - xs.min() > 1.5


@pytest.mark.slow
def test_train_detector_cli_with_nsabc_writes_a_loadable_checkpoint(tmp_path, cli):
    from cosim.detection.cnn_rnn import load

    path = write(tmp_path, "", GROSS.format(at="1h", duration="40min"), "3h", "2min")
    assert cli("dataset", path, "--out", tmp_path / "ds", "--days", "3", "-q")[0] == 0
    code, output, _ = cli("train-detector", tmp_path / "ds", "--out", tmp_path / "m.pt", "--epochs", "2",
                          "--tune", "nsabc", "--employed", "2", "--onlooker", "1", "--scouts", "2",
                          "--iterations", "1", "--conv-layers", "2")
    assert code == 0, output
    trained = load(tmp_path / "m.pt")
    assert trained.feeder == "ieee33" and 0 < trained.threshold < 1
    assert 16 <= trained.hyper.neurons <= 128 and 1 <= trained.hyper.layers <= 10


def test_dataset_residuals_point_at_the_biased_meter(tmp_path):
    """WLS's largest normalised residual names the one meter carrying a gross bias (25 sigma on a redundant meter)."""
    path = write(tmp_path, "", GROSS.format(at="30min", duration="20min"), "1h")
    generate([load_scenario(path)], 1, tmp_path / "ds")
    data = read_dataset(tmp_path / "ds")
    resid = data.frame[[f"resid.{n}" for n in data.signals]].abs()
    attacked = data.frame["label.attack"].to_numpy() >= 0.5
    assert set(resid[attacked].idxmax(axis=1)) == {"resid.bus.18.vm_pu"}
    assert resid[attacked].max(axis=1).min() > 10 and resid[~attacked].max(axis=1).max() < 6
    assert data.inputs(residuals=True)[len(data.signals)] == f"resid.{data.signals[0]}"


def test_learned_detector_on_residuals_catches_a_single_meter_bias_in_a_run(tmp_path):
    from cosim.detection.cnn_rnn import Hyper
    from cosim.detection.train import fit

    train_path = write(tmp_path, "", "".join(GROSS.format(at=a, duration="20min") for a in ("20min", "80min", "140min")),
                       "3h", "2min", "train")
    generate([load_scenario(train_path)], 3, tmp_path / "ds")
    trained = fit(read_dataset(tmp_path / "ds"), Hyper(epochs=8, conv_layers=2, neurons=16, residuals=True), seed=0)
    trained.save(tmp_path / "m.pt")
    assert sum(n.startswith("resid.") for n in trained.layout.names) == len(trained.layout.names) // 2
    held = write(tmp_path, "detector: {kind: learned, model: m.pt}\n", GROSS.format(at="110min", duration="30min"),
                 "3h", "2min", "held", seed=11)
    ts, _, metrics = real_run(held)  # the run estimates the residuals itself: the seen values are all it gets
    assert metrics["detector_roc_auc"] > 0.9


@pytest.mark.parametrize("baseline", ["LogisticBaseline", "ForestBaseline", "BoostedBaseline",
                                      "IsolationForestBaseline"])
def test_scikit_learn_baselines_fitted_on_a_dataset_catch_a_held_out_bias(tmp_path, baseline):
    """Every voltage 0.05 pu low (25 sigma): each baseline, fitted on 2 days as a python plug-in, ranks a held-out
    day's attacked steps above its clean ones."""
    from cosim.detection import baselines

    gross = GROSS.replace("bus.18.vm_pu", '"bus.*.vm_pu"')
    train_path = write(tmp_path, "", "".join(gross.format(at=a, duration="20min") for a in ("20min", "80min")),
                       "2h", "2min", "train")
    generate([load_scenario(train_path)], 2, tmp_path / "ds")
    block = f"detector: {{kind: python, path: {baselines.__file__}:{baseline}, window: 4, fit: ds}}\n"
    _, _, metrics = real_run(write(tmp_path, block, gross.format(at="50min", duration="30min"), "2h", "2min",
                                    "held", seed=11))
    assert metrics["detector_roc_auc"] > 0.9


def test_asinh_scaling_keeps_a_shift_visible_at_a_bus_whose_injection_swings_widely():
    """A PV bus: at -0.05 MW (its load) 60 % of the time, +1.95 MW otherwise; two load buses at -0.05 +- 0.02.
    Standardised per signal, a 0.2 MW shift at the PV bus's night value is 0.2 / 0.98 units; under `asinh` it is
    asinh(0.2 / 0.02) = asinh(10) = 2.998 (the family's median spread is the load buses' 0.02)."""
    from cosim.detection.features import Layout

    names = ["bus.1.p_mw", "bus.2.p_mw", "bus.3.p_mw"]
    n = 100
    load = np.tile([-0.07, -0.03], n // 2)
    pv = np.where(np.arange(n) < 60, -0.05, 1.95)
    values = np.column_stack([load, load, pv])
    night, shifted = np.array([[[-0.05, -0.05, -0.05]]]), np.array([[[-0.05, -0.05, 0.15]]])
    for scaling, expected in (("std", 0.2 / np.std(pv)), ("asinh", 2.998)):
        layout = Layout.fit(names, values, scaling)
        moved = layout.images(shifted) - layout.images(night)
        assert moved[0, 0, 0, 2] == pytest.approx(expected, abs=1e-3)
        assert np.count_nonzero(moved) == 1
        again = Layout.from_dict(layout.to_dict())
        assert again.scaling == scaling and np.array_equal(again.images(shifted), layout.images(shifted))
    with pytest.raises(ValueError, match="scaling"):
        Layout.fit(names, values, "minmax")


def test_train_detector_with_asinh_scaling_writes_it_into_the_checkpoint(tmp_path, cli):
    """`--scaling asinh` trains and loads back with that scaling; an unknown scaling exits 2 naming the option."""
    from cosim.detection.cnn_rnn import load

    path = write(tmp_path, "", GROSS.format(at="1h", duration="40min"), "3h", "2min")
    assert cli("dataset", path, "--out", tmp_path / "ds", "--days", "3", "-q")[0] == 0
    code, output, _ = cli("train-detector", tmp_path / "ds", "--out", tmp_path / "m.pt", "--epochs", "1",
                          "--conv-layers", "2", "--scaling", "asinh")
    assert code == 0, output
    trained = load(tmp_path / "m.pt")
    assert trained.layout.scaling == "asinh" and trained.hyper.scaling == "asinh"
    code, output, _ = cli("train-detector", tmp_path / "ds", "--out", tmp_path / "x.pt", "--scaling", "minmax")
    assert code == 2 and "--scaling" in output and "minmax" in output and "Traceback" not in output


def test_clock_features_are_the_time_of_day_and_of_year_on_the_unit_circle():
    """By hand: 06:00 is a quarter day (sin 1, cos 0); noon of 2 July (day 183) is (182.5 / 365.25) of a year."""
    from cosim.detection.features import clock_features

    got = clock_features(pd.DatetimeIndex(["2025-01-01 06:00", "2025-07-02 12:00"]))
    year = 2 * np.pi * np.array([0.25 / 365.25, 182.5 / 365.25])
    assert got[0, :2] == pytest.approx([1.0, 0.0], abs=1e-12)
    assert got[1, :2] == pytest.approx([0.0, -1.0], abs=1e-12)
    assert got[:, 2] == pytest.approx(np.sin(year)) and got[:, 3] == pytest.approx(np.cos(year))


def test_a_model_reading_the_clock_scores_a_run_as_it_scores_that_run_in_a_dataset(tmp_path):
    """`clock=True`: the run feeds the model the step's time as the dataset's windows do, so a real run's scores
    equal the offline scores of the same scenario and seed written by `cosim dataset`."""
    from cosim.detection.cnn_rnn import Hyper
    from cosim.detection.features import CLOCK
    from cosim.detection.train import fit

    train_path = write(tmp_path, "", "".join(GROSS.format(at=a, duration="20min") for a in ("20min", "80min")),
                       "2h", "5min", "train")
    generate([load_scenario(train_path)], 2, tmp_path / "ds")
    trained = fit(read_dataset(tmp_path / "ds"), Hyper(epochs=2, conv_layers=1, neurons=8, clock=True), seed=0)
    trained.save(tmp_path / "m.pt")
    assert trained.layout.names[-4:] == CLOCK and len(set(trained.layout.row[-4:])) == 1
    held = write(tmp_path, "detector: {kind: learned, model: m.pt}\n", GROSS.format(at="50min", duration="30min"),
                 "2h", "5min", "held", seed=11)
    ts, _, _ = real_run(held)
    generate([load_scenario(held)], 1, tmp_path / "ds-held")
    data = read_dataset(tmp_path / "ds-held")
    offline = trained.score(data.windows(trained.layout.names, trained.hyper.window)[0])
    assert ts["detector.score"].to_numpy() == pytest.approx(offline, abs=1e-6)
