"""Integration tests of the firmware stubs over real Modbus-TCP on 127.0.0.1.

Each test starts the stub(s) as subprocesses (``python -m firmware_stubs.X
--port 0``), waits for the "ready ... host:port" line on stderr and always
terminates them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from firmware_stubs.image import RegisterImage
from hil import MAPS_DIR
from hil.codec import decode
from hil.reading import ModbusWriteError, read_points, write_point, write_points
from hil.registers import RegisterMap, load_map
from hil.sunspec import scan
from tests.hil_support import Stub, wait_for

MAPS = {d: load_map(MAPS_DIR / f"{d}.yaml") for d in ("inverter", "capbank", "regulator", "recloser")}


# --------------------------------------------------------------------------- #
# harness
# --------------------------------------------------------------------------- #
@pytest.fixture
def start_stub():
    started: list[Stub] = []

    def _start(device: str, *args: str) -> Stub:
        s = Stub(device, *args)
        started.append(s)
        return s

    yield _start
    for s in started:
        s.stop()


@contextlib.asynccontextmanager
async def modbus(stub: Stub) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(stub.host, port=stub.port, timeout=2, retries=0)
    assert await client.connect(), f"cannot connect to {stub.device}"
    try:
        yield client
    finally:
        client.close()


async def wait_until(
    fn: Callable[[], Awaitable[Any]], pred: Callable[[Any], bool], timeout: float, interval: float = 0.05
) -> Any:
    """Poll ``fn`` until ``pred(value)``; returns the last value (asserts on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if pred(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s, last value {value!r}")
        await asyncio.sleep(interval)


async def get(client, regmap: RegisterMap, name: str) -> Any:
    return (await read_points(client, regmap, [name]))[name]


async def snapshot(client, regmap: RegisterMap) -> dict[int, int]:
    out: dict[int, int] = {}
    for start, count in regmap.blocks():
        rr = await client.read_holding_registers(start, count=count, device_id=1)
        assert not rr.isError(), rr
        out.update({start + i: v for i, v in enumerate(rr.registers)})
    return out


async def exception_code(coro: Awaitable[Any]) -> int | None:
    rr = await coro
    return rr.exception_code if rr.isError() else None


def run(coro):
    return asyncio.run(coro)


def logged(stub: Stub, *texts: str, timeout: float = 5.0) -> bool:
    """True once every text is in the stub's log (its stderr is read by a thread, so lines may trail)."""
    return wait_for(lambda: all(t in stub.log for t in texts), timeout)


# --------------------------------------------------------------------------- #
# register images
# --------------------------------------------------------------------------- #
DYNAMIC = {"Heartbeat"}


def test_register_image_built_from_map():
    """In-process: the image holds the map defaults; firmware-side set() clamps."""
    img = RegisterImage(MAPS["inverter"])
    assert img.read(40000, 4) == [0x5375, 0x6E53, 1, 66]
    assert img.get("WMaxLimPct") == 100.0 and img.raw("WMaxLimPct") == [1000]
    img.set("W", 5e9)  # far beyond int16 * 10**W_SF: clamped, never the NA sentinel
    assert img.raw("W") == [0x7FFF]
    img.set("W", -5e9)
    assert img.raw("W") == [0x8001]
    img.set("PAvail", 1234.5)
    assert img.get("PAvail") == 1234.5
    assert set(img.regs) == {a for p in MAPS["inverter"].points for a in range(p.address, p.end)}


@pytest.mark.parametrize("device", ["inverter", "capbank", "regulator", "recloser"])
def test_register_image_matches_map(start_stub, device):
    stub = start_stub(device)
    regmap = MAPS[device]

    async def go():
        async with modbus(stub) as c:
            sfs: dict[str, int] = {}
            for p in sorted(regmap.points, key=lambda q: q.type != "sunssf"):
                rr = await c.read_holding_registers(p.address, count=p.size, device_id=1)
                assert not rr.isError(), f"{device}.{p.name} not readable: {rr}"
                value = decode(p, rr.registers, sfs.get(p.sf) if p.sf else None)
                if p.type == "sunssf":
                    sfs[p.name] = value
                if p.default is None or p.name in DYNAMIC:
                    continue
                if isinstance(p.default, str):
                    assert value == p.default, p.name
                else:
                    assert value == pytest.approx(p.default, rel=1e-6, abs=1e-3), p.name
            # whole blocks read in one request each; input registers give the same image
            for start, count in regmap.blocks():
                hr = await c.read_holding_registers(start, count=count, device_id=1)
                ir = await c.read_input_registers(start, count=count, device_id=1)
                assert not hr.isError() and not ir.isError()
            # the register after the last point is outside the map
            last = max(p.end for p in regmap.points)
            assert await exception_code(c.read_holding_registers(last, count=1, device_id=1)) == 2

    run(go())
    assert stub.alive


# --------------------------------------------------------------------------- #
# inverter / SunSpec
# --------------------------------------------------------------------------- #
def test_sunspec_scan_finds_models(start_stub):
    stub = start_stub("inverter", "--serial", "INV-42")

    async def go():
        async with modbus(stub) as c:
            models = await scan(c)
        assert [(m.id, m.address, m.length) for m in models] == [
            (1, 40002, 66),
            (103, 40070, 50),
            (123, 40122, 24),
            (701, 40148, 153),
            (702, 40303, 50),
            (704, 40355, 65),
            (705, 40422, 49),
            (706, 40473, 31),
            (0xFFFF, 40506, 0),
        ]
        common, inv, ctl, *_, end = models
        assert end.is_end
        assert common.points["Mn"] == "CosimTestbed" and common.points["SN"] == "INV-42"
        assert inv.points["Hz"] == 50.0 and inv.points["PhVphA"] == pytest.approx(230.9, abs=0.1)
        assert inv.points["St"] == 2  # sleeping: no PV power fed yet
        assert ctl.points["WMaxLimPct"] == 100.0 and ctl.points["WMaxLim_Ena"] == 0
        assert ctl.points["WMaxLimPct_SF"] == -1

    run(go())


def test_sunspec_reference_client(start_stub):
    """Interoperability with the SunSpec Alliance client (pysunspec2), if installed."""
    client_mod = pytest.importorskip("sunspec2.modbus.client")
    stub = start_stub("inverter")
    dev = client_mod.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr=stub.host, ipport=stub.port, timeout=2)
    try:
        dev.scan()
        assert [(m.model_id, m.model_addr, m.model_len) for m in dev.model_list] == [
            (1, 40002, 66),
            (103, 40070, 50),
            (123, 40122, 24),
            (701, 40148, 153),
            (702, 40303, 50),
            (704, 40355, 65),
            (705, 40422, 49),
            (706, 40473, 31),
        ]
        assert dev.common[0].Mn.value == "CosimTestbed"
        ctl = dev.controls[0]
        ctl.WMaxLimPct.cvalue = 50
        ctl.WMaxLim_Ena.value = 1
        ctl.write()
        ctl.read()
        assert ctl.WMaxLimPct.cvalue == 50 and ctl.WMaxLim_Ena.value == 1
    finally:
        dev.close()


def test_inverter_power_limit_ramp_reversion_heartbeat(start_stub):
    stub = start_stub("inverter", "--w-max", "1000000")
    m = MAPS["inverter"]

    async def go():
        async with modbus(stub) as c:
            await write_point(c, m, "PAvail", 800_000.0)
            await wait_until(  # producing everything available: MPPT
                lambda: read_points(c, m, ["W", "St"]),
                lambda v: v["W"] == pytest.approx(800_000, abs=200) and v["St"] == 4,
                3,
            )
            hb0 = await get(c, m, "Heartbeat")
            await write_points(
                c,
                m,
                {"WMaxLimPct_RmpTms": 1, "WMaxLimPct_RvrtTms": 3, "WMaxLimPct": 50, "WMaxLim_Ena": 1},
            )
            t0 = time.monotonic()
            await asyncio.sleep(0.45)
            w_mid = await get(c, m, "W")
            assert 505_000 < w_mid < 790_000, f"no ramp: W={w_mid} after {time.monotonic() - t0:.2f} s"
            w = await wait_until(lambda: get(c, m, "W"), lambda w: w <= 500_100, 3)
            assert w == pytest.approx(500_000, abs=1_000)  # half of WMax
            assert time.monotonic() - t0 < 2.9
            vals = await read_points(c, m, ["St", "WMaxLimPct", "WMaxLim_Ena", "WLimEff"])
            assert vals["St"] == 5 and vals["WMaxLimPct"] == 50 and vals["WMaxLim_Ena"] == 1
            # reversion: no fresh write within WMaxLimPct_RvrtTms -> back to 100 %
            await wait_until(
                lambda: read_points(c, m, ["WMaxLimPct", "WMaxLim_Ena"]),
                lambda v: v == {"WMaxLimPct": 100.0, "WMaxLim_Ena": 0},
                4,
            )
            assert time.monotonic() - t0 >= 2.9
            await wait_until(
                lambda: read_points(c, m, ["W", "St"]),
                lambda v: v["W"] == pytest.approx(800_000, abs=200) and v["St"] == 4,
                3,
            )
            hb1 = await get(c, m, "Heartbeat")
            assert hb1 > hb0 + 10
            wh = await get(c, m, "WH")
            assert wh > 0

    run(go())
    assert logged(stub, "reversion", "write applied: WMaxLimPct=50"), stub.log


def test_inverter_reactive_power_is_capability_limited(start_stub):
    # VArMax (600 kvar) above what the 1.1 MVA rating leaves at P = 1 MW (458 kvar)
    stub = start_stub("inverter", "--w-max", "1000000", "--va-max", "1100000", "--var-max", "600000")
    m = MAPS["inverter"]

    async def go():
        async with modbus(stub) as c:
            await write_points(
                c,
                m,
                {"PAvail": 1_000_000.0, "VArPct_Mod": 2, "VArPct_RmpTms": 1, "VArMaxPct": 100, "VArPct_Ena": 1},
            )
            q_cap = (1.1e6**2 - 1.0e6**2) ** 0.5
            await wait_until(lambda: get(c, m, "VAr"), lambda q: q == pytest.approx(q_cap, abs=300), 3)
            v = await read_points(c, m, ["W", "VAr", "VA", "PF"])
            assert v["W"] == pytest.approx(1.0e6, abs=200)
            assert v["VA"] <= 1.1e6 + 100
            assert v["PF"] == pytest.approx(100 * 1.0e6 / 1.1e6, abs=0.2)
            # absorbing 50 % of VArMax fits the capability
            await write_point(c, m, "VArMaxPct", -50)
            await wait_until(lambda: get(c, m, "VAr"), lambda q: q == pytest.approx(-300_000, abs=300), 3)
            assert await get(c, m, "PF") < 0

    run(go())


# --------------------------------------------------------------------------- #
# rejected writes
# --------------------------------------------------------------------------- #
def test_rejected_writes_change_nothing(start_stub):
    inv = start_stub("inverter")
    cap = start_stub("capbank", "--steps", "4")
    mi, mc = MAPS["inverter"], MAPS["capbank"]
    hb = {mi["Heartbeat"].address, mc["Heartbeat"].address}

    async def go():
        async with modbus(inv) as c:
            before = await snapshot(c, mi)
            assert await exception_code(c.write_register(40600, 1, device_id=1)) == 2  # unmapped
            assert await exception_code(c.write_registers(40148, [1, 2], device_id=1)) == 2  # end marker (r)
            assert await exception_code(c.write_register(mi["W"].address, 7, device_id=1)) == 2  # read-only
            assert await exception_code(c.write_register(mi["WMaxLimPct"].address, 1500, device_id=1)) == 3
            assert await exception_code(c.write_register(mi["WMaxLim_Ena"].address, 2, device_id=1)) == 3
            # only half of a float32 point
            assert await exception_code(c.write_register(mi["PAvail"].address, 0x4000, device_id=1)) == 2
            # rw point followed by read-only scale factors: rejected as a whole
            a = mi["VArPct_Ena"].address
            assert await exception_code(c.write_registers(a, [1, 0, 0], device_id=1)) == 2
            # NaN into a float32 input
            nan = [0x7FC0, 0]
            assert await exception_code(c.write_registers(mi["VTermPu"].address, nan, device_id=1)) == 3
            # coil / discrete-input functions on mapped addresses: ILLEGAL_FUNCTION
            assert await exception_code(c.write_coil(40000, True, device_id=1)) == 1
            assert await exception_code(c.read_coils(40000, count=8, device_id=1)) == 1
            assert await exception_code(c.read_holding_registers(40000, count=2, device_id=9)) == 0x0B
            with pytest.raises(ModbusWriteError) as ei:
                await write_point(c, mi, "WMaxLimPct", 101)
            assert ei.value.exception_code == 3
            after = await snapshot(c, mi)
            assert {k: v for k, v in after.items() if k not in hb} == {k: v for k, v in before.items() if k not in hb}
        async with modbus(cap) as c:
            before = await snapshot(c, mc)
            assert await exception_code(c.write_register(mc["StepCmd"].address, 5, device_id=1)) == 3  # > NSteps
            assert await exception_code(c.write_register(mc["Step"].address, 1, device_id=1)) == 2
            assert await exception_code(c.write_register(100, 1, device_id=1)) == 2
            with pytest.raises(ModbusWriteError):
                await write_point(c, mc, "VOnPu", 1.05)  # above VOffPu
            after = await snapshot(c, mc)
            assert {k: v for k, v in after.items() if k not in hb} == {k: v for k, v in before.items() if k not in hb}
            # and a good write still works
            await write_point(c, mc, "StepCmd", 2)
            assert await read_points(c, mc, ["Step", "Status"]) == {"Step": 2, "Status": 1}

    run(go())
    assert logged(inv, "write rejected", "read-only", "outside"), inv.log
    assert logged(cap, "write rejected", "write applied: StepCmd=2"), cap.log


# --------------------------------------------------------------------------- #
# watchdog
# --------------------------------------------------------------------------- #
def test_watchdog_safe_default(start_stub):
    cap = start_stub("capbank", "--watchdog", "1")
    reg = start_stub("regulator", "--watchdog", "1")
    inv = start_stub("inverter", "--watchdog", "1")
    mc, mr, mi = MAPS["capbank"], MAPS["regulator"], MAPS["inverter"]
    # the watchdog runs from start: a stub may already have expired while the
    # others were starting, so count expiries relative to the set-up
    wdg: dict[str, int] = {}

    async def setup():
        async with modbus(cap) as c:
            await write_point(c, mc, "StepCmd", 3)
            assert await read_points(c, mc, ["Step", "Status"]) == {"Step": 3, "Status": 1}
            wdg["cap"] = await get(c, mc, "WdgCount")
        async with modbus(reg) as c:
            await write_points(c, mr, {"Mode": 0, "TapCmd": 3})
            assert await read_points(c, mr, ["Tap", "Mode"]) == {"Tap": 3, "Mode": 0}
            wdg["reg"] = await get(c, mr, "WdgCount")
        async with modbus(inv) as c:
            await write_points(c, mi, {"WMaxLimPct": 30, "WMaxLim_Ena": 1})
            assert await get(c, mi, "WMaxLimPct") == 30
            wdg["inv"] = await get(c, mi, "WdgCount")

    async def check():
        async with modbus(cap) as c:
            v = await read_points(c, mc, ["Step", "Status", "StepCmd", "Mode", "WdgCount"])
            assert v == {"Step": 0, "Status": 0, "StepCmd": 0, "Mode": 0, "WdgCount": wdg["cap"] + 1}
        async with modbus(reg) as c:
            v = await read_points(c, mr, ["Tap", "Mode", "WdgCount"])
            assert v == {"Tap": 3, "Mode": 1, "WdgCount": wdg["reg"] + 1}  # tap held, back to auto
        async with modbus(inv) as c:
            v = await read_points(c, mi, ["WMaxLimPct", "WMaxLim_Ena", "WdgCount"])
            assert v == {"WMaxLimPct": 100.0, "WMaxLim_Ena": 0, "WdgCount": wdg["inv"] + 1}

    run(setup())
    time.sleep(1.7)  # silent master
    run(check())
    for s in (cap, reg, inv):
        assert logged(s, "watchdog: no master request", "master requests resumed"), s.log


# --------------------------------------------------------------------------- #
# robustness
# --------------------------------------------------------------------------- #
def _raw(port: int, payload: bytes, *, rst: bool = False, wait: float = 0.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(payload)
        data = b""
        if wait:
            s.settimeout(wait)
            with contextlib.suppress(OSError):
                data = s.recv(256)
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return data


def test_garbage_and_abrupt_disconnect_do_not_kill_server(start_stub):
    stub = start_stub("recloser")
    rnd = random.Random(1234)
    for _ in range(5):
        _raw(stub.port, bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))))
    _raw(stub.port, struct.pack(">HHHB", 1, 0, 0xFFFF, 1) + b"\x03\x00")  # absurd MBAP length
    _raw(stub.port, struct.pack(">HHHBBHH", 1, 7, 6, 1, 3, 0, 1))  # wrong protocol id
    reply = _raw(stub.port, struct.pack(">HHHBB", 9, 0, 2, 1, 0x55), wait=1.0)  # unknown function
    assert reply[7] & 0x80 and reply[8] == 1  # exception response, ILLEGAL_FUNCTION
    _raw(stub.port, struct.pack(">HHHBBH", 1, 0, 6, 1, 3, 0), rst=True)  # reset mid-frame
    _raw(stub.port, struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 0, 10), rst=True)  # reset before reply
    _raw(stub.port, b"\x00" * 7 + b"\x03", rst=True)
    time.sleep(0.2)
    assert stub.alive

    async def go():
        async with modbus(stub) as c:
            v = await read_points(c, MAPS["recloser"], ["Status", "Lockout"])
            assert v == {"Status": 1, "Lockout": 0}

    run(go())
    assert stub.alive


