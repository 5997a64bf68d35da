"""The issue's detector keys `meters: full | realistic | FILE`, `noise_scale` and `model_error`: shorthand for the
run's `metering:` block, checked by real runs that must record exactly what the long form records."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from conftest import SCENARIOS

SHORT = {"start": "2025-06-21T12:00:00", "duration": "20min", "step": "1min"}


def scenario(tmp_path, name: str, detector: dict, metering=None, events=()) -> str:
    scn = yaml.safe_load((SCENARIOS / "attacks" / "fdi-stealthy.yaml").read_text())
    scn.update(name=name, seed=31, clock=SHORT, detector=detector, events=list(events))
    scn.pop("metering", None)
    if metering is not None:
        scn["metering"] = metering
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    return path


def recorded(cli, path, out) -> pd.DataFrame:
    code, output, _ = cli("run", path, "--out", out, "--quiet")
    assert code == 0, output
    return pd.read_parquet(out / "timeseries.parquet").filter(regex=r"^(seen\.|detector\.)")


@pytest.mark.parametrize("short, long", [
    ({"meters": "realistic", "noise_scale": 2.0, "model_error": 0.1},
     {"preset": "sparse", "noise": {"voltage": 0.004, "injection": 0.01, "flow": 0.01}, "model_error": 0.1}),
    ({"meters": "meters.yaml"},
     {"preset": "sparse", "voltage": ["substation", 9, 18], "flows": [1], "sigma": {"voltage": 0.003}}),
])
def test_detector_metering_keys_run_as_the_metering_block_they_stand_for(tmp_path, cli, short, long):
    (tmp_path / "meters.yaml").write_text(yaml.safe_dump(
        {"metering": {"preset": "sparse", "voltage": ["substation", 9, 18], "flows": [1], "sigma": {"voltage": 0.003}}}))
    a = recorded(cli, scenario(tmp_path, "short", {"kind": "wls", **short}), tmp_path / "a")
    b = recorded(cli, scenario(tmp_path, "long", {"kind": "wls"}, long), tmp_path / "b")
    assert len(a.filter(like="seen.").columns) < 173  # not the full set: the shorthand took effect
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("detector, metering, field, words", [
    ({"kind": "wls", "meters": "nowhere.yaml"}, None, "detector.meters", "cannot read"),
    ({"kind": "wls", "meters": "realistic"}, "full", "detector.meters", "given twice"),
    ({"kind": "wls", "meters": 3}, None, "detector.meters", "expected full, realistic"),
    ({"kind": "wls", "noise_scale": "loud"}, None, "detector.noise_scale", "expected a number"),
])
def test_bad_detector_metering_exits_2_naming_the_field(tmp_path, cli, detector, metering, field, words):
    code, output, _ = cli("run", scenario(tmp_path, "bad", detector, metering), "--out", tmp_path / "o", "--quiet")
    text = " ".join(output.split())
    assert code == 2 and field in text and words in text and "Traceback" not in text


def test_detectors_that_disagree_on_the_meters_exit_2(tmp_path, cli):
    path = scenario(tmp_path, "two", None)
    scn = yaml.safe_load(path.read_text())
    scn.pop("detector")
    scn["detectors"] = [{"kind": "wls", "name": "a", "meters": "full"}, {"kind": "wls", "name": "b", "meters": "realistic"}]
    path.write_text(yaml.safe_dump(scn, sort_keys=False))
    code, output, _ = cli("run", path, "--out", tmp_path / "o", "--quiet")
    assert code == 2 and "detectors[1].meters" in output and "share one metering" in " ".join(output.split())
