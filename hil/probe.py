"""The commissioning tool behind `cosim probe`: read a device's registers and decode them, or say clearly why not.

Given a register map, every point is read (in as few requests as the map allows) and decoded;
with SunSpec, the model chain is discovered and its known models decoded. Both read through
`hil.reading` with one `DeviceClient`, like the bridge, over Modbus-TCP or, given a serial
line, Modbus RTU; or over IEC 60870-5-104 (`hil.iec104_client`: the points of the device's
object list, through the same plan and decoding). A refused
connection, a timeout or a Modbus exception code ends in a `ProbeError` whose message names
the device, what was asked and what to check.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymodbus.constants import ExcCodes

from hil.client import DeviceClient, DeviceError, exception_text, reachable
from hil.reading import ReadPlan
from hil.registers import RegisterMap
from hil.serial_line import SerialLine, openable
from hil.sunspec import SunSpecError, model_map, scan

HINTS = {ExcCodes.ILLEGAL_ADDRESS: "the register map does not match this device",
         ExcCodes.ILLEGAL_FUNCTION: "the device does not serve this function",
         ExcCodes.GATEWAY_NO_RESPONSE: "no device answers this unit id behind the gateway; check --unit"}


class ProbeError(Exception):
    """The probe could not read the device; the message is for the person at the terminal."""


@dataclass(frozen=True)
class Reading:
    """One decoded point."""

    group: str
    name: str
    address: int
    value: Any
    unit: str
    access: str


def _explain(exc: DeviceError, what: str, client: DeviceClient) -> ProbeError:
    where = f"{client.where} unit {client.unit}"
    if exc.kind == "exception":
        hint = HINTS.get(exc.code or 0, "")
        return ProbeError(f"{where} answered {exception_text(exc.code)} to {what}" + (f": {hint}" if hint else ""))
    if exc.kind == "timeout":
        if client.serial is not None:  # an RTU slave is silent for another unit id, a wrong baud rate or parity
            return ProbeError(f"{where} did not answer {what} within the timeout: check --unit, --baudrate, "
                              "--parity and --stopbits, and the wiring (A/B)")
        return ProbeError(f"{where} accepted the connection but did not answer {what} within the timeout: "
                          "check --unit, or the device is busy")
    if exc.kind == "garbage":
        framing = "Modbus-TCP" if client.serial is None else "Modbus RTU (check --baudrate and --parity)"
        return ProbeError(f"{where} answered {what} with bytes that are not {framing}: is it a Modbus device?")
    return ProbeError(f"{where}: the connection was lost during {what}")


async def _connect(host: str, port: int | None, unit: int, timeout: float, serial: SerialLine | None) -> DeviceClient:
    if serial is not None:
        why = openable(serial)
        if why is not None:
            raise ProbeError(why)
    elif (why := await reachable(host, port or 0, timeout)) is not None:
        raise ProbeError(f"{why}; is the device up (emulated ones: cosim devices up SCENARIO) and the port right?")
    client = DeviceClient("probe", host, port, unit, timeout, serial=serial)
    if not await client.connect():
        raise ProbeError(f"cannot open a Modbus {'RTU' if serial else 'TCP'} connection to {client.where}")
    return client


async def read_map(host: str, port: int | None, unit: int, regmap: RegisterMap, timeout: float = 1.0,
                   serial: SerialLine | None = None) -> list[Reading]:
    """Every point of `regmap`, decoded (over RTU on `serial` when given)."""
    client = await _connect(host, port, unit, timeout, serial)
    try:
        plan = ReadPlan(regmap)
        blocks = []
        for start, count in plan.spans:
            try:
                blocks.append(await client.read(start, count))
            except DeviceError as exc:
                raise _explain(exc, f"a read of registers {start}..{start + count - 1}", client) from None
        values = plan.decode(blocks).values
        return [Reading(regmap.device, p.name, p.address, values.get(p.name), p.unit, p.access) for p in regmap.points]
    finally:
        client.close()


async def read_sunspec(host: str, port: int | None, unit: int, timeout: float = 1.0,
                       serial: SerialLine | None = None) -> list[Reading]:
    """The SunSpec model chain: every point of the known models (1, 103, 123), decoded; one line per other model."""
    client = await _connect(host, port, unit, timeout, serial)
    try:
        try:
            models = await scan(client)
        except SunSpecError as exc:
            try:  # say what the device answers where the marker should be
                await client.read(40000, 2)
            except DeviceError as err:
                raise _explain(err, "a read of the SunSpec marker at 40000", client) from None
            raise ProbeError(f"{client.where} unit {unit}: {exc}") from None
        out = []
        for m in models:
            if m.is_end:
                continue
            if not m.points:  # e.g. the IEEE 1547 models 701-706: found, decoded only with --map
                out.append(Reading(f"model {m.id}", "(not decoded)", m.address, f"{m.length} registers, use --map", "",
                                   "r"))
                continue
            rmap = model_map(m.id, m.address)
            for p in rmap.points[2:]:
                if p.name in m.points:
                    out.append(Reading(f"model {m.id} {m.name}", p.name, p.address, m.points[p.name], p.unit, p.access))
        return out
    finally:
        client.close()


async def read_iec104(host: str, port: int, common_address: int, regmap: RegisterMap, map_file: Path,
                      timeout: float = 1.0) -> list[Reading]:
    """Every point the IEC 104 station carries (its object list, `hil.iec104_client`), decoded like a map read."""
    from hil.iec104_client import client_for  # the optional c104 extra, only on this path

    if (why := await reachable(host, port, timeout)) is not None:
        raise ProbeError(f"{why}; is the device up and the port right?")
    try:
        client = client_for("probe", regmap, map_file, host, port, common_address, timeout)
    except ValueError as exc:
        raise ProbeError(str(exc)) from None
    try:
        if not await client.connect():
            raise ProbeError(f"{client.where}: no IEC 104 connection or no answer to the station interrogation "
                             f"within {timeout:g} s: check --unit (the common address)")
        names = [p.name for p in regmap.points if p.name in client.points]
        plan = ReadPlan(regmap, names)
        values = plan.decode([await client.read(a, n) for a, n in plan.spans]).values
        return [Reading(regmap.device, n, regmap[n].address, values.get(n), regmap[n].unit, regmap[n].access)
                for n in names]
    finally:
        client.close()


def probe(host: str, port: int | None, unit: int = 1, regmap: RegisterMap | None = None, timeout: float = 1.0,
          serial: SerialLine | None = None, iec104_map: Path | None = None) -> list[Reading]:
    """Synchronous entry point: read with `regmap`, or by SunSpec discovery when it is None; Modbus-TCP at host:port,
    or RTU on the `serial` line when given; with `iec104_map` (the file `regmap` came from), IEC 104 at host:port
    with common address `unit`."""
    if iec104_map is not None and regmap is not None:
        return asyncio.run(read_iec104(host, port or 2404, unit, regmap, iec104_map, timeout))
    if regmap is not None:
        return asyncio.run(read_map(host, port, unit, regmap, timeout, serial))
    return asyncio.run(read_sunspec(host, port, unit, timeout, serial))
