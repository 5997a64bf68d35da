"""Simulators in their own process or on another host (`placement`): the same run as in-process, and bad placements.

The reference is the same scenario run with every simulator in-process: a remote grid, inputs,
controller, detector or bridge rebuilds its part from the scenario and must give the same time
series, metrics, events and audit entries, bit for bit (with devices: all but what is measured
on the wall clock, which differs between two in-process runs too). Real mosaik worlds, real
processes, real TCP on 127.0.0.1, emulated devices as firmware stubs on 127.0.0.1.
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
from cosim.assembly import RunOptions
from cosim.results import read_timeseries
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from hil_support import free_port, inverter_scenario

# Physical events (disruptions travel to the grid as plain data), a command injection the DER rating
# clips (events and the metric `setpoints_clipped` come back from the grid's process), a measurement
# attack, a WLS detector and a python one that fails every 7th step (`detector_error` events come back
# from the detector's process), the droop controller's commands in the audit chain.
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
detectors:
  - {kind: wls, significance: 0.01}
  - {kind: python, name: rule, path: rule.py:LowOrFailing}
impact: {baseline: false}
events:
  - {at: 30min, duration: 1h, kind: line_outage, line: 7}
  - {at: 1h, duration: 30min, kind: load_step, bus: 25, factor: 1.5}
  - {at: 90min, duration: 30min, kind: command_injection, target: pv2.q_mvar, value: -5}
  - {at: 150min, duration: 20min, kind: fdi, target: bus.18.vm_pu, bias: -0.04}
"""
RULE = """\
class LowOrFailing:
    threshold = 0.05
    calls = 0
    def setup(self, names):
        self.col = names.index("bus.18.vm_pu")
    def score(self, window):
        self.calls += 1
        if self.calls % 7 == 0:
            raise RuntimeError("every 7th window")
        return float(1.0 - window[-1, self.col])
"""
# Measured on the wall clock: they differ between two in-process runs with devices as well.
WALL_CLOCK_COLUMNS = ("inv1.rtt_ms", "inv1.io_ms", "bridge.step_ms")
WALL_CLOCK_METRICS = ("bridge_requests",  # heartbeat polls until the firmware ticked
                      "bridge_rtt_", "bridge_step_", "rt_")


def _write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    """The scenario file and the python detector it names."""
    (folder / "rule.py").write_text(RULE, encoding="utf-8")
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


@pytest.fixture
def write_scenario(tmp_path):
    """`_write` into the test's folder."""
    return lambda text, name="scenario.yaml": _write(tmp_path, text, name)


def _run(write_scenario, tmp_path: Path, name: str, placement: str = "", text: str = SCENARIO,
         options: RunOptions | None = None) -> tuple[pd.DataFrame, dict, str, list]:
    path = write_scenario(text + placement, f"{name}.yaml")
    out = tmp_path / name
    outcome = run_scenario(load_scenario(path), out, options=options)
    assert outcome.status == "ok", outcome.message
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    entries = sorted(json.dumps({k: v for k, v in e.items() if k not in ("seq", "prev", "hash")}, sort_keys=True)
                     for e in audit if "step" in e)  # order across simulators may differ; the facts may not
    return read_timeseries(out / "timeseries.parquet"), outcome.metrics, (out / "events.csv").read_text(), entries


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The scenario with every simulator in-process."""
    tmp = tmp_path_factory.mktemp("in-process")
    return _run(lambda text, name: _write(tmp, text, name), tmp, "in-process")


def _same(run, reference, wall_clock: bool = False) -> None:
    """Equal time series, metrics, events.csv and audit entries; `wall_clock`: but for what is measured on it."""
    ts, metrics, events, audit = run
    ref_ts, ref_metrics, ref_events, ref_audit = reference
    if wall_clock:
        ts, ref_ts = (t.drop(columns=[c for c in WALL_CLOCK_COLUMNS if c in t]) for t in (ts, ref_ts))
        metrics, ref_metrics = ({k: v for k, v in m.items() if not k.startswith(WALL_CLOCK_METRICS)}
                                for m in (metrics, ref_metrics))
    pd.testing.assert_frame_equal(ts, ref_ts, check_exact=True)
    assert json.dumps(metrics, sort_keys=True) == json.dumps(ref_metrics, sort_keys=True)  # NaN equal to NaN
    assert events == ref_events
    assert audit == ref_audit


@pytest.mark.slow
def test_grid_and_controller_in_their_own_processes_give_the_in_process_run(write_scenario, tmp_path, reference):
    _, ref_metrics, ref_events, ref_audit = reference
    assert ref_metrics["setpoints_clipped"] > 0 and "setpoint_clipped" in ref_events  # the relay has work to do
    assert any('"kind": "command"' in e for e in ref_audit)
    run = _run(write_scenario, tmp_path, "processes", "placement: {grid: process, controller: process}\n")
    _same(run, reference)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["inputs", "detector"])
def test_inputs_or_detector_in_its_own_process_gives_the_in_process_run(write_scenario, tmp_path, reference, key):
    _, ref_metrics, ref_events, _ = reference
    assert "detector_error" in ref_events and "rule_detector_tpr" in ref_metrics  # the detector has work to do
    run = _run(write_scenario, tmp_path, key, f"placement: {{{key}: process}}\n")
    _same(run, reference)


CURTAIL = """\
from controllers.base import Controller


