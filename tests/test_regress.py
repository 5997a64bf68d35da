"""`cosim regress`: criteria, baseline with tolerances, JUnit XML, exit codes 0 / 1 / 2, the process pool."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import SCENARIOS

SUNNY = """\
name: {name}
seed: 3
clock: {{start: "2025-06-21T11:00:00", duration: 1h, step: 5min}}
grid: {{feeder: ieee33}}
generators:
  - {{name: pv1, kind: pv, bus: 18, p_mw: 3.0, cloudiness: 0.0}}
criteria:
{criteria}
"""


@pytest.fixture
def suite(write_scenario):
    """Two short sunny-noon scenarios: `easy` meets its criteria without control, `strict` does not."""
    easy = write_scenario(SUNNY.format(name="easy", criteria="  nonconverged_steps: {max: 0}\n"
                                                            "  loss_energy_kwh: {max: 10000}"), "easy.yaml")
    strict = write_scenario(SUNNY.format(name="strict", criteria="  voltage_violation_bus_minutes: {max: 0}"), "strict.yaml")
    return easy, strict


def _junit(path):
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    return suite, {tc.get("name"): tc for tc in suite.iter("testcase")}


def test_criteria_decide_the_exit_code_and_the_junit_report(suite, cli, tmp_path):
    easy, strict = suite
    code, output, _ = cli("regress", easy, strict, "-c", "none", "-j", "1", "--junit", tmp_path / "j.xml",
                          "--out", tmp_path / "runs")
    assert code == 1, output
    assert "voltage_violation_bus_minutes" in output and "required <= 0" in output
    ts, cases = _junit(tmp_path / "j.xml")
    assert (ts.get("tests"), ts.get("failures"), ts.get("errors")) == ("2", "1", "0")
    assert cases["easy"].find("failure") is None
    failure = cases["strict"].find("failure")
    assert "criteria.voltage_violation_bus_minutes" in failure.get("message")
    assert (tmp_path / "runs" / "strict" / "metrics.json").is_file()  # every run keeps its results folder

    code, output, _ = cli("regress", easy, "-c", "none", "-j", "1", "--junit", tmp_path / "k.xml", "--out", tmp_path / "r2")
    assert code == 0, output
    assert _junit(tmp_path / "k.xml")[0].get("failures") == "0"


def test_update_baseline_then_catch_a_regression(suite, cli, tmp_path):
    easy, _ = suite
    baseline = tmp_path / "baseline.json"
    args = ("regress", easy, "-c", "droop", "-j", "1", "--baseline", baseline, "--out", tmp_path / "runs")
    code, output, _ = cli(*args, "--update-baseline")
    assert code == 0, output
    data = json.loads(baseline.read_text())
    stored = data["results"]["droop"]["easy"]
    assert stored["loss_energy_kwh"] > 0 and "voltage_violation_bus_minutes" in stored and "tolerances" in data

    code, output, _ = cli(*args)
    assert code == 0, output

    stored["loss_energy_kwh"] *= 0.9  # the stored run had 10 % lower losses: today's run regressed
    stored["vm_max_pu"] += 0.01  # and a better maximum voltage ... only an improvement, which passes
    baseline.write_text(json.dumps(data))
    code, output, _ = cli(*args, "--junit", tmp_path / "j.xml")
    assert code == 1, output
    text = " ".join(output.split())
    assert "loss_energy_kwh" in text and "vm_max_pu improved" in text
    failure = _junit(tmp_path / "j.xml")[1]["easy"].find("failure")
    assert failure.get("message") == "1 check(s) failed: baseline.loss_energy_kwh"


@pytest.mark.parametrize("extra, words", [
    (("-c", "pid"), "controller SPEC 'pid'"),
    (("-c", "python:nowhere.py:C"), "nowhere.py does not exist"),
    (("-c", "droop", "--baseline", "missing.json"), "baseline file does not exist"),
    (("-c", "droop", "--update-baseline"), "--update-baseline needs --baseline"),
])
def test_bad_input_is_exit_2(suite, cli, tmp_path, monkeypatch, extra, words):
    monkeypatch.chdir(tmp_path)
    code, output, result = cli("regress", suite[0], "-j", "1", "--out", tmp_path / "runs", *extra)
    assert code == 2, output
    assert words in " ".join(output.split()) and "Traceback" not in output


def test_unknown_criterion_and_missing_scenario_are_exit_2(write_scenario, cli, tmp_path):
    typo = write_scenario(SUNNY.format(name="typo", criteria="  loss_energy_kw: {max: 5}"), "typo.yaml")
    code, output, _ = cli("regress", typo, "-c", "none", "-j", "1", "--out", tmp_path / "runs")
    assert code == 2
    assert "criteria.loss_energy_kw: no such metric; did you mean 'loss_energy_kwh'?" in " ".join(output.split())
    code, output, _ = cli("regress", tmp_path / "nope.yaml", "-c", "none")
    assert code == 2 and "file not found" in output


@pytest.mark.slow  # a whole day or a real process; CI runs it in the slow step
def test_process_pool_gives_the_same_metrics_as_in_process(suite, cli, tmp_path):
    code, output, _ = cli("regress", *suite, "-c", "droop", "--out", tmp_path / "pool")  # default: one worker per core
    assert code == 1, output  # droop does not clear strict's violations
    cli("regress", *suite, "-c", "droop", "-j", "1", "--out", tmp_path / "serial")
    for name in ("easy", "strict"):
        a = json.loads((tmp_path / "pool" / name / "metrics.json").read_text())
        b = json.loads((tmp_path / "serial" / name / "metrics.json").read_text())
        assert a == b


def test_shipped_suite_meets_its_criteria_and_baseline(cli, tmp_path):
    code, output, _ = cli("regress", SCENARIOS / "regression", "-c", "droop", "-j", "1",
                          "--baseline", SCENARIOS / "regression" / "baseline.json", "--out", tmp_path / "runs")
    assert code == 0, output
    assert output.count("PASS") >= 3 and "10/10" in output


# A short high-PV noon with noisy loads and broken clouds: every seed gives another day.
NOISY = """\
name: noisy-noon
seed: 3
clock: {start: "2025-06-21T11:00:00", duration: 1h, step: 5min}
grid: {feeder: ieee33}
loads: {profile: residential, noise: 0.05}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 3.0, cloudiness: 0.5}
  - {name: pv2, kind: pv, bus: 33, p_mw: 1.5, cloudiness: 0.5}
