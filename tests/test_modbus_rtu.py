"""Modbus RTU on serial lines: socat pseudo-terminal pairs, a firmware stub on one end, clients on the other.

Covered: CRC-16/MODBUS against its published check value and pymodbus's own CRC; raw RTU
frames to the stub (FC3, FC16, exception answers, silence for another unit id and for a
wrong CRC); pymodbus's serial client and the bridge's `DeviceClient` against the stub (same
failure kinds as over TCP: exception, timeout, garbage, connection, and reconnection); the
device link's guard, read-back and stale handling over RTU; `cosim probe --serial`; the
scenario's `transport: rtu` checks; and a whole run with an emulated inverter over RTU next
to the same run over TCP.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import struct
import time
from pathlib import Path

import pandas as pd
import pytest
import serial
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType
from pymodbus.framer.rtu import FramerRTU

from cosim.scenario.schema import Scenario
from hil import MAPS_DIR
from hil.client import DeviceClient, DeviceError
from hil.devices import coupling
from hil.guard import Guard
from hil.link import DeviceLink
from hil.rtu_server import adu, crc16
from hil.serial_line import SerialLine, line_of
from hil.stubs import pty_pair, start_stub, stop_process
from hil_support import REPO, free_port, inverter_scenario

SUNS = [0x5375, 0x6E53]  # "SunS", the SunSpec marker at 40000 (SunSpec Information Model Specification)
DA = 40068  # model 1 device address: read-write uint16, 1..247
GRID = {"pv1.p_avail_mw": 0.8, "bus.18.vm_pu": 1.02}


def inverter_coupling(path: str, unit: int = 1, **device):
    """The coupling of an emulated inverter inv1 (for a 1 MW pv1) on Modbus RTU at `path`."""
    spec = {"name": "inv1", "kind": "inverter", "bus": 18, "emulate": True, "stub_args": {"ramp_rate": 1000},
            "modbus": {"transport": "rtu", "serial": path, "unit": unit, "timeout": 0.3}, **device}
    scn = Scenario.model_validate({"name": "t", "clock": {"duration": "1min", "step": "1s"}, "grid": {"feeder": "ieee33"},
                                   "generators": [{"name": "pv1", "kind": "pv", "bus": 18, "p_mw": 1.0}],
                                   "devices": [spec]})
    return coupling(scn, scn.devices[0], REPO)


class Bus:
    """A socat pair of pseudo-terminals: `master` is the bridge's end, `slave` the stub's; `serve` puts an inverter
    stub (ramp rate 1000 %/s) on the slave end; everything is stopped at the end of the test."""

    def __init__(self, folder: Path):
        self.folder, self.master, self.slave = folder, folder / "bus", folder / "bus.stub"
        self.socat = pty_pair(self.master, self.slave, folder / "socat.log")
        self.stubs: list = []

    def serve(self) -> None:
        c = inverter_coupling(str(self.master))
        info, proc = start_stub(c, self.folder / f"stub{len(self.stubs)}.log", line=SerialLine(str(self.slave)))
        self.stubs.append((info, proc))

    def stop_stubs(self) -> None:
        for info, proc in self.stubs:
            stop_process(info.pid, proc)
        self.stubs.clear()

    def close(self) -> None:
        self.stop_stubs()
        stop_process(self.socat.pid, self.socat)


@pytest.fixture
def bus(tmp_path):
    b = Bus(tmp_path)
    yield b
    b.close()


# -- the CRC and raw frames ----------------------------------------------------------------------

def test_crc16_modbus_matches_its_check_value_and_pymodbus():
    assert crc16(b"123456789") == 0x4B37  # CRC-16/MODBUS check value (Greg Cook's CRC catalogue)
    assert adu(1, bytes.fromhex("0300000001")) == bytes.fromhex("010300000001840a")  # the classic read example
    rng = random.Random(7)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        assert crc16(data).to_bytes(2, "little") == FramerRTU.compute_CRC(data).to_bytes(2, "big")


def _exchange(port: serial.Serial, frame: bytes, answer_size: int) -> bytes:
    port.write(frame)
    return port.read(answer_size)


def test_raw_rtu_frames_to_the_stub(bus):
    bus.serve()
    with serial.Serial(str(bus.master), 19200, timeout=5) as port:
        # FC3: unit, fc, byte count, registers, CRC (low byte first)
        reply = _exchange(port, adu(1, struct.pack(">BHH", 3, 40000, 2)), 9)
        assert reply[:7] == bytes([1, 3, 4]) + struct.pack(">2H", *SUNS)
        assert FramerRTU.check_CRC(reply[:-2], int.from_bytes(reply[-2:], "big"))
        # FC16: the echo of address and quantity; the value is there when read back
        write = adu(1, struct.pack(">BHHBH", 16, DA, 1, 2, 17))
        assert _exchange(port, write, 8) == adu(1, struct.pack(">BHH", 16, DA, 1))
        assert _exchange(port, adu(1, struct.pack(">BHH", 3, DA, 1)), 7) == adu(1, bytes([3, 2, 0, 17]))
        # exception answers: fc | 0x80 and the code, as over TCP
        assert _exchange(port, adu(1, struct.pack(">BHH", 3, 1, 1)), 5) == adu(1, bytes([0x83, 0x02]))
        assert _exchange(port, adu(1, struct.pack(">BHHBH", 16, DA, 1, 2, 0)), 5) == adu(1, bytes([0x90, 0x03]))
        # another unit id, then a wrong CRC: no answer; the next bytes on the line answer the request after them
        port.write(adu(2, struct.pack(">BHH", 3, 40000, 2)))
        bad = bytearray(adu(1, struct.pack(">BHH", 3, 40000, 2)))
        bad[-1] ^= 0xFF
        port.write(bytes(bad))
        assert _exchange(port, adu(1, struct.pack(">BHH", 3, DA, 1)), 7) == adu(1, bytes([3, 2, 0, 17]))
    log = (bus.folder / "stub0.log").read_text(encoding="utf-8")
    assert "wrong CRC" in log and "ILLEGAL_ADDRESS" in log and "write applied: DA=17" in log


# -- clients ---------------------------------------------------------------------------------------

def test_pymodbus_serial_client_against_the_stub(bus):
    bus.serve()

    async def main():
        client = AsyncModbusSerialClient(str(bus.master), framer=FramerType.RTU, baudrate=19200, timeout=2, retries=0)
        assert await client.connect()
        rr = await client.read_holding_registers(40000, count=2, device_id=1)
        assert rr.registers == SUNS
        assert not (await client.write_registers(DA, [42], device_id=1)).isError()
        assert (await client.read_holding_registers(DA, count=1, device_id=1)).registers == [42]
        rr = await client.read_holding_registers(1, count=1, device_id=1)
        assert rr.isError() and rr.exception_code == 0x02
        client.close()

    asyncio.run(main())


def test_device_client_over_rtu_has_the_failure_kinds_of_tcp(bus):
    bus.serve()

    async def main():
        client = DeviceClient("inv1", serial=SerialLine(str(bus.master)), unit=1, timeout=0.3)
        assert await client.connect()
        assert await client.read(40000, 2) == SUNS
        await client.write(DA, [9])
        assert await client.read(DA, 1, write=(DA, [11])) == [11]  # FC23 over RTU
        with pytest.raises(DeviceError) as exc:
            await client.read(1, 1)
        assert exc.value.kind == "exception" and exc.value.code == 0x02
        client.close()
        other = DeviceClient("inv9", serial=SerialLine(str(bus.master)), unit=9, timeout=0.3)
        assert await other.connect()
        with pytest.raises(DeviceError) as exc:  # a slave on a bus is silent for another unit id
            await other.read(40000, 2)
        assert exc.value.kind == "timeout" and other.stats.timeouts == 1
        other.close()

    asyncio.run(main())


def test_device_client_over_rtu_sees_garbage_and_reconnects(tmp_path):
    master, slave = tmp_path / "line", tmp_path / "line.stub"

    async def main():
        client = DeviceClient("dev", serial=SerialLine(str(master)), timeout=0.3, backoff=(0.05, 0.2))
        assert not await client.connect()  # no such line yet
        with pytest.raises(DeviceError) as exc:
            await client.read(0, 1)
        assert exc.value.kind == "connection"
        socat = pty_pair(master, slave, tmp_path / "socat.log")
        try:
            deadline = time.monotonic() + 10
            while not client.connected and time.monotonic() < deadline:
                client.ensure_reconnect(time.monotonic())
                await asyncio.sleep(0.05)
            assert client.connected and client.stats.reconnects == 1
            fd = os.open(slave, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)  # a "slave" that answers line noise
            try:
                loop = asyncio.get_running_loop()
                loop.add_reader(fd, lambda: os.read(fd, 256) and os.write(fd, b"\x01\x03\x02\xff\xff\x00\x00"))
                with pytest.raises(DeviceError) as exc:
                    await client.read(0, 1)
                assert exc.value.kind == "garbage" and client.stats.garbage == 1
                loop.remove_reader(fd)
            finally:
                os.close(fd)
        finally:
            client.close()
            stop_process(socat.pid, socat)

    asyncio.run(main())


# -- above the client: guard, read-back, stale -----------------------------------------------------

def _link(bus: Bus, **device) -> DeviceLink:
    c = inverter_coupling(str(bus.master), **device)
    client = DeviceClient(c.name, unit=1, timeout=0.3, backoff=(0.1, 0.4), serial=line_of(c.spec.modbus))
    return DeviceLink(c, Guard(c.name, c.writable, c.rules()), client, True, 60.0)


def test_guard_readback_and_stale_work_over_rtu(bus):
    bus.serve()

    async def main():
        link = _link(bus, limits={"w_max_lim_pct": [20, 100], "max_step_pct_per_s": 40})
        await link.start()
        await link.cycle(GRID, now=0.0)
        assert not link.stale and link.values["WMaxLimPct"] == 100
        for point, v in link.c.translate("pv1.p_limit_mw", 0.0).items():
            link.command(point, v)
        seen = []
        for k in range(1, 5):  # steps of 1 s on the guard's clock: the same numbers as over TCP
            await link.cycle(GRID, now=float(k))
            seen.append(link.values["WMaxLimPct"])
        assert seen == [60, 20, 20, 20] and link.guard.clamped == 4
        assert link.counts["readback_mismatches"] == 0
        bus.stop_stubs()  # the line stays, nobody answers on it
        await link.cycle(GRID, now=5.0)
        assert link.stale and {"device_stale", "device_timeout"} <= {k for k, _ in link.notes}
        bus.serve()  # a restarted slave: no reconnection on a serial line, its state changed behind the bridge
        await link.cycle(GRID, now=6.0)
        assert not link.stale and link.values["WMaxLimPct"] == 100  # seen as a change the bridge did not write
        await link.cycle(GRID, now=7.0)
        assert link.values["WMaxLimPct"] == 20  # the setpoint in force, written again
        link.close()

    asyncio.run(main())


def test_cosim_probe_over_a_serial_line(bus, cli):
    bus.serve()
    code, output, _ = cli("probe", "--serial", bus.master, "--map", MAPS_DIR / "inverter.yaml")
    assert code == 0, output
    assert "PV-STUB-0001" in output and "19200 8N1" in output
    code, output, _ = cli("probe", "--serial", bus.master, "--unit", "7", "--timeout", "0.3")
    assert code == 2 and "did not answer" in output and "--baudrate" in output
    code, output, _ = cli("probe", "--serial", bus.folder / "nothing", "--map", MAPS_DIR / "inverter.yaml")
    assert code == 2 and "no serial device" in output
    code, output, _ = cli("probe", "--serial", bus.master, "--port", "502")
    assert code == 2 and "one of them" in output


# -- the scenario ----------------------------------------------------------------------------------

@pytest.mark.parametrize("modbus, emulate, message", [
    ("{transport: rtu, serial: /dev/ttyUSB0, port: 5020}", "false", "modbus.port is meaningless with transport: rtu"),
    ("{transport: rtu, host: 10.0.0.2}", "true", "modbus.host is meaningless with transport: rtu"),
    ("{transport: rtu}", "false", "modbus.serial is required for a real device on Modbus RTU"),
    ("{port: 5020, baudrate: 9600}", "false", "modbus.baudrate is only for transport: rtu"),
    ("{transport: rtu, serial: /dev/ttyUSB0, stopbits: 3}", "false", "stopbits"),
])
def test_bad_rtu_blocks_are_clear_errors(write_scenario, cli, modbus, emulate, message):
    path = write_scenario(re.sub(r"modbus: \{[^}]*\}", f"modbus: {modbus}", inverter_scenario("v", "10s", emulate=emulate)))
    code, output, _ = cli("validate", path)
    assert code == 2 and message in output and "devices[0]" in output and "Traceback" not in output


def test_wire_attacks_need_tcp(write_scenario, cli):
    text = inverter_scenario("v", "10s", device="wire: [{kind: drop, at: 1s, duration: 1s}]\n")
    path = write_scenario(re.sub(r"modbus: \{[^}]*\}", "modbus: {transport: rtu}", text))
    code, output, _ = cli("validate", path)
    assert code == 2 and "wire attacks need Modbus-TCP" in output and "Traceback" not in output


# -- the run's devices ------------------------------------------------------------------------------

def test_a_run_session_serves_an_emulated_rtu_device_on_a_pty_pair_and_stops_both(tmp_path):
    from cosim.children import pid_alive
    from cosim.scenario.loader import load_scenario
    from hil.stubs import DeviceSession, DeviceUnavailable

    path = tmp_path / "s.yaml"
    path.write_text(re.sub(r"modbus: \{[^}]*\}", "modbus: {transport: rtu, baudrate: 9600, parity: E}",
                           inverter_scenario("s", "10s")), encoding="utf-8")
    loaded = load_scenario(path)
    with DeviceSession(loaded, tmp_path / "devices") as session:
        m = loaded.scenario.devices[0].modbus
        assert m.serial == str((tmp_path / "devices" / "inv1.pty").absolute()) and not session.missing
        assert (m.baudrate, m.parity) == (9600, "N")  # no parity bit on a pseudo-terminal
        assert "on serial" in (tmp_path / "devices" / "inv1.log").read_text(encoding="utf-8")
        pids = [session.ptys[0].pid] + [info.pid for info, _ in session.started]

        async def read() -> list[int]:
            client = DeviceClient("inv1", serial=line_of(m), timeout=0.5)
            assert await client.connect()
            try:
                return await client.read(40000, 2)
            finally:
                client.close()

        assert asyncio.run(read()) == SUNS
    assert not any(pid_alive(pid) for pid in pids)  # the stub and socat stopped with the session
    assert not (tmp_path / "devices" / "inv1.pty").exists()
    real = path.read_text(encoding="utf-8").replace("emulate: true", "emulate: false").replace(
        "transport: rtu,", f"transport: rtu, serial: {tmp_path / 'ttyUSB9'},")
    path.write_text(real, encoding="utf-8")
    with pytest.raises(DeviceUnavailable, match="no serial device .*ttyUSB9"):
        with DeviceSession(load_scenario(path), tmp_path / "devices2"):
            pass


# -- whole runs ------------------------------------------------------------------------------------

def _run(tmp_path: Path, name: str, rtu: bool) -> pd.DataFrame:
    from cosim.assembly import RunOptions
    from cosim.runner import run_scenario
    from cosim.scenario.loader import load_scenario

    text = inverter_scenario(name, "20s", "{kind: droop}", free_port(),
                             device="stub_args: {ramp_rate: 1000, tick: 0.01}\n")  # a tick inside the 35-ms budget
    if rtu:
        text = re.sub(r"modbus: \{port: \d+, ", "modbus: {transport: rtu, ", text)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    outcome = run_scenario(load_scenario(path), tmp_path / name, options=RunOptions(realtime=0.05))
    assert outcome.status == "ok", outcome.message
    return pd.read_parquet(tmp_path / name / "timeseries.parquet")


def test_a_run_with_an_emulated_inverter_over_rtu_matches_the_same_run_over_tcp(tmp_path):
    rtu, tcp = _run(tmp_path, "rtu", rtu=True), _run(tmp_path, "tcp", rtu=False)
    assert rtu["inv1.stale"].sum() == 0 and len(rtu) == len(tcp) == 20
    assert (tmp_path / "rtu" / "devices" / "inv1.socat.log").exists()  # the run made the pty pair
    assert "on serial" in (tmp_path / "rtu" / "devices" / "inv1.log").read_text(encoding="utf-8")
    assert rtu["inv1.p_mw"].iloc[5] > 0.5  # the inverter produces and the grid takes it ...
    assert rtu["pv1.p_mw"].to_numpy() == pytest.approx(rtu["inv1.p_mw"].to_numpy(), abs=2e-3)
    for col in ("inv1.p_mw", "inv1.q_mvar", "pv1.p_mw", "bus.18.vm_pu"):  # ... as over TCP
        assert rtu[col].to_numpy() == pytest.approx(tcp[col].to_numpy(), abs=2e-3), col