def test_clean_exit_on_sigterm(start_stub):
    stub = start_stub("capbank")
    assert stub.stop() == 0
    assert "stopped" in stub.log


# --------------------------------------------------------------------------- #
# device logic
# --------------------------------------------------------------------------- #
def test_regulator_taps_in_auto_mode(start_stub):
    stub = start_stub("regulator", "--delay", "0.3", "--bandwidth", "0.02")
    m = MAPS["regulator"]

    async def go():
        async with modbus(stub) as c:
            assert await read_points(c, m, ["Mode", "Tap"]) == {"Mode": 1, "Tap": 0}
            await write_point(c, m, "VMeasPu", 1.05)  # above the band: tap down
            tap = await wait_until(lambda: get(c, m, "Tap"), lambda t: t <= -2, 3)
            v = await read_points(c, m, ["TapOps", "BandStatus"])
            assert v["TapOps"] >= 2 and v["BandStatus"] == 1
            await write_point(c, m, "VMeasPu", 1.0)  # in band: holds
            tap = await get(c, m, "Tap")
            await asyncio.sleep(0.6)
            assert await get(c, m, "Tap") == tap
            await write_point(c, m, "VMeasPu", 0.95)  # below: tap up
            await wait_until(lambda: get(c, m, "Tap"), lambda t: t > tap, 3)
            # TapCmd only in manual mode, and within TapMin..TapMax
            with pytest.raises(ModbusWriteError) as ei:
                await write_point(c, m, "TapCmd", 5)
            assert ei.value.exception_code == 3
            await write_points(c, m, {"VMeasPu": 1.0, "Mode": 0})
            await write_point(c, m, "TapCmd", 5)
            assert await get(c, m, "Tap") == 5
            with pytest.raises(ModbusWriteError):
                await write_point(c, m, "TapCmd", 17)
            assert await get(c, m, "Tap") == 5

    run(go())
    assert logged(stub, "auto (V=1.0500 pu"), stub.log


