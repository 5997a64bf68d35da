"""Writes from outside the run are detected and recorded; --read-only blocks every write the run makes.

Real firmware stubs and a real grid server on 127.0.0.1, written by an independent pymodbus
client (the "rogue" master) while a run goes on. Covered: an unexpected write to a control
register that the bridge never writes (inverter `Conn`) is an event with the register and the
old and new value, a metric, an alarm signal and an audit record, and the stub's log names the
client's address; a capacitor bank's own moves in auto mode are no alarm, a StepCmd from
outside in manual mode is; `--read-only` keeps a wire attack's writes off the device; the grid
server records each accepted SCADA command with the client address, refuses setpoints off its
allow-list, and keeps its log (rate-limited) off the run's terminal.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from pathlib import Path

import pandas as pd
import pytest
from pymodbus.client import ModbusTcpClient

from cosim.assembly import RunOptions
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from cosim.scenario.schema import Scenario
from hil.client import DeviceClient
from hil.devices import coupling
from hil.guard import Guard
from hil.link import DeviceLink
from hil.mitm import rogue_write
from hil_support import REPO, Stub, free_port, inverter_scenario, run_alongside, wait_for

CONN = 40126  # SunSpec model 123 Conn (1 connect, 0 disconnect) in hil/maps/inverter.yaml


def _results(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    return (pd.read_parquet(out / "timeseries.parquet"), pd.read_csv(out / "events.csv", keep_default_na=False),
            json.loads((out / "metrics.json").read_text()))


def _client(port: int) -> ModbusTcpClient:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    assert wait_for(client.connect, 15), f"nothing answers on 127.0.0.1:{port}"
    return client


def test_a_rogue_write_to_a_stub_during_a_run_is_an_event_a_metric_an_alarm_and_in_the_audit(tmp_path):
    port = free_port()
    path = tmp_path / "rogue.yaml"
    path.write_text(inverter_scenario("rogue", "40s", "{kind: none}", port, device="stub_args: {ramp_rate: 1000}\n"),
                    encoding="utf-8")
    rogue: dict = {}

    def attacker() -> None:
        client = _client(port)
        try:
            time.sleep(1.5)  # well inside the 4 s the paced run takes
            rogue["reply"] = client.write_register(CONN, 0, device_id=1)
            rogue["addr"] = "%s:%d" % client.socket.getsockname()[:2]
        finally:
            client.close()

    outcome = run_alongside(path, tmp_path / "out", attacker)
    assert outcome.status == "ok", outcome.message
    assert not rogue["reply"].isError()  # the device took it: nothing on the wire stops a master on loopback
    ts, events, metrics = _results(tmp_path / "out")
    hits = events[events["kind"] == "device_write_unexpected"]
    assert hits["target"].tolist() == ["inv1.Conn"]
    assert hits["detail"].iloc[0] == f"register {CONN}: 1 -> 0"
    assert metrics["device_write_unexpected"] == 1
    assert ts["alarm.device_write_unexpected"].sum() == 1
    assert ts["pv1.p_mw"].iloc[-1] == pytest.approx(0.0, abs=1e-6)  # what the write did: the inverter disconnected
    audit = [json.loads(line) for line in (tmp_path / "out" / "audit.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "device_write_unexpected" and r.get("detail") == f"register {CONN}: 1 -> 0"
               for r in audit)
    log = (tmp_path / "out" / "devices" / "inv1.log").read_text(encoding="utf-8")
    assert f"write applied: Conn=0 (fc=6 addr={CONN} count=1) from {rogue['addr']}" in log


def _capbank_link(port: int, mode: str) -> DeviceLink:
    scn = Scenario.model_validate({
        "name": "t", "clock": {"duration": "1min", "step": "1s"}, "grid": {"feeder": "ieee33"},
        "devices": [{"name": "cap1", "kind": "capbank", "bus": 30, "modbus": {"port": port}, "emulate": True,
                     "stub_args": {"mode": mode}}]})
    c = coupling(scn, scn.devices[0], REPO)
    return DeviceLink(c, Guard(c.name, c.writable, c.rules()), DeviceClient(c.name, "127.0.0.1", port, 1, 0.5), True)


def test_a_capacitor_banks_own_moves_are_no_alarm_but_a_step_command_from_outside_is():
    low = {"bus.30.vm_pu": 0.90}  # below the bank's 0.97 pu switch-in voltage: in auto mode it steps in itself
    auto = Stub("capbank", "--mode", "auto", "--delay", "0", "--tick", "0.02")
    manual = Stub("capbank", "--mode", "manual", "--tick", "0.02")

    async def main() -> tuple[list, list, list]:
        a, m = _capbank_link(auto.port, "auto"), _capbank_link(manual.port, "manual")
        await a.start()
        await m.start()
        seen_auto, steps = [], []
        for _ in range(6):
            await a.cycle(low)
            await asyncio.sleep(0.05)
            seen_auto += a.notes
            steps.append(a.values["StepCmd"])
        await m.cycle(low)
        assert await rogue_write("127.0.0.1", manual.port, m.c.regmap, "StepCmd", 3)
        await asyncio.sleep(0.05)
        await m.cycle(low)
        a.close()
        m.close()
        return seen_auto, steps, m.notes

    try:
        seen_auto, steps, notes = asyncio.run(main())
    finally:
        auto.stop()
        manual.stop()
    assert steps[-1] > steps[0]  # the bank moved its StepCmd itself ...
    assert "device_write_unexpected" not in {kind for kind, _ in seen_auto}  # ... and that is no alarm
    hit = [n for n in notes if n[0] == "device_write_unexpected"]
    assert hit == [("device_write_unexpected", "cap1.StepCmd")] and hit[0].detail == "register 2: 0 -> 3"


def test_read_only_keeps_a_wire_attacks_writes_off_the_device(tmp_path):
    path = tmp_path / "ro.yaml"
    path.write_text(inverter_scenario("ro", "20s", "{kind: none}", device="""\
        wire:
          - {kind: command_injection, at: 5s, duration: 3s, point: VArPct_Ena, value: 1}
        """), encoding="utf-8")
    outcome = run_scenario(load_scenario(path), tmp_path / "out", options=RunOptions(read_only=True))
    assert outcome.status == "ok", outcome.message
    _, events, metrics = _results(tmp_path / "out")
    rows = set(zip(events["kind"], events["target"], events["detail"]))
    assert ("wire_command_injection", "inv1.VArPct_Ena", "") in rows  # the attack was scheduled ...
    assert ("guard_blocked", "inv1.VArPct_Ena", "read-only: wire attack write not sent") in rows  # ... and blocked
    log = (tmp_path / "out" / "devices" / "inv1.log").read_text(encoding="utf-8")
    assert "write applied" not in log and metrics["device_write_unexpected"] == 0


def test_the_grid_server_records_accepted_commands_with_the_client_and_refuses_setpoints_off_its_list(tmp_path, capfd):
    port = free_port()
    path = tmp_path / "scada.yaml"
    path.write_text(inverter_scenario("scada", "30s", "{kind: none}", device="stub_args: {ramp_rate: 1000}\n") + (
        f"grid_server: {{port: {port}, setpoints: [pv1.p_limit_mw]}}\n"), encoding="utf-8")
    polled: dict = {}

    def scada() -> None:
        client = _client(port)
        try:
            time.sleep(0.5)
            polled["addr"] = "%s:%d" % client.socket.getsockname()[:2]
            polled["p"] = client.write_registers(0, client.convert_to_registers(0.4, client.DATATYPE.FLOAT32),
                                                 device_id=1)  # pv1.p_limit_mw: on the list
            polled["q"] = client.write_registers(1000, client.convert_to_registers(0.2, client.DATATYPE.FLOAT32),
                                                 device_id=1)  # pv1.q_set_mvar: not on the list
        finally:
            client.close()
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:  # 300 malformed frames
            for i in range(300):
                raw.sendall(struct.pack(">HHHB", i, 0, 3, 1) + bytes([0x03, 0x00]))
            time.sleep(0.3)

    outcome = run_alongside(path, tmp_path / "out", scada)
    assert outcome.status == "ok", outcome.message
    assert not polled["p"].isError() and polled["q"].isError() and polled["q"].exception_code == 0x03
    ts, events, _ = _results(tmp_path / "out")
    rows = set(zip(events["kind"], events["target"], events["detail"]))
    assert ("scada_command", "scada.pv1.p_limit_mw", f"0.4 from {polled['addr']}") in rows
    assert ("guard_blocked", "scada.pv1.q_set_mvar", "") in rows
    assert ts["pv1.p_mw"].iloc[-1] == pytest.approx(0.4, abs=2e-3)
    log = (tmp_path / "out" / "devices" / "grid_server.log").read_text(encoding="utf-8")
    rejected = log.count("rejected: ILLEGAL_VALUE")
    assert 0 < rejected < 300 and "rate limit of 20 messages/s reached" in log  # rate-limited, in the file ...
    terminal = capfd.readouterr()
    assert "rejected" not in terminal.err + terminal.out and "Traceback" not in terminal.err  # ... not on the terminal


def test_validate_names_a_scada_setpoint_the_scenario_does_not_have(tmp_path, cli):
    path = tmp_path / "bad.yaml"
    path.write_text(inverter_scenario("bad", "10s") + "grid_server: {port: 1502, setpoints: [pv9.p_limit_mw]}\n",
                    encoding="utf-8")
    code, output, _ = cli("validate", path)
    assert code == 2
    assert "grid_server.setpoints[0]" in output and "'pv9.p_limit_mw' is no generator setpoint" in output
