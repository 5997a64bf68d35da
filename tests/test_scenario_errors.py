"""Every bad-input case of the scenario file: one clear paragraph, file/line/field, exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import BASE

CASES = {
    # name: (replace this, with that, expected line, expected field, words in the message)
    "yaml_syntax": ("grid: {feeder: ieee33}", "grid: {feeder: ieee33", 5, None, "flow mapping that starts on line 4"),
    "unknown_key": ("loads: {profile", "loads: {profil", 5, "loads.profil", "did you mean 'profile'"),
    "unknown_nested_key": ("p_mw: 1.0}", "p_mw: 1.0, cloudines: 0.2}", 7, "generators[0].cloudines", "did you mean 'cloudiness'"),
    "wrong_type": ("seed: 7", "seed: seven", 2, "seed", "valid integer"),
    "wrong_type_number": ("bus: 18, p_mw: 1.0", "bus: 18, p_mw: lots", 7, "generators[0].p_mw", "valid number"),
    "bus_missing": ("bus: 18", "bus: 34", 7, "generators[0].bus", "bus 34 does not exist on feeder ieee33 (bus numbers 1..33)"),
    "zero_duration": ("duration: 2h", "duration: 0h", 3, "clock.duration", "positive duration"),
    "negative_step": ("step: 5min", "step: -5min", 3, "clock.step", "cannot be negative"),
    "zero_step": ("step: 5min", "step: 0s", 3, "clock.step", "positive duration"),
    "step_not_dividing": ("step: 5min", "step: 7min", 3, "clock", "does not divide duration"),
    "bad_unit": ("duration: 2h", "duration: 2 hours", 3, "clock.duration", "units ms, s, min, h, d"),
    "missing_csv": ("profile: residential", "profile: csv:missing.csv", 5, "loads.profile", "does not exist"),
    "unknown_feeder": ("feeder: ieee33", "feeder: ieee34", 4, "grid.feeder", "unknown feeder 'ieee34'"),
    "unknown_simbench": ("feeder: ieee33", "feeder: simbench:no-such-code", 4, "grid.feeder", "unknown SimBench code"),
    "duplicate_names": ("name: wt1", "name: pv1", 8, "generators[1].name", "duplicate generator name 'pv1'"),
    "unknown_generator_kind": ("kind: wind", "kind: hydro", 8, "generators[1]", "unknown kind 'hydro'"),
    "missing_required": ("clock: {start: \"2025-06-21T00:00:00\", duration: 2h, step: 5min}",
                         "clock: {start: \"2025-06-21T00:00:00\", duration: 2h}", 3, "clock.step", "missing required key 'step'"),
    "bad_voltage_limits": ("grid: {feeder: ieee33}", "grid: {feeder: ieee33, voltage_limits: [1.05, 0.95]}", 4,
                           "grid.voltage_limits", "0 < low < high"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_names_file_line_field(case, write_scenario, cli):
    old, new, line, field, words = CASES[case]
    assert old in BASE
    path = write_scenario(BASE.replace(old, new, 1))
    code, output, result = cli("validate", path)
    assert code == 2, output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    text = " ".join(output.split())  # rich may wrap long lines
    assert str(path) in text.replace(" ", "") or path.name in text
    assert f"line {line}" in text
    if field:
        assert f"field {field}" in text
    assert words in text
    assert "Traceback" not in output


def test_valid_scenario_validates(write_scenario, cli):
    code, output, _ = cli("validate", write_scenario(BASE))
    assert code == 0 and "ok" in output


def test_missing_file_exit_2(tmp_path, cli):
    code, output, _ = cli("validate", tmp_path / "nope.yaml")
    assert code == 2 and "file not found" in output


def test_top_level_not_a_mapping(write_scenario, cli):
    code, output, _ = cli("validate", write_scenario("- just\n- a list\n"))
    assert code == 2 and "mapping" in output


def test_relative_csv_resolves_against_scenario_folder(tmp_path, write_scenario, cli, monkeypatch):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "load.csv").write_text("time,multiplier\n00:00,0.5\n12:00,1.0\n", encoding="utf-8")
    path = write_scenario(BASE.replace("profile: residential", "profile: csv:profiles/load.csv"))
    monkeypatch.chdir("/")
    code, output, _ = cli("validate", path)
    assert code == 0, output


def test_real_process_exit_code_and_no_traceback(write_scenario):
    path = write_scenario(BASE.replace("bus: 18", "bus: 99"))
    proc = subprocess.run([sys.executable, "-m", "cosim", "run", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "bus 99 does not exist" in " ".join(proc.stderr.split())
