"""Modbus serving of an emulated device: `hil.modbus_server.TcpServer` (or `hil.rtu_server.RtuServer` on a serial
line) in front of a `DeviceStub`.

The server does the framing and the request checks of the Modbus application protocol
(`hil.modbus_server`: pipelined requests answered in order, exception answers as function
code | 0x80); :class:`StubServer` is the device's data model behind it:

- reads of holding and input registers alike are served from the device's
  :class:`~firmware_stubs.image.RegisterImage`; a read touching an unmapped register gets
  ILLEGAL_ADDRESS (0x02);
- a write is rejected with ILLEGAL_ADDRESS (0x02) when it touches an unmapped register, only
  part of a multi-register point, or a read-only point; with ILLEGAL_VALUE (0x03) when a value
  is outside the point's min/max (or not finite) or the device logic refuses it; nothing is
  changed then;
- coil / discrete-input functions (FC1, 2, 5, 15) get ILLEGAL_FUNCTION (0x01): the devices have
  no bits, whatever the address;
- requests for another unit id get GATEWAY_NO_RESPONSE (0x0B) over TCP, no answer at all on a
  serial line (``--unit 0`` answers every unit id).

Every applied or rejected request is logged. Every request for this unit feeds the device's
:class:`~firmware_stubs.device.Watchdog` (``--watchdog N``; off by default), and the
firmware :func:`~firmware_stubs.device.tick_loop` runs next to the server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from pymodbus.constants import ExcCodes

from firmware_stubs.device import DeviceStub, Watchdog, WriteRejected, tick_loop
from hil.codec import decode
from hil.modbus_server import ILLEGAL_ADDRESS, DataModel, Refused, Table, TcpServer
from hil.registers import Point
from hil.rtu_server import RtuServer
from hil.serial_line import SerialLine


class _AllUnits:
    """Every unit id (``--unit 0``)."""

    def __contains__(self, unit: object) -> bool:
        return True


class StubServer(DataModel):
    """A Modbus-TCP server, or RTU on `serial`, in front of a :class:`DeviceStub` (its data model; see the module
    docstring)."""

    functions = frozenset({3, 4, 6, 16, 22, 23})  # registers only

    def __init__(self, device: DeviceStub, *, host: str = "127.0.0.1", port: int = 5020, unit: int = 1,
                 watchdog: float | None = None, tick: float = 0.1, log: logging.Logger | None = None,
                 serial: SerialLine | None = None):
        if not 0 <= unit <= 247:
            raise ValueError("unit must be in 0..247")
        self.device = device
        self.image = device.image
        self.map = device.image.map
        self.host = host
        self.port = port
        self.unit = unit
        self.serial = serial
        self.watchdog_s = watchdog if watchdog and watchdog > 0 else None
        self.tick_interval = tick
        self.log = log or logging.getLogger(f"firmware_stubs.{device.name}")
        self.server: TcpServer | RtuServer | None = None
        self.watchdog: Watchdog | None = None
        self._tasks: list[asyncio.Task] = []

    # -- data model --------------------------------------------------------- #
    def read(self, table: Table, address: int, count: int) -> list[int]:
        """Registers from the image (holding and input alike)."""
        regs = self.image.regs
        missing = next((a for a in range(address, address + count) if a not in regs), None)
        if missing is not None:
            raise Refused(ILLEGAL_ADDRESS, f"read {address}+{count}: register {missing} is not mapped")
        return [regs[a] for a in range(address, address + count)]

    def write(self, table: Table, address: int, values: list[int], fc: int) -> None:
        """Validate and apply a register write (see the module docstring)."""
        try:
            applied = self._check_write(address, values)
            self.device.validate_write(applied, time.monotonic())
        except WriteRejected as rej:
            raise Refused(int(rej.code), f"addr={address} count={len(values)}: {rej.reason}") from None
        for i, v in enumerate(values):
            self.image.regs[address + i] = v & 0xFFFF
        desc = ", ".join(f"{k}={_fmt(v)}" for k, v in applied.items())
        self.log.info("write applied: %s (fc=%d addr=%d count=%d) from %s", desc, fc, address, len(values), self.peer)
        try:
            self.device.on_write(applied, time.monotonic())
        except Exception:  # noqa: BLE001 - device bug must not kill the server
            self.log.exception("device on_write failed")

    def _alive(self, unit: int, fc: int) -> None:
        if self.watchdog is not None:
            self.watchdog.alive()

    def _check_write(self, address: int, values: list[int]) -> dict[str, Any]:
        """Validate a write; returns the new engineering values by point name."""
        end = address + len(values)
        points: list[Point] = []
        a = address
        while a < end:
            p = self.map.point_at(a)
            if p is None:
                raise WriteRejected(f"register {a} is not mapped", ExcCodes.ILLEGAL_ADDRESS)
            if p.address < address or p.end > end:
                raise WriteRejected(f"partial write of {p.size}-register point {p.name!r} ({p.address}..{p.end - 1})",
                                    ExcCodes.ILLEGAL_ADDRESS)
            if not p.writable:
                raise WriteRejected(f"point {p.name!r} is read-only", ExcCodes.ILLEGAL_ADDRESS)
            points.append(p)
            a = p.end
        out: dict[str, Any] = {}
        for p in points:
            v = decode(p, values[p.address - address: p.end - address], self.image.sf(p))
            if isinstance(v, float) and not math.isfinite(v):
                raise WriteRejected(f"{p.name}={v} is not finite")
            if isinstance(v, (int, float)) and not p.in_range(v):
                raise WriteRejected(f"{p.name}={_fmt(v)} outside {_fmt(p.min)}..{_fmt(p.max)}")
            out[p.name] = v
        return out

    # -- lifecycle ---------------------------------------------------------- #
    async def start(self) -> tuple[str, int]:
        """Start serving, the firmware tick and the watchdog; returns the bound (host, port) (unused on a serial line)."""
        self.device.setup(time.monotonic())
        units = _AllUnits() if self.unit == 0 else {self.unit}
        if self.serial is None:
            self.server = TcpServer(self, units, self.host, self.port, on_request=self._alive, log=self.log)
            self.host, self.port = await self.server.start()
        else:
            self.server = RtuServer(self, units, self.serial, on_request=self._alive, log=self.log)
            await self.server.start()
        self._tasks.append(asyncio.create_task(tick_loop(self.device, self.tick_interval, self.log),
                                               name="firmware-tick"))
        if self.watchdog_s is not None:
            self.watchdog = Watchdog(self.device, self.watchdog_s, self.log)
            self._tasks.append(asyncio.create_task(self.watchdog.run(), name="watchdog"))
        return self.host, self.port

    async def stop(self) -> None:
        """Stop the loops and the server."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._tasks.clear()
        if self.server is not None:
            await self.server.stop()
            self.server = None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return repr(v) if isinstance(v, str) else str(v)
