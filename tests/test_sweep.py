"""`cosim sweep`: the matrix, summary and report, failed runs, --resume, bad input, HIL ports, local vs Ray."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from cosim.sweep.overrides import key_problem
from cosim.sweep.ports import free_port
from tests.conftest import SCENARIOS

# Three 5-minute steps at noon with PV: small enough for a few seconds per run, and seeds matter (load noise, clouds).
NOON = """\
name: noon
seed: 7
clock: {start: "2025-06-21T12:00:00", duration: 15min, step: 5min}
grid: {feeder: ieee33}
loads: {profile: residential, noise: 0.05}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 2.0, cloudiness: 0.6}
"""


def _sweep(write_scenario, body: str, name: str = "sweep.yaml") -> Path:
    write_scenario(NOON, "noon.yaml")
    return write_scenario(body, name)


def test_rows_match_single_runs_and_the_report_shows_t_intervals(write_scenario, cli, tmp_path):
    sweep = _sweep(write_scenario, """\
        name: study
        scenarios: [noon.yaml]
        seeds: [1, 2]
        controllers: [none]
        overrides: {loads.scale: [0.5]}
        """)
    code, output, _ = cli("sweep", sweep, "--out", tmp_path / "out", "-j", "1", "-q")
    assert code == 0, output
    table = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert list(table.columns[:9]) == ["run_id", "scenario", "seed", "controller", "loads.scale", "status", "message",
                                       "wall_s", "resumed"]
    assert list(table["seed"]) == [1, 2] and set(table["status"]) == {"ok"} and set(table["loads.scale"]) == {0.5}
    # the same run by hand: the scenario file with the override and the seed written into it
    by_hand = write_scenario(NOON.replace("seed: 7", "seed: 2").replace("noise: 0.05", "noise: 0.05, scale: 0.5"),
                             "by-hand.yaml")
    direct = run_scenario(load_scenario(by_hand), tmp_path / "direct").metrics
    row = table[table["seed"] == 2].iloc[0]
    assert {k: row[k] for k in direct} == direct
    folder = tmp_path / "out" / "runs" / row["run_id"]
    assert (folder / "report.html").is_file() and (folder / "timeseries.parquet").exists()
    # 95 % interval of the two seeds' losses, from scipy, as the report prints it
    losses = table["loss_energy_kwh"].to_numpy()
    low, high = stats.t.interval(0.95, len(losses) - 1, loc=losses.mean(), scale=stats.sem(losses))
    from cosim.report.html import fmt_number

    report = (tmp_path / "out" / "report.html").read_text()
    assert f"{fmt_number(losses.mean())} ± {fmt_number((high - low) / 2)} <small>(n=2)</small>" in report


def test_a_failed_run_is_a_row_and_resume_runs_only_what_is_not_complete(write_scenario, cli, tmp_path):
    sweep = _sweep(write_scenario, """\
        name: mixed
        scenarios: [noon.yaml]
        seeds: [3]
        controllers: [none]
        overrides: {loads.profile: [constant, "csv:no-such-profile.csv"]}
        """)
    out = tmp_path / "out"
    code, output, _ = cli("sweep", sweep, "--out", out, "-j", "1", "-q")
    assert code == 1, output
    table = pd.read_parquet(out / "summary.parquet")
    good, bad = table.iloc[0], table.iloc[1]
    assert good["status"] == "ok" and good["loss_energy_kwh"] > 0
    assert bad["status"] == "failed" and "no-such-profile.csv" in bad["message"]
    assert "no-such-profile.csv" in (out / "report.html").read_text()

    ts = out / "runs" / good["run_id"] / "timeseries.parquet"
    before = ts.stat().st_mtime_ns
    code, output, _ = cli("sweep", sweep, "--out", out, "-j", "1", "-q", "--resume")
    assert code == 1, output
    again = pd.read_parquet(out / "summary.parquet")
    assert list(again["resumed"]) == [True, False]  # the failed run was tried again, the complete one was not
    assert ts.stat().st_mtime_ns == before
    assert again.iloc[0]["loss_energy_kwh"] == good["loss_energy_kwh"]


@pytest.mark.parametrize("body, expected", [
    ("name: x\nscenarios: [noon.yaml]\nseeds: [1]\ncontrollers: [none]\nseed: 3\n",
     r"line 5, field seed: unknown key 'seed'; did you mean 'seeds'\?"),
    ("name: x\nscenarios: [noon.yaml]\nseeds: []\ncontrollers: [none]\n",
     r"line 3, field seeds: the matrix is empty"),
    ("name: x\nscenarios: [noon.yaml]\nseeds: [1]\ncontrollers: [none]\noverrides: {loads.scael: [1]}\n",
     r"field overrides.loads.scael: override key 'loads.scael' names no scenario field: loads has no key 'scael'; "
     r"did you mean 'scale'\?"),
    ("name: x\nscenarios: [noon.yaml]\nseeds: [1]\ncontrollers: [none]\noverrides: {loads.scale: [-1]}\n",
     r"field overrides: scenario .*noon.yaml with loads.scale=-1: the scenario rejects the value: loads.scale"),
    ("name: x\nscenarios: [nowhere.yaml]\nseeds: [1]\ncontrollers: [none]\n",
     r"line 2, field scenarios\[0\]: scenario file 'nowhere.yaml' not found"),
    ("name: x\nscenarios: [noon.yaml]\nseeds: [1]\ncontrollers: [nonsense]\n",
     r"line 4, field controllers\[0\]: controller SPEC 'nonsense'"),
])
def test_bad_sweep_files_name_file_and_field_and_exit_2(write_scenario, cli, tmp_path, body, expected):
    sweep = _sweep(write_scenario, body)
    code, output, _ = cli("sweep", sweep, "--out", tmp_path / "out")
    text = " ".join(output.split())
    assert code == 2, output
    assert re.search(re.escape(str(sweep)) + ".*" + expected, text), text
    assert "Traceback" not in output and not (tmp_path / "out").exists()


def test_bad_backend_options_exit_2(write_scenario, cli, tmp_path):
    sweep = _sweep(write_scenario, "name: x\nscenarios: [noon.yaml]\nseeds: [1]\ncontrollers: [none]\n")
    code, output, _ = cli("sweep", sweep, "--out", tmp_path / "o1", "--backend", "slurm")
    assert code == 2 and "unknown backend (known: local, ray)" in output
    code, output, _ = cli("sweep", sweep, "--out", tmp_path / "o2", "--address", "127.0.0.1:6379")
    assert code == 2 and "--address: the local backend runs on this machine only" in " ".join(output.split())
    closed = free_port()  # nothing listens there
    code, output, _ = cli("sweep", sweep, "--out", tmp_path / "o3", "--backend", "ray", "--address", f"127.0.0.1:{closed}")
    assert code == 2 and f"--address 127.0.0.1:{closed}: no Ray cluster answers there" in " ".join(output.split())


def test_override_keys_are_checked_against_the_schema():
    assert key_problem("loads.scale") is None
    assert key_problem("generators.0.p_mw") is None
    assert key_problem("detector.measurements.vm_pu.sigma") is None
    assert key_problem("controller.params.gain").startswith("'controller' is an axis of the sweep")
    assert "the next part must be an item's index" in key_problem("generators.pv1.p_mw")
    assert "is a value, not a block" in key_problem("loads.scale.x")


@pytest.mark.slow  # two processes, each with a firmware stub: ~35 s on a loaded 2-core machine
def test_parallel_hil_runs_get_their_own_ports(write_scenario, cli, tmp_path):
    hil = (SCENARIOS / "hil" / "ieee33-inverter.yaml").read_text().replace("duration: 2min", "duration: 3s")
    write_scenario(hil, "inverter.yaml")
    sweep = write_scenario("name: hil\nscenarios: [inverter.yaml]\nseeds: [1, 2]\ncontrollers: [droop]\n", "hil.yaml")
    code, output, _ = cli("sweep", sweep, "--out", tmp_path / "out", "-j", "2", "-q")
    assert code == 0, output
    table = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    ports = set()
    for run_id in table["run_id"]:
        log = (tmp_path / "out" / "runs" / run_id / "devices" / "inv1.log").read_text()
        ports.add(int(re.search(r"ready \S+ on 127\.0\.0\.1:(\d+)", log).group(1)))
    assert len(ports) == 2 and 15020 not in ports  # one stub per run, none on the scenario's port


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A real Ray head on this machine (2 CPUs, node address 127.0.0.1, token authentication), stopped by its pid."""
    port, token = free_port(), secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 characters
    log = tmp_path_factory.mktemp("ray") / "head.log"
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--num-cpus", "2",
           "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard", "false",
           "--disable-usage-stats", "--temp-dir", temp]
    with open(log, "w") as fh:
        head = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert head.poll() is None, log.read_text()
            time.sleep(0.5)
    yield f"127.0.0.1:{port}", token
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=15)


