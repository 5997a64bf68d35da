"""Nothing lost: kills and signals of a real `cosim run` process, the chunked recording, run states.

The subprocess tests start `python -m cosim run` on a 7-day IEEE 33 scenario at 1-min steps
(10,080 steps, ~10 s of stepping), wait until rows are on disk, then signal it. Expected values
are properties of the scenario (its clock: first time, step, planned steps) and of the processes
(a SIGKILLed pid is gone), not figures produced by the code under test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from cosim.recording import Recording
from cosim.children import pid_alive
from cosim.results import read_timeseries, run_state
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from hil_support import free_port, inverter_scenario

WEEK = """\
name: week
seed: 7
clock: {start: "2025-06-21T00:00:00", duration: 7d, step: 1min}
grid: {feeder: ieee33}
loads: {profile: residential, noise: 0.03}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 1.0}
"""
START = pd.Timestamp("2025-06-21T00:00:00")
PLANNED = 7 * 24 * 60


def _start_run(tmp_path: Path, text: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "cosim", "run", str(path), "--out", str(out), "-q", *extra],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out


def _wait_for_rows(proc: subprocess.Popen, out: Path, rows: int, deadline_s: float = 240.0) -> dict:
    """Poll run.json until the heartbeat reports `rows` recorded steps (and a chunk file is complete)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        try:
            info = json.loads((out / "run.json").read_text())
        except (OSError, ValueError):
            info = {}
        if info.get("steps_completed", 0) >= rows and list((out / "timeseries.parquet").glob("part-*.parquet")):
            return info
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the run did not record {rows} rows within {deadline_s} s")


