"""Simulators in their own process or on another host (`placement`): the same run as in-process, and bad placements.

The reference is the same scenario run with every simulator in-process: a remote grid and
controller rebuild their part from the scenario and must give the same time series, metrics,
events and audit entries, bit for bit. Real mosaik worlds, real processes, real TCP on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from cosim.results import read_timeseries
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from hil_support import free_port

# Physical events (disruptions travel to the grid as plain data), a command injection the DER rating
# clips (events and the metric `setpoints_clipped` come back from the grid's process), a measurement
# attack and a detector in-process, the droop controller's commands in the audit chain.
SCENARIO = """\
name: placement
seed: 7
clock: {start: "2025-06-21T09:00:00", duration: 3h, step: 5min}
grid: {feeder: ieee33, voltage_limits: [0.95, 1.05], line_max_i_ka: 0.4}
loads: {profile: residential, noise: 0.03}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 2.0, cloudiness: 0.2}
  - {name: pv2, kind: pv, bus: 33, p_mw: 1.5, cloudiness: 0.2}
  - {name: wt1, kind: wind, bus: 22, p_mw: 1.2}
controller: {kind: droop}
detector: {significance: 0.01}
impact: {baseline: false}
events:
  - {at: 30min, duration: 1h, kind: line_outage, line: 7}
  - {at: 1h, duration: 30min, kind: load_step, bus: 25, factor: 1.5}
  - {at: 90min, duration: 30min, kind: command_injection, target: pv2.q_mvar, value: -5}
  - {at: 150min, duration: 20min, kind: fdi, target: bus.18.vm_pu, bias: -0.04}
"""


def _run(write_scenario, tmp_path: Path, name: str, placement: str = "") -> tuple[pd.DataFrame, dict, str, list]:
    path = write_scenario(SCENARIO + placement, f"{name}.yaml")
    out = tmp_path / name
    outcome = run_scenario(load_scenario(path), out)
    assert outcome.status == "ok", outcome.message
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    entries = sorted(json.dumps({k: v for k, v in e.items() if k not in ("seq", "prev", "hash")}, sort_keys=True)
                     for e in audit if "step" in e)  # order across simulators may differ; the facts may not
    return read_timeseries(out / "timeseries.parquet"), outcome.metrics, (out / "events.csv").read_text(), entries


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The scenario with every simulator in-process."""
    tmp = tmp_path_factory.mktemp("in-process")

    def write(text: str, name: str) -> Path:
        (tmp / name).write_text(text, encoding="utf-8")
        return tmp / name

    return _run(write, tmp, "in-process")


def _same(run, reference) -> None:
    ts, metrics, events, audit = run
    ref_ts, ref_metrics, ref_events, ref_audit = reference
    pd.testing.assert_frame_equal(ts, ref_ts, check_exact=True)
    assert metrics == ref_metrics
    assert events == ref_events
    assert audit == ref_audit


@pytest.mark.slow
def test_grid_and_controller_in_their_own_processes_give_the_in_process_run(write_scenario, tmp_path, reference):
    _, ref_metrics, ref_events, ref_audit = reference
    assert ref_metrics["setpoints_clipped"] > 0 and "setpoint_clipped" in ref_events  # the relay has work to do
    assert any('"kind": "command"' in e for e in ref_audit)
    run = _run(write_scenario, tmp_path, "processes", "placement: {grid: process, controller: process}\n")
    _same(run, reference)


def _listening(port: int) -> bool:
    """Whether a socket listens on 127.0.0.1:`port` (read from /proc, without connecting: the server takes one run)."""
    want = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(r.split()[1] == want and r.split()[3] == "0A" for r in rows)


@pytest.mark.slow
def test_a_grid_served_elsewhere_gives_the_in_process_run(write_scenario, tmp_path, reference):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cosim.sims.grid", "--remote", f"127.0.0.1:{port}"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120  # a guard against a hung start, not a timing assertion
        while not _listening(port):
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the grid simulator did not start listening"
            time.sleep(0.2)
        run = _run(write_scenario, tmp_path, "connect", f'placement: {{grid: "connect 127.0.0.1:{port}"}}\n')
        assert server.wait(timeout=60) == 0  # it serves one run, then ends
    finally:
        if server.poll() is None:
            server.kill()
    _same(run, reference)


def test_connect_to_an_address_nothing_answers_fails_the_run_clearly(write_scenario, tmp_path, cli):
    port = free_port()
    path = write_scenario(SCENARIO + f'placement: {{grid: "connect 127.0.0.1:{port}"}}\n')
    code, output, _ = cli("run", path, "--out", tmp_path / "out", "-q")
    assert code == 1
    text = " ".join(output.split())
    assert f"placement.grid: the grid simulator could not be started: nothing answers at 127.0.0.1:{port}" in text
    assert f"python -m cosim.sims.grid --remote 127.0.0.1:{port}" in text
    assert "Traceback" not in output


@pytest.mark.parametrize("placement, expected", [
    ("{gird: process}", "unknown key 'gird'; did you mean 'grid'?"),
    ("{inputs: process}", "the inputs simulator runs in-process only"),
    ("{grid: elsewhere}", "expected in-process, process or \"connect HOST:PORT\""),
    ("{controller: \"connect 127.0.0.1\"}", "expected in-process, process or \"connect HOST:PORT\""),
])
def test_a_bad_placement_is_one_paragraph_and_exit_2(write_scenario, cli, placement, expected):
    path = write_scenario(SCENARIO + f"placement: {placement}\n")
    code, output, _ = cli("validate", path)
    assert code == 2
    text = " ".join(output.split())
    assert str(path.name) in text and "placement" in text and expected in text
    assert "Traceback" not in output and output.strip().count("\n\n") == 0


def test_an_oracle_controller_cannot_leave_the_grid_model(write_scenario, cli):
    path = write_scenario(SCENARIO.replace("{kind: droop}", "{kind: opf}") + "placement: {controller: process}\n")
    code, output, _ = cli("validate", path)
    assert code == 2
    assert "controller kind opf is an oracle" in " ".join(output.split())


def test_the_entry_point_serves_mosaiks_remote_api():
    out = subprocess.run([sys.executable, "-m", "cosim.sims.controller", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "HOST:PORT" in out.stdout and "--remote" in out.stdout and "--keep-serving" in out.stdout


def test_a_remote_grid_refuses_field_devices(write_scenario, cli):
    text = (REPO / "scenarios" / "hil" / "ieee33-inverter.yaml").read_text(encoding="utf-8")
    path = write_scenario(text + "\nplacement: {grid: process}\n")
    code, output, _ = cli("validate", path)
    assert code == 2
    assert "grid: process cannot run with devices or a grid_server" in " ".join(output.split())