def test_capbank_auto_mode_switches_steps(start_stub):
    stub = start_stub("capbank", "--delay", "0.2", "--mode", "auto", "--steps", "2")
    m = MAPS["capbank"]

    async def go():
        async with modbus(stub) as c:
            await write_point(c, m, "VMeasPu", 0.95)
            await wait_until(lambda: get(c, m, "Step"), lambda s: s == 2, 3)
            v = await read_points(c, m, ["Status", "QOut", "OpCount"])
            assert v["Status"] == 1 and v["OpCount"] == 2
            assert v["QOut"] == pytest.approx(2 * 300 * 0.95**2, rel=1e-4)
            await write_point(c, m, "VMeasPu", 1.05)
            await wait_until(lambda: get(c, m, "Step"), lambda s: s == 0, 3)
            assert await get(c, m, "Status") == 0

    run(go())


def test_recloser_locks_out_after_n_trips(start_stub):
    stub = start_stub("recloser", "--trips-to-lockout", "3", "--pickup", "600")
    m = MAPS["recloser"]

    async def go():
        async with modbus(stub) as c:
            assert await get(c, m, "Status") == 1
            await write_point(c, m, "FaultA", 5000.0)
            for n in (1, 2, 3):
                v = await wait_until(
                    lambda: read_points(c, m, ["Status", "Tripped", "TripTotal", "Lockout"]),
                    lambda v, n=n: v["TripTotal"] == n and v["Status"] == 0,
                    3,
                )
                assert v["Tripped"] == 1
                if n < 3:
                    assert v["Lockout"] == 0
                    await write_point(c, m, "CloseCmd", 1)  # closes onto the fault: trips again
            assert await read_points(c, m, ["Lockout", "TripCount"]) == {"Lockout": 1, "TripCount": 3}
            # close refused while locked out, even without fault current
            await write_point(c, m, "FaultA", 0.0)
            with pytest.raises(ModbusWriteError) as ei:
                await write_point(c, m, "CloseCmd", 1)
            assert ei.value.exception_code == 3
            await asyncio.sleep(0.3)
            assert await get(c, m, "Status") == 0
            # reset, then close holds
            await write_point(c, m, "ResetCmd", 1)
            assert await read_points(c, m, ["Lockout", "TripCount", "ResetCmd"]) == {
                "Lockout": 0,
                "TripCount": 0,
                "ResetCmd": 0,
            }
            await write_point(c, m, "CloseCmd", 1)
            await asyncio.sleep(0.3)
            assert await read_points(c, m, ["Status", "Tripped", "CloseCmd"]) == {
                "Status": 1,
                "Tripped": 0,
                "CloseCmd": 0,
            }
            await write_point(c, m, "OpenCmd", 1)
            assert await get(c, m, "Status") == 0

    run(go())
    assert logged(stub, "LOCKOUT after 3 trips", "close refused"), stub.log