class Curtail(Controller):
    def act(self, observation):
        return {"pv1.p_limit_mw": 0.4} if observation["time.step"] >= 6 else {}
"""
# Wire attacks: an in-flight FDI (wire_fdi events) and a rogue write from outside (device_write_unexpected).
WIRE = """\
wire:
  - {kind: fdi, at: 3s, duration: 4s, point: W, scale: 0.0}
  - {kind: command_injection, at: 9s, duration: 2s, point: VArPct_Ena, value: 1}
"""


@pytest.mark.slow
@pytest.mark.parametrize("options", [RunOptions(), RunOptions(realtime=0.05, read_only=True)],
                         ids=["as-fast-as-possible", "paced-read-only"])
def test_a_bridge_in_its_own_process_gives_the_in_process_run(tmp_path, options):
    """An emulated inverter on 127.0.0.1 (10-ms firmware ticks) driven by a python controller, with wire attacks:
    the bridge's process opens the connection, its device events, guard decisions and metrics come back."""
    (tmp_path / "curtail.py").write_text(CURTAIL, encoding="utf-8")

    def run(name: str, placement: str = ""):
        text = inverter_scenario(name, "14s", "{kind: python, path: curtail.py:Curtail}",
                                 device="stub_args: {ramp_rate: 100000, tick: 0.01}\n" + WIRE)
        return _run(lambda t, n: _write(tmp_path, t, n), tmp_path, name, placement, text, options)

    reference = run("bridge-in-process")
    ts, metrics, events, audit = reference
    kinds = set(pd.read_csv(tmp_path / "bridge-in-process" / "events.csv")["kind"])
    assert {"wire_fdi", "guard_blocked" if options.read_only else "device_write_unexpected"} <= kinds
    assert any('"kind": "modbus_write"' in e for e in audit) and metrics["bridge_requests"] > 0
    assert (metrics["guard_blocked_writes"] > 0) == options.read_only  # the option reached the bridge's process
    _same(run("bridge-process", "placement: {bridge: process}\n"), reference, wall_clock=True)


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
    ("{events: process}", "the events simulator runs in-process only"),
    ("{channels: \"connect 10.0.0.5:5678\"}", "the channels simulator runs in-process only"),
    ("{recorder: process}", "the recorder simulator runs in-process only"),
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


@pytest.mark.parametrize("key", ["controller", "inputs", "detector", "bridge"])
def test_the_entry_point_serves_mosaiks_remote_api(key):
    out = subprocess.run([sys.executable, "-m", f"cosim.sims.{key}", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "HOST:PORT" in out.stdout and "--remote" in out.stdout and "--keep-serving" in out.stdout


def test_a_remote_grid_refuses_field_devices(write_scenario, cli):
    text = (REPO / "scenarios" / "hil" / "ieee33-inverter.yaml").read_text(encoding="utf-8")
    path = write_scenario(text + "\nplacement: {grid: process}\n")
    code, output, _ = cli("validate", path)
    assert code == 2
    assert "grid: process cannot run with devices or a grid_server" in " ".join(output.split())


def test_a_remote_bridge_refuses_a_grid_server(write_scenario, cli):
    path = write_scenario(inverter_scenario("gs", "10s") + "grid_server: {port: 15020}\nplacement: {bridge: process}\n")
    code, output, _ = cli("validate", path)
    text = " ".join(output.split())
    assert code == 2 and path.name in text and "Traceback" not in output
    assert "placement" in text and "bridge: process cannot run with a grid_server" in text