@pytest.mark.slow
def test_local_and_ray_backends_give_identical_metrics(write_scenario, cli, tmp_path, ray_head, monkeypatch):
    address, token = ray_head
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    sweep = _sweep(write_scenario, """\
        name: agree
        scenarios: [noon.yaml]
        seeds: [1, 2]
        controllers: [none, droop]
        """)
    code, output, _ = cli("sweep", sweep, "--out", tmp_path / "local", "-j", "2", "-q")
    assert code == 0, output
    code, output, _ = cli("sweep", sweep, "--out", tmp_path / "ray", "--backend", "ray", "--address", address, "-q")
    assert code == 0, output
    local, ray = (pd.read_parquet(tmp_path / d / "summary.parquet") for d in ("local", "ray"))
    metrics = [c for c in local.columns if c not in ("wall_s", "resumed")]
    assert len(local) == 4 and local[metrics].equals(ray[metrics])

    # cosim regress on the same cluster: the same metrics as a run in this process
    code, output, _ = cli("regress", tmp_path / "noon.yaml", "-c", "droop", "--backend", "ray", "--address", address,
                          "--out", tmp_path / "regress")
    assert code == 0, output
    stored = json.loads((tmp_path / "regress" / "noon" / "metrics.json").read_text())
    ref = load_scenario(tmp_path / "noon.yaml")
    ref.scenario.controller = ref.scenario.controller.model_validate({"kind": "droop"})
    assert stored == run_scenario(ref, tmp_path / "reference").metrics
