"""The shipped IEEE 33 detector (models/detectors/ieee33-cnn-rnn.pt): loads with torch alone, fits the feeder's
meters, and scores a held-out run in a real `cosim run`."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from conftest import REPO, SCENARIOS
from cosim.assembly import assemble
from cosim.scenario.loader import load_scenario

MODEL = REPO / "models" / "detectors" / "ieee33-cnn-rnn.pt"
TORCH_ONLY = """\
import json, sys, torch
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
leaked = sorted(m for m in sys.modules if m == "cosim" or m.startswith("cosim."))
print(json.dumps({"keys": sorted(ck), "format": ck["format"], "feeder": ck["feeder"], "names": ck["layout"]["names"],
                  "threshold": ck["threshold"], "tensors": all(isinstance(v, torch.Tensor)
                                                              for v in ck["state_dict"].values()), "leaked": leaked}))
"""


def test_the_checkpoint_is_small_and_loads_with_torch_only():
    assert MODEL.stat().st_size < 2_000_000
    done = subprocess.run([sys.executable, "-c", TORCH_ONLY, str(MODEL)], capture_output=True, text=True, cwd="/",
                          check=True)
    ck = json.loads(done.stdout)
    assert ck["leaked"] == [] and ck["tensors"]
    assert ck["format"] == "cosim-detector/1" and ck["feeder"] == "ieee33"
    assert 0.0 < ck["threshold"] < 1.0
    # the measurement set of the IEEE 33 attack scenarios, then each meter's WLS residual
    asm = assemble(load_scenario(SCENARIOS / "attacks" / "fdi-stealthy.yaml"))
    meters = list(asm.estimator.meters.names)
    assert sorted(ck["names"]) == sorted(meters + [f"resid.{n}" for n in meters])
    assert (REPO / "models" / "detectors" / "ieee33-cnn-rnn.md").is_file()


def test_a_real_run_of_a_held_out_stealthy_attack_is_scored_above_chance(tmp_path, cli):
    """Unseen seed, time and targets: buses 30 and 31 seem to inject 0.25 MW more (a = H c) for 30 of 120 steps."""
    scn = yaml.safe_load((SCENARIOS / "attacks" / "fdi-stealthy.yaml").read_text())
    scn.update(name="held-out", seed=23, clock={"start": "2025-06-21T12:00:00", "duration": "2h", "step": "1min"},
               detector={"kind": "learned", "model": str(MODEL)},
               events=[{"at": "50min", "duration": "30min", "kind": "fdi_stealthy", "buses": [30, 31],
                        "delta_p_mw": 0.25}])
    path = tmp_path / "held-out.yaml"
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    code, output, _ = cli("run", path, "--out", tmp_path / "run", "--quiet")
    assert code == 0, output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["detector_roc_auc"] > 0.5
    assert metrics["detector_tpr"] > metrics["detector_fpr"]


def test_a_checkpoint_from_another_version_is_bad_input_naming_the_model(tmp_path, cli):
    import torch

    ck = torch.load(MODEL, map_location="cpu", weights_only=True)
    ck["hyper"]["differences"] = True  # a hyperparameter this version does not know
    other = tmp_path / "other.pt"
    torch.save(ck, other)
    scn = yaml.safe_load((SCENARIOS / "attacks" / "fdi-stealthy.yaml").read_text())
    scn.update(detector={"kind": "learned", "model": str(other)})
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    code, output, _ = cli("run", path, "--out", tmp_path / "run", "--quiet")
    assert code == 2, output
    assert "detector.model" in output and "does not match" in output and "Traceback" not in output


def test_with_a_wls_test_the_model_alarms_wherever_the_same_test_alone_does(tmp_path, cli):
    """wls_test: chi2 beside a plain chi-square WLS detector in one run, a gross -0.04 pu bias on bus 18's
    voltage meter for 30 of 120 steps: the combined alarm is the union of the model's and the test's."""
    scn = yaml.safe_load((SCENARIOS / "attacks" / "fdi-stealthy.yaml").read_text())
    scn.pop("detector", None)
    scn.update(name="gross", seed=29, clock={"start": "2025-06-21T12:00:00", "duration": "2h", "step": "1min"},
               detectors=[{"kind": "wls", "name": "wls", "significance": 0.01},
                          {"kind": "learned", "name": "both", "model": str(MODEL), "wls_test": "chi2"}],
               events=[{"at": "50min", "duration": "30min", "kind": "fdi", "target": "bus.18.vm_pu", "bias": -0.04}])
    path = tmp_path / "gross.yaml"
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    code, output, _ = cli("run", path, "--out", tmp_path / "run", "--quiet")
    assert code == 0, output
    from cosim.results import read_timeseries

    ts = read_timeseries(tmp_path / "run" / "timeseries.parquet")
    wls, both = ts["detector.wls.alarm"] >= 0.5, ts["detector.both.alarm"] >= 0.5
    model = ts["detector.both.model_score"] >= torch_threshold()
    assert wls.sum() >= 25  # a gross bias: the chi-square test catches it
    assert (both == (wls | model)).all()
    assert (ts["detector.both.wls_score"] - ts["detector.wls.score"]).abs().max() < 1e-9  # the same estimate
    attacked = ts["label.attack"] >= 0.5
    assert both[attacked].mean() >= wls[attacked].mean()


def torch_threshold() -> float:
    """The shipped checkpoint's threshold, read with torch."""
    import torch

    return float(torch.load(MODEL, map_location="cpu", weights_only=True)["threshold"])
