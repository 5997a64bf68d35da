"""One WLS estimate per step shared by the run's WLS estimators on the same network and meters: real runs of a
shortened stealthy-attack scenario give every detector the signals it gives alone, each significance its own
chi-square threshold, and a `model_error` network its own estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import chi2

from conftest import REPO, SCENARIOS
from cosim.assembly import assemble
from cosim.detection.wls import WLS
from cosim.recording import Recording
from cosim.scenario.loader import load_scenario
from cosim.world import run_world

MODEL = REPO / "models" / "detectors" / "ieee33-cnn-rnn.pt"
STEPS = 45
WLS01 = {"kind": "wls", "name": "wls01", "significance": 0.01}
WLS05 = {"kind": "wls", "name": "wls05", "significance": 0.05}
LEARNED = {"kind": "learned", "name": "cnn_chi2", "model": str(MODEL), "wls_test": "chi2"}
MODEL_ERROR = {"preset": "full", "model_error": 0.1}  # 10 % on every line's r and x


def run(tmp_path, name: str, detectors: list[dict], metering: dict | None = None) -> tuple[pd.DataFrame, int]:
    """A real mosaik run of fdi-stealthy.yaml cut to 45 one-minute steps (attack from minute 15 to 35) with
    `detectors`: its time series and how many WLS estimates the detectors computed (the attacker's left out)."""
    scn = yaml.safe_load((SCENARIOS / "attacks" / "fdi-stealthy.yaml").read_text())
    scn.pop("detector")
    scn.update(name=name, clock={"start": "2025-06-21T10:00:00", "duration": f"{STEPS}min", "step": "1min"},
               detectors=detectors,
               events=[{"at": "15min", "duration": "20min", "kind": "fdi_stealthy", "buses": [17, 18],
                        "delta_p_mw": 0.3}])
    if metering is not None:
        scn["metering"] = metering
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    asm = assemble(load_scenario(path))
    calls = []
    estimate = WLS.estimate

    def observed(self, *args, **kwargs):
        calls.append(self is not asm.estimator)
        return estimate(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(WLS, "estimate", observed)
        recording = Recording(path.with_suffix(".parquet"), asm.inputs.times[0], asm.step_s)
        run_world(asm, recording)
        recording.close()
    ts = pd.read_parquet(path.with_suffix(".parquet"))
    assert len(ts) == STEPS
    return ts, sum(calls)


def signals(ts: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """The detector's recorded signals under `prefix`, renamed to their key."""
    cols = [c for c in ts.columns if c.startswith(prefix + ".")]
    return ts[cols].rename(columns=lambda c: c.removeprefix(prefix + "."))


@pytest.fixture(scope="module")
def together(tmp_path_factory):
    """The three detectors in one run: its time series and the detectors' WLS estimates."""
    return run(tmp_path_factory.mktemp("together"), "together", [WLS01, WLS05, LEARNED])


def test_three_detectors_share_one_estimate_per_step_and_signal_as_each_alone(tmp_path, together):
    ts, estimates = together
    assert estimates == STEPS  # one estimate per step for the three (each alone: one each)
    for spec in (WLS01, WLS05, LEARNED):
        alone, own = run(tmp_path, f"alone_{spec['name']}", [spec])
        assert own == STEPS
        pd.testing.assert_frame_equal(signals(ts, f"detector.{spec['name']}"), signals(alone, "detector"),
                                      check_exact=True)
        assert np.array_equal(ts.filter(like="seen.").to_numpy(), alone.filter(like="seen.").to_numpy(),
                              equal_nan=True)


def test_each_significance_keeps_its_own_chi_square_threshold_and_alarm(together):
    ts, _ = together
    J = ts["detector.wls01.chi2"].to_numpy()
    assert np.array_equal(J, ts["detector.wls05.chi2"].to_numpy())  # the same estimate
    dof = 163 - (2 * 33 - 1)  # IEEE 33, every meter in use (docs/detection.md): 163 meters, 65 states
    for name, significance in (("wls01", 0.01), ("wls05", 0.05)):
        threshold = chi2.ppf(1 - significance, dof)
        np.testing.assert_allclose(J / ts[f"detector.{name}.score"].to_numpy(), threshold, rtol=1e-12)
        assert np.array_equal(ts[f"detector.{name}.alarm"].to_numpy() == 1.0, J > threshold)
    # the learned block's chi-square test runs at the default 1 %: its ratio is wls01's score
    np.testing.assert_allclose(ts["detector.cnn_chi2.wls_score"], ts["detector.wls01.score"], rtol=1e-12)


def test_a_model_error_network_keeps_its_own_estimate_shared_by_its_blocks(tmp_path, together):
    """`model_error` is the run's (`metering:`): its blocks share one estimate on the perturbed network, which
    differs from the plain network's on the same seen values."""
    ts, _ = together
    perturbed, estimates = run(tmp_path, "perturbed", [WLS01, WLS05], MODEL_ERROR)
    alone, _ = run(tmp_path, "perturbed_alone", [WLS05], MODEL_ERROR)
    assert estimates == STEPS
    pd.testing.assert_frame_equal(signals(perturbed, "detector.wls05"), signals(alone, "detector"), check_exact=True)
    seen = [c for c in ts.columns if c.startswith("seen.")]
    assert np.array_equal(perturbed[seen].to_numpy(), ts[seen].to_numpy(), equal_nan=True)
    assert np.array_equal(perturbed["detector.wls01.chi2"], perturbed["detector.wls05.chi2"])
    assert not np.isclose(perturbed["detector.wls01.chi2"], ts["detector.wls01.chi2"], rtol=1e-6).any()
