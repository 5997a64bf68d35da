"""Modbus-TCP serving of an emulated device: a pymodbus server in front of a `DeviceStub`.

:class:`StubServer` uses the pymodbus 3.x ``SimDevice`` / ``SimData`` datastore with an
``action`` hook, which runs before every datastore access and may return a Modbus
exception code (pymodbus's ``ExcCodes``):

- reads are served from the device's :class:`~firmware_stubs.image.RegisterImage`
  (holding and input registers alike);
- a write is rejected with ILLEGAL_ADDRESS (0x02) when it touches an unmapped register
  (pymodbus already rejects those before the hook), only part of a multi-register point,
  or a read-only point; with ILLEGAL_VALUE (0x03) when a value is outside the point's
  min/max (or not finite) or the device logic refuses it; nothing is changed then;
- coil / discrete-input functions get ILLEGAL_FUNCTION (0x01);
- requests for another unit id get GATEWAY_NO_RESPONSE (0x0B) (``--unit 0`` answers every
  unit id).

Every applied or rejected write is logged. Every request for this unit feeds the device's
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
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from firmware_stubs.device import DeviceStub, Watchdog, WriteRejected, tick_loop
from hil.codec import decode
from hil.registers import Point

#: Register function codes served (read holding/input, write single/multiple, mask write, read/write multiple).
_REGISTER_FCS = {3, 4, 6, 16, 22, 23}
_WRITE_FCS = {5, 6, 15, 16, 22, 23}


def _code_name(code: int) -> str:
    try:
        return ExcCodes(code).name
    except ValueError:
        return str(code)


class StubServer:
    """A pymodbus TCP server in front of a :class:`DeviceStub`."""

    def __init__(self, device: DeviceStub, *, host: str = "127.0.0.1", port: int = 5020, unit: int = 1,
                 watchdog: float | None = None, tick: float = 0.1, log: logging.Logger | None = None):
        if not 0 <= unit <= 247:
            raise ValueError("unit must be in 0..247")
        self.device = device
        self.image = device.image
        self.map = device.image.map
        self.host = host
        self.port = port
        self.unit = unit
        self.watchdog_s = watchdog if watchdog and watchdog > 0 else None
        self.tick_interval = tick
        self.log = log or logging.getLogger(f"firmware_stubs.{device.name}")
        self.server: ModbusTcpServer | None = None
        self.watchdog: Watchdog | None = None
        self._tasks: list[asyncio.Task] = []
        self._reject_logged = False
        self._requests: dict[int, ModbusPDU] = {}

    # -- datastore ---------------------------------------------------------- #
    def _devices(self) -> list[SimDevice]:
        simdata = [SimData(start, count=count, datatype=DataType.REGISTERS)
                   for start, count in self.map.blocks(max_count=0x10000)]
        devices = [SimDevice(id=self.unit, simdata=simdata, action=self._action)]
        if self.unit != 0:
            devices.append(SimDevice(id=0, simdata=[SimData(0, count=0x10000, datatype=DataType.REGISTERS)],
                                     action=self._other_unit_action))
        return devices

    async def _other_unit_action(self, *_args: Any) -> ExcCodes | None:
        return ExcCodes.GATEWAY_NO_RESPONSE

    async def _action(self, function_code: int, start_address: int, address: int, count: int, registers: list[int],
                      set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        """pymodbus SimDevice action hook: serve reads, validate and apply writes."""
        if function_code not in _REGISTER_FCS:
            return self._reject(ExcCodes.ILLEGAL_FUNCTION, function_code, address, count,
                                "coil/discrete functions not supported", what="request")
        offset = address - start_address
        if set_values is None:
            registers[offset: offset + count] = self.image.read(address, count)
            return None
        values = [int(v) for v in set_values]
        try:
            applied = self._check_write(address, values)
            self.device.validate_write(applied, time.monotonic())
        except WriteRejected as rej:
            return self._reject(rej.code, function_code, address, len(values), rej.reason)
        for i, v in enumerate(values):
            self.image.regs[address + i] = v & 0xFFFF
        desc = ", ".join(f"{k}={_fmt(v)}" for k, v in applied.items())
        self.log.info("write applied: %s (fc=%d addr=%d count=%d)", desc, function_code, address, len(values))
        try:
            self.device.on_write(applied, time.monotonic())
        except Exception:  # noqa: BLE001 - device bug must not kill the server
            self.log.exception("device on_write failed")
        return None

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

    def _reject(self, code: ExcCodes, fc: int, address: int, count: int, reason: str, what: str = "write") -> ExcCodes:
        self.log.warning("%s rejected: %s (0x%02x) fc=%d addr=%d count=%d: %s", what, _code_name(code), int(code), fc,
                         address, count, reason)
        # the response is sent without yielding to the loop: the trace hook sees this flag for exactly this request
        self._reject_logged = True
        return code

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        """pymodbus trace hook: liveness for the watchdog, logging of the rejections pymodbus makes itself."""
        if not sending:
            if self.watchdog is not None and (self.unit == 0 or pdu.dev_id == self.unit):
                self.watchdog.alive()
            if len(self._requests) > 256:
                self._requests.clear()
            self._requests[pdu.transaction_id] = pdu
            return pdu
        req = self._requests.pop(pdu.transaction_id, None)
        if isinstance(pdu, ExceptionResponse) and not self._reject_logged:
            code, fc = int(pdu.exception_code), pdu.function_code & 0x7F
            self.log.warning("%s rejected: %s (0x%02x) fc=%d dev_id=%s addr=%s count=%s",
                             "write" if fc in _WRITE_FCS else "request", _code_name(code), code, fc, pdu.dev_id,
                             getattr(req, "address", "?"), getattr(req, "count", "?") if req is not None else "?")
        self._reject_logged = False
        return pdu

    def _trace_connect(self, connected: bool) -> None:
        self.log.debug("client %s", "connected" if connected else "disconnected")

    # -- lifecycle ---------------------------------------------------------- #
    async def start(self) -> tuple[str, int]:
        """Start serving, the firmware tick and the watchdog; returns the bound (host, port)."""
        self.device.setup(time.monotonic())
        self.server = ModbusTcpServer(self._devices(), address=(self.host, self.port), trace_pdu=self._trace_pdu,
                                      trace_connect=self._trace_connect)
        await self.server.serve_forever(background=True)
        transport: Any = self.server.transport
        self.host, self.port = transport.sockets[0].getsockname()[:2]
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
            await self.server.shutdown()
            self.server = None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return repr(v) if isinstance(v, str) else str(v)
