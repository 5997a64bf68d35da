"""Whole runs with devices in the loop over Modbus-TCP on 127.0.0.1 (free ports, stubs always stopped).

End to end: a controller drives an emulated inverter through the bridge and the grid responds;
a device killed mid-run (stale, seen by the controller, reconnected, nothing recorded lost);
a device missing at start (clear error, or a degraded run); read-only runs; wire attacks
from the scenario; the grid server polled and commanded by a pymodbus client.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from pymodbus.client import ModbusTcpClient

from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from cosim.assembly import RunOptions
from hil_support import Stub, free_port, inverter_scenario, run_alongside

CURTAIL = """\
from controllers.base import Controller


class Curtail(Controller):
    \"\"\"Curtails pv1 to 0.2 MW from step 10; reports when it sees the inverter stale.\"\"\"

    def act(self, observation):
        if observation.get("inv1.stale") == 1.0:
            self.report("saw_stale", "inv1")
        if "inv1.p_mw" in observation:
            self.report("saw_device", "inv1")
        return {"pv1.p_limit_mw": 0.2} if observation["time.step"] >= 10 else {}
"""


def scenario(tmp_path: Path, port: int, steps: int = 40, controller: str = "python", device: str = "",
             extra: str = "", emulate: bool = True) -> Path:
    """IEEE 33 at noon, 1 MW of PV at bus 18 behind inverter inv1 on 127.0.0.1:port."""
    (tmp_path / "curtail.py").write_text(CURTAIL, encoding="utf-8")
    ctrl = "{kind: python, path: curtail.py:Curtail}" if controller == "python" else f"{{kind: {controller}}}"
    text = inverter_scenario("hil-test", f"{steps}s", ctrl, port, emulate=emulate,
                             device="stub_args: {ramp_rate: 1000, tick: 0.01}\n" + textwrap.dedent(device)) + textwrap.dedent(extra)
    path = tmp_path / "hil.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def results(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    return (pd.read_parquet(out / "timeseries.parquet"), pd.read_csv(out / "events.csv"),
            json.loads((out / "metrics.json").read_text()), json.loads((out / "run.json").read_text()))


def test_a_controller_drives_an_emulated_inverter_and_the_grid_responds(tmp_path):
    path = scenario(tmp_path, free_port())
    outcome = run_scenario(load_scenario(path), tmp_path / "out", options=RunOptions(realtime=0.05))
    assert outcome.status == "ok", outcome.message
    ts, events, metrics, _ = results(tmp_path / "out")
    before, after = ts.iloc[8], ts.iloc[-1]
    assert before["inv1.p_mw"] == pytest.approx(before["pv1.p_avail_mw"], abs=2e-3)  # unconstrained
    assert after["inv1.w_max_lim_pct"] == pytest.approx(20.0)  # the setpoint reached the device
    assert after["inv1.p_mw"] == pytest.approx(0.2, abs=2e-3)  # ... its output followed
    assert after["pv1.p_mw"] == pytest.approx(after["inv1.p_mw"], abs=2e-3)  # ... and the grid took it
    assert after["bus.18.vm_pu"] < before["bus.18.vm_pu"] - 0.005  # less PV at the feeder end: lower voltage
    assert "saw_device" in set(events["kind"])  # the controller observes the device's readings
    for key in ("rt_lateness_p50_ms", "rt_lateness_p99_ms", "rt_lateness_max_ms", "rt_deadline_misses",
                "guard_blocked_writes", "guard_clamped_writes", "bridge_rtt_p50_ms"):
        assert key in metrics
    assert metrics["guard_readback_mismatches"] == 0 and ts["inv1.stale"].sum() == 0
    assert (tmp_path / "out" / "devices" / "inv1.log").exists()  # the run started the stub and kept its log


def test_a_device_killed_mid_run_goes_stale_and_comes_back(tmp_path):
    port = free_port()
    stubs = [Stub("inverter", "--tick", "0.01", "--ramp-rate", "1000", "--w-max", "1000000", "--va-max", "1100000", port=port)]

    def on_step(k: int) -> None:
        if k == 10:
            stubs[0].stop()
        if k == 25:
            stubs.append(Stub("inverter", "--tick", "0.01", "--ramp-rate", "1000", "--w-max", "1000000", "--va-max", "1100000", port=port))

    try:
        outcome = run_scenario(load_scenario(scenario(tmp_path, port, steps=60)), tmp_path / "out", on_step,
                               RunOptions(realtime=0.05))
    finally:
        for s in stubs:
            s.stop()
    assert outcome.status == "ok", outcome.message
    ts, events, metrics, run = results(tmp_path / "out")
    assert len(ts) == 60 and run["steps_completed"] == 60  # nothing recorded is lost
    stale = ts["inv1.stale"].to_numpy()
    assert stale[:10].sum() == 0 and stale[12:25].all() and stale[-1] == 0
    kinds = set(events["kind"])
    assert {"device_stale", "device_reconnected", "saw_stale"} <= kinds
    assert metrics["device_stale_steps"] >= 13 and metrics["device_reconnects"] >= 1
    assert ts["inv1.w_max_lim_pct"].iloc[-1] == pytest.approx(20.0)  # the setpoint in force was re-asserted


def test_a_missing_device_is_a_clear_error_or_a_degraded_run(tmp_path, cli):
    path = scenario(tmp_path, free_port(), steps=5, controller="droop", emulate=False)
    code, output, _ = cli("run", path, "--out", tmp_path / "a", "-q")
    assert code == 1 and "do not answer" in output and "connection refused" in output and "--degraded" in output
    assert "Traceback" not in output
    code, output, _ = cli("run", path, "--out", tmp_path / "b", "-q", "--degraded")
    assert code == 0, output
    ts, events, _, run = results(tmp_path / "b")
    assert ts["inv1.stale"].all() and "inv1" in run["devices_missing"]
    assert ts["pv1.p_mw"].iloc[-1] == pytest.approx(ts["pv1.p_avail_mw"].iloc[-1])  # fail-safe: no curtailment


def test_read_only_run_blocks_and_counts_every_write(tmp_path, cli):
    path = scenario(tmp_path, free_port(), steps=15)
    code, output, _ = cli("run", path, "--out", tmp_path / "out", "-q", "--read-only")
    assert code == 0, output
    ts, events, metrics, _ = results(tmp_path / "out")
    assert metrics["guard_blocked_writes"] > 0 and "guard_blocked" in set(events["kind"])
    assert (ts["inv1.w_max_lim_pct"] == 100).all()  # the device never got the curtailment
    assert ts["guard.blocked"].sum() > 0


def test_wire_attacks_from_the_scenario(tmp_path):
    wire = """\
        wire:
          - {kind: fdi, at: 5s, duration: 5s, point: W, scale: 0.0}
          - {kind: command_injection, at: 12s, duration: 2s, point: VArPct_Ena, value: 1}
        """
    path = scenario(tmp_path, free_port(), steps=20, controller="none", device=wire)
    outcome = run_scenario(load_scenario(path), tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    ts, events, _, _ = results(tmp_path / "out")
    seen = ts["inv1.p_mw"].to_numpy()
    assert (seen[5:10] == 0).all() and seen[3] > 0.5 and seen[15] > 0.5  # tampered in flight, only then
    labels = set(zip(events["kind"], events["target"]))
    assert {("wire_fdi", "inv1.W"), ("wire_command_injection", "inv1.VArPct_Ena"),
            ("device_write_unexpected", "inv1.VArPct_Ena")} <= labels


def test_the_grid_server_is_polled_and_commanded_by_a_pymodbus_client(tmp_path):
    port = free_port()
    path = scenario(tmp_path, free_port(), steps=30, controller="none", extra=f"grid_server: {{port: {port}}}\n")
    polled: dict = {}

    def scada() -> None:
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
        deadline = time.monotonic() + 15
        while not client.connect() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            time.sleep(0.4)
            rr = client.read_input_registers(0, count=4, device_id=1)  # bus 1 and bus 2 voltages
            polled["vm"] = client.convert_from_registers(rr.registers[:2], client.DATATYPE.FLOAT32)
            polled["coils"] = client.read_coils(1, count=3, device_id=1).bits[:3]  # lines 1..3
            regs = client.convert_to_registers(0.25, client.DATATYPE.FLOAT32)
            polled["write"] = client.write_registers(0, regs, device_id=1)  # pv1.p_limit_mw
            polled["coil_write"] = client.write_coil(0, False, device_id=1)
        finally:
            client.close()

    outcome = run_alongside(path, tmp_path / "out", scada)
    assert outcome.status == "ok", outcome.message
    ts, events, metrics, _ = results(tmp_path / "out")
    assert polled["vm"] == pytest.approx(1.0, abs=1e-6)  # bus 1 is the slack bus
    assert polled["coils"] == [True, True, True]
    assert not polled["write"].isError() and polled["coil_write"].isError()  # breakers are read-only
    assert ts["inv1.w_max_lim_pct"].iloc[-1] == pytest.approx(25.0)  # SCADA -> grid server -> guard -> device
    assert ts["pv1.p_mw"].iloc[-1] == pytest.approx(0.25, abs=2e-3)
    assert ("guard_blocked", "scada.coil.0") in set(zip(events["kind"], events["target"]))


def test_an_emulated_device_without_a_port_gets_a_free_one_per_run(tmp_path, cli):
    path = scenario(tmp_path, 1, steps=5)  # port 1 placeholder, taken out
    path.write_text(path.read_text(encoding="utf-8").replace("{port: 1, ", "{"), encoding="utf-8")
    runs = []
    for name in ("a", "b"):
        outcome = run_scenario(load_scenario(path), tmp_path / name)
        assert outcome.status == "ok", outcome.message
        ts, _, _, _ = results(tmp_path / name)
        assert ts["inv1.stale"].sum() == 0
        log = (tmp_path / name / "devices" / "inv1.log").read_text(encoding="utf-8")
        runs.append(int(re.search(r"ready \S+ on \S+:(\d+)", log).group(1)))
    assert all(p > 0 for p in runs)
    real = path.read_text(encoding="utf-8").replace("emulate: true", "emulate: false")
    path.write_text(real, encoding="utf-8")
    code, output, _ = cli("validate", path)
    assert code == 2 and "modbus.port is required for a real device" in output
