"""A device of a run over IEC 60870-5-104: the inverter stub speaking IEC 104, reached by the bridge through c104.

The same timing rule, guard, stale handling and probe as over Modbus (docs/hil.md, "Devices over
IEC 104"): the droop loop through the device moves step for step like the loop without it (the
setpoint of step k reaches the grid at k+1, as tests/test_hil_timing.py shows for Modbus), a
setpoint outside the device's limits is clamped, a command from another IEC 104 master is a write
from outside (`device_write_unexpected`), a stub killed mid-run is recorded and the run finishes,
and `cosim probe --protocol iec104` reads the stub. Real c104 on 127.0.0.1, free ports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

c104 = pytest.importorskip("c104")

from cosim.assembly import RunOptions  # noqa: E402
from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402
from hil import MAPS_DIR  # noqa: E402
from hil_support import REPO, Stub, run_alongside  # noqa: E402
from test_hil_timing import Q_LSB, TICK, droop_scenario, settled_at  # noqa: E402


PACED_TICK = "0.02"  # s: two ticks (IEC 104) well inside 70 % of the paced runs' 0.1 s slot (docs/hil.md, Timing)
ROOMY = "timeout: 5"  # s: these tests are about order and clamping, not timeouts; a loaded machine (a CI run beside
# two training jobs) once took over 0.5 s for a loopback reply and marked a step stale


def iec104_scenario(tmp_path: Path, modbus: str, extra: str = "", steps: int = 15, emulate: bool = True) -> Path:
    """The droop scenario of tests/test_hil_timing.py with inv1 reached over IEC 104 (`modbus` the block's keys)."""
    text = droop_scenario(tmp_path, device=False, steps=steps).read_text(encoding="utf-8")
    text += textwrap.dedent(f"""\
        devices:
          - name: inv1
            kind: inverter
            bus: 18
            modbus: {{transport: iec104, {modbus}}}
            emulate: {str(emulate).lower()}
            stub_args: {{ramp_rate: 100000, tick: {TICK}}}
        """) + extra
    path = tmp_path / "iec104.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run(path: Path, out: Path, realtime: float | None = None) -> pd.DataFrame:
    outcome = run_scenario(load_scenario(path), out, options=RunOptions(realtime=realtime))
    assert outcome.status == "ok", outcome.message
    return pd.read_parquet(out / "timeseries.parquet")


@pytest.fixture(scope="module")
def direct(tmp_path_factory) -> pd.DataFrame:
    tmp = tmp_path_factory.mktemp("direct")
    return run(droop_scenario(tmp, device=False), tmp / "out")


def test_setpoints_of_step_k_reach_the_grid_at_k_plus_1_through_an_iec104_device(tmp_path, direct):
    through = run(iec104_scenario(tmp_path, ROOMY), tmp_path / "out")  # port left out: a free one per run
    assert through["pv1.p_mw"].to_numpy() == pytest.approx(through["pv1.p_avail_mw"].to_numpy(), abs=2e-4)
    assert through["inv1.stale"].sum() == 0
    q_dev, q_direct = through["pv1.q_mvar"].to_numpy(), direct["pv1.q_mvar"].to_numpy()
    assert q_direct[1] < -0.1  # the droop acts from step 1 on
    assert q_dev == pytest.approx(q_direct, abs=2 * Q_LSB)  # step for step: k -> k+1 as without the device
    assert abs(settled_at(q_dev, 4 * Q_LSB) - settled_at(q_direct, 4 * Q_LSB)) <= 1
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["guard_readback_mismatches"] == 0 and metrics["device_write_unexpected"] == 0


def test_the_guard_clamps_a_setpoint_sent_over_iec104(tmp_path, direct):
    limit = 5.0  # % of the 2 MW nameplate: 0.1 Mvar
    path = iec104_scenario(tmp_path, ROOMY, steps=6)
    path.write_text(path.read_text().replace("emulate: true", f"emulate: true\n    limits: {{var_pct: [-{limit:g}, {limit:g}]}}"))
    through = run(path, tmp_path / "out")
    assert direct["pv1.q_mvar"].abs().max() > 0.1 + 0.01  # the droop asks for more than the limit
    assert through["pv1.q_mvar"].abs().max() == pytest.approx(limit / 100 * 2.0, abs=Q_LSB)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["guard_clamped_writes"] > 0
    events = pd.read_csv(tmp_path / "out" / "events.csv")
    assert "inv1.VArWMaxPct" in set(events.loc[events["kind"] == "guard_clamped", "target"])


def test_a_stub_killed_mid_run_is_recorded_and_the_run_finishes(tmp_path):
    stub = Stub("inverter", "--protocol", "iec104", "--tick", PACED_TICK, "--ramp-rate", "100000")
    path = iec104_scenario(tmp_path, f"port: {stub.port}, timeout: 0.3", steps=12, emulate=False)

    def killer() -> None:
        deadline = time.monotonic() + 60
        while "write applied" not in stub.log and time.monotonic() < deadline:
            time.sleep(0.01)  # until the bridge's first commands arrived: the run is under way
        time.sleep(0.3)  # a few steps of 0.1 s wall time in
        stub.proc.kill()

    try:
        outcome = run_alongside(path, tmp_path / "out", killer, realtime=0.1)
    finally:
        stub.stop()
    assert outcome.status == "ok", outcome.message
    series = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert len(series) == 12 and series["inv1.stale"].iloc[0] == 0 and series["inv1.stale"].iloc[-1] == 1
    events = pd.read_csv(tmp_path / "out" / "events.csv")
    assert "device_stale" in set(events["kind"])
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["device_stale_steps"] > 0


def test_cosim_probe_reads_the_stub_over_iec104(cli):
    stub = Stub("inverter", "--protocol", "iec104", "--tick", TICK, "--unit", "7")
    try:
        code, output, _ = cli("probe", "--protocol", "iec104", "--port", str(stub.port), "--unit", "7",
                              "--map", str(MAPS_DIR / "inverter.yaml"))
        wrong, why, _ = cli("probe", "--protocol", "iec104", "--port", str(stub.port), "--unit", "8",
                            "--map", str(MAPS_DIR / "inverter.yaml"), "--timeout", "0.5")
    finally:
        stub.stop()
    assert code == 0, output
    rows = {line.split("│")[2].strip(): line.split("│")[4].strip() for line in output.splitlines()
            if line.count("│") >= 6 and "WMaxLimPct" in line.split("│")[2] or "Conn " in line}
    assert rows.get("WMaxLimPct") == "100" and rows.get("Conn") == "1"  # the map's defaults
    assert wrong == 2 and "common address" in why and "Traceback" not in why


def test_the_iec104_probe_path_imports_neither_the_grid_nor_plotting():
    code = ("import sys, cosim.commands.probe, hil.probe, hil.iec104_client; "
            "print(sorted(m for m in ('pandapower', 'scipy', 'matplotlib', 'mosaik', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_command_from_another_iec104_master_is_a_write_from_outside(tmp_path):
    from test_iec104 import Master

    stub = Stub("inverter", "--protocol", "iec104", "--tick", PACED_TICK, "--ramp-rate", "100000")
    path = iec104_scenario(tmp_path, f"port: {stub.port}, timeout: 0.3", steps=50, emulate=False)
    sent = {}

    def rogue() -> None:
        deadline = time.monotonic() + 60
        while stub.log.count("write applied") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # the bridge has synced and written: Conn = 1 is what it knows
        master = Master(stub.port)  # a second master on the same station
        try:
            sent["conn off"] = master.command(140126, c104.Type.C_SC_NA_1, False)  # Conn = 0: disconnect
            sent["at"] = time.monotonic()
        finally:
            master.close()

    try:
        outcome = run_alongside(path, tmp_path / "out", rogue, realtime=0.1)
        finished = time.monotonic()
    finally:
        stub.stop()
    assert outcome.status == "ok", outcome.message
    assert sent["conn off"] and sent["at"] < finished - 1.0  # confirmed, well before the run's last step
    events = pd.read_csv(tmp_path / "out" / "events.csv")
    unexpected = events[events["kind"] == "device_write_unexpected"]
    assert list(unexpected["target"]) == ["inv1.Conn"] and "40126: 1 -> 0" in unexpected["detail"].iloc[0]