def _assert_prefix_of_the_clock(ts: pd.DataFrame) -> None:
    """The rows are the first len(ts) steps of the scenario's clock, each complete."""
    assert 0 < len(ts) <= PLANNED
    expected = pd.date_range(START, periods=len(ts), freq="1min")
    assert (ts["time"].to_numpy() == expected.to_numpy()).all()
    assert (ts["grid.converged"] == 1.0).all() and ts["bus.18.vm_pu"].notna().all()


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A real `cosim run` SIGKILLed mid-run: (results folder, run.json just before the kill, pid)."""
    tmp = tmp_path_factory.mktemp("killed")
    proc, out = _start_run(tmp, WEEK)
    info = _wait_for_rows(proc, out, 1000)
    assert info["status"] == "running" and info["pid"] == proc.pid and info["host"] == socket.gethostname()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return out, info, proc.pid


@pytest.mark.slow
def test_rows_of_a_sigkilled_run_are_readable(killed_run):
    out, before, _ = killed_run
    ts = read_timeseries(out / "timeseries.parquet")
    _assert_prefix_of_the_clock(ts)
    assert len(ts) < PLANNED  # killed mid-run
    assert len(ts) >= before["steps_completed"] - 4096  # at most the chunk being filled since the last write
    assert len(pd.read_parquet(out / "timeseries.parquet")) == len(ts)  # plain pandas and pyarrow read it too
    assert ds.dataset(out / "timeseries.parquet").count_rows() == len(ts)
    assert json.loads((out / "run.json").read_text())["status"] == "running"  # nobody could write the end


@pytest.mark.slow
def test_status_says_dead_for_a_sigkilled_run(killed_run, cli):
    out, _, pid = killed_run
    assert not pid_alive(pid)
    code, output, _ = cli("status", out)
    assert code == 1 and output.startswith("dead:") and f"pid {pid}" in output and "gone" in output


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_stop_cleanly_with_metrics(tmp_path, sig):
    proc, out = _start_run(tmp_path, WEEK)
    _wait_for_rows(proc, out, 500)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    message = [line for line in stderr.splitlines() if line.strip()]
    assert len(message) == 1 and f"interrupted by {sig.name}" in message[0], stderr
    assert "Task was destroyed" not in stderr and "Traceback" not in stderr
    run = json.loads((out / "run.json").read_text())
    ts = read_timeseries(out / "timeseries.parquet")
    _assert_prefix_of_the_clock(ts)
    assert run["status"] == "interrupted" and run["steps_completed"] == len(ts) < PLANNED
    assert run["message"] == f"interrupted by {sig.name} after step {len(ts)}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == len(ts) and metrics["loss_energy_kwh"] > 0  # scored on the recorded rows
    assert "loss_energy_kwh" in stdout  # the KPI table
    assert (out / "events.csv").exists() and (out / "report.html").stat().st_size > 0


def _stubs_of(pid: int) -> list[int]:
    """Firmware-stub processes whose parent is `pid` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            is_stub = b"firmware_stubs" in (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and is_stub:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_the_stub_of_a_sigkilled_run_dies_with_it(tmp_path):
    port = free_port()
    proc, out = _start_run(tmp_path, inverter_scenario("hil-kill", "10min", port=port), "--realtime", "1")
    try:
        _wait_for_rows(proc, out, 2)
        (stub,) = _stubs_of(proc.pid)
        assert os.getpgid(stub) != os.getpgid(proc.pid)  # its own group: a Ctrl-C reaches only the run
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        end = time.monotonic() + 30
        while pid_alive(stub) and time.monotonic() < end:
            time.sleep(0.1)
        assert not pid_alive(stub), "the stub outlived the run"
        with socket.socket() as s:  # nothing listens on the device's port any more
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigint_in_process_stops_after_the_step(tmp_path, write_scenario):
    path = write_scenario(WEEK.replace("duration: 7d", "duration: 2h"))
    os_kill_at = 5

    def on_step(n: int) -> None:
        if n == os_kill_at:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    outcome = run_scenario(load_scenario(path), tmp_path / "out", on_step)
    assert outcome.status == "interrupted" and outcome.message.startswith("interrupted by SIGINT after step")
    ts = read_timeseries(tmp_path / "out" / "timeseries.parquet")
    assert os_kill_at <= len(ts) < 120 and outcome.metrics["steps"] == len(ts)
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored


def test_folder_holds_only_complete_chunks_and_readers_skip_temporary_files(tmp_path):
    rec = Recording(tmp_path / "r.parquet", np.datetime64("2025-01-01T00:00"), 60.0, chunk_rows=3)
    for k in range(7):
        rec.append(k, {"a": float(k), "label.kind": "x" if k % 2 else ""})
    rec.close()
    folder = tmp_path / "r.parquet"
    (folder / ".part-00003.parquet.tmp").write_bytes(b"PAR1 half a file")  # what a kill mid-write leaves
    for part in folder.glob("part-*.parquet"):
        pq.ParquetFile(part)  # each one complete on its own (footer present)
    for table in (read_timeseries(folder), pd.read_parquet(folder), pq.read_table(folder).to_pandas()):
        assert table["a"].tolist() == [float(k) for k in range(7)]
        assert table["label.kind"].tolist() == ["", "x", "", "x", "", "x", ""]


def test_folder_killed_before_its_first_write_reads_as_no_rows(tmp_path):
    (tmp_path / "ts.parquet").mkdir()
    ts = read_timeseries(tmp_path / "ts.parquet")
    assert len(ts) == 0 and list(ts.columns) == ["time"]


def test_older_single_file_recording_still_reads(tmp_path):
    pq.write_table(pa.table({"time": pa.array([0], pa.timestamp("ms")), "a": [1.0]}), tmp_path / "old.parquet")
    assert read_timeseries(tmp_path / "old.parquet")["a"].tolist() == [1.0]


def _record(status: str = "running", age_s: float = 1.0, pid: int | None = None, host: str | None = None) -> dict:
    beat = (datetime.now(timezone.utc) - timedelta(seconds=age_s)).isoformat(timespec="seconds")
    return {"status": status, "pid": os.getpid() if pid is None else pid, "host": host or socket.gethostname(),
            "heartbeat": beat, "heartbeat_s": 2.0, "steps_completed": 5, "steps_planned": 10}


def test_run_states():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process
    assert run_state(_record())[0] == "running"
    assert run_state(_record(pid=gone.pid))[0] == "dead"
    assert run_state(_record(age_s=600))[0] == "dead"  # our own (live) pid, but no heartbeat for 10 min
    assert run_state(_record(pid=gone.pid, host="elsewhere"))[0] == "running"  # another host: heartbeat only
    assert run_state(_record(host="elsewhere", age_s=600))[0] == "dead"
    no_beat = {"status": "running", "steps_planned": 10}
    assert run_state(no_beat)[0] == "dead"
    for status in ("ok", "failed", "interrupted", "degraded"):
        state, detail = run_state({**_record(status=status), "message": "why"})
        assert state == status and detail.endswith(": why")