criteria:
  voltage_violation_bus_minutes: {max: 300}
  nonconverged_steps: {max: 0}
"""


@pytest.fixture(scope="module")
def droop_baseline(tmp_path_factory):
    """The noisy scenario and a baseline of droop on its seeds 3..7 (made with --seeds 5)."""
    from typer.testing import CliRunner

    from cosim.cli import app

    root = tmp_path_factory.mktemp("seeds")
    scenario, baseline = root / "noisy.yaml", root / "baseline.json"
    scenario.write_text(NOISY, encoding="utf-8")
    result = CliRunner().invoke(app, [str(a) for a in ("regress", scenario, "-c", "droop", "-j", "1", "--seeds", "5",
                                                       "--baseline", baseline, "--update-baseline",
                                                       "--out", root / "base")])
    assert result.exit_code == 0, result.output
    return scenario, baseline


def test_baseline_with_seeds_keeps_every_seed(droop_baseline):
    entry = json.loads(droop_baseline[1].read_text())["results"]["droop"]["noisy-noon"]
    assert sorted(entry["seeds"]) == ["3", "4", "5", "6", "7"]
    losses = [v["loss_energy_kwh"] for v in entry["seeds"].values()]
    assert entry["loss_energy_kwh"] == pytest.approx(sum(losses) / 5)
    assert max(losses) - min(losses) > 1.0  # the seeds really are different days


def test_seeds_pass_on_noise(droop_baseline, cli, tmp_path):
    """The same controller on five other seeds: different numbers, no significant regression."""
    scenario, baseline = droop_baseline
    code, output, _ = cli("regress", scenario, "-c", "droop", "-j", "1", "--seeds", "5", "--seed-offset", "100",
                          "--baseline", baseline, "--out", tmp_path / "runs", "--junit", tmp_path / "j.xml")
    text = " ".join(output.split())
    assert code == 0, output
    assert "Welch t-test (the baseline has other seeds)" in text and "95 % CI [" in text and "p = " in text
    metrics = json.loads((tmp_path / "runs" / "noisy-noon" / "seed-103" / "metrics.json").read_text())
    stored = json.loads(baseline.read_text())["results"]["droop"]["noisy-noon"]["seeds"]["3"]
    assert metrics["loss_energy_kwh"] != stored["loss_energy_kwh"]  # noise, not a repeat of the baseline's runs
    props = {p.get("name"): p.get("value") for p in _junit(tmp_path / "j.xml")[1]["noisy-noon"].iter("property")}
    assert props["seeds"] == "103,104,105,106,107"
    assert float(props["baseline.loss_energy_kwh.p"]) >= 0.05 and "baseline.loss_energy_kwh.ci_low" in props
    assert props["criteria.voltage_violation_bus_minutes.max"] == "300"


def test_seeds_fail_on_a_real_regression(droop_baseline, cli, tmp_path):
    """No control against droop's per-seed baseline on the same seeds (paired): violations are significantly worse;
    the violation criterion, beyond on the mean but not significantly, still passes."""
    scenario, baseline = droop_baseline
    data = json.loads(baseline.read_text())
    data["results"]["none"] = data["results"]["droop"]  # as if `none` had once performed like droop
    worse = tmp_path / "baseline.json"
    worse.write_text(json.dumps(data))
    code, output, _ = cli("regress", scenario, "-c", "none", "-j", "1", "--seeds", "5", "--baseline", worse,
                          "--out", tmp_path / "runs", "--junit", tmp_path / "j.xml")
    text = " ".join(output.split())
    assert code == 1, output
    assert "FAIL voltage_violation_bus_minutes" in text and "paired t-test on 5 seeds" in text
    assert "significantly worse beyond the tolerance" in text
    assert "loss_energy_kwh improved significantly" in text  # no reactive power: lower losses
    failure = _junit(tmp_path / "j.xml")[1]["noisy-noon"].find("failure")
    assert "baseline.voltage_violation_bus_minutes" in failure.get("message")
    assert "criteria." not in failure.get("message")
    per_seed = [json.loads((tmp_path / "runs" / "noisy-noon" / f"seed-{s}" / "metrics.json").read_text())
                for s in range(3, 8)]
    violations = [m["voltage_violation_bus_minutes"] for m in per_seed]
    assert sum(violations) / 5 > 300 and "beyond, not significantly" in text  # the criterion's mean is beyond 300


@pytest.mark.parametrize("extra, words", [
    (("--seeds", "1"), "--seeds: expected 2 or more seeds"),
    (("--seeds", "5", "--alpha", "2"), "--alpha: expected a significance level strictly between 0 and 1"),
    (("--seeds", "5", "--alpha", "0"), "--alpha: expected a significance level"),
])
def test_bad_seed_options_are_exit_2(suite, cli, tmp_path, extra, words):
    code, output, _ = cli("regress", suite[0], "-c", "droop", "-j", "1", "--out", tmp_path / "runs", *extra)
    assert code == 2, output
    assert words in " ".join(output.split()) and "Traceback" not in output
    assert len(output.strip().splitlines()) <= 4 and not (tmp_path / "runs").exists()
