"""One async Modbus connection to one device, over TCP or RTU on a serial line: requests with a deadline, failures
classified, reconnect with backoff.

The transport is the only difference: `DeviceClient(..., serial=SerialLine(...))` speaks RTU
(pymodbus's serial client, RTU framing with CRC) instead of Modbus-TCP; everything below holds
for both. pymodbus runs on the caller's event loop (mosaik's, inside the bridge). Every request uses
`retries=0`, so a write that times out is never sent twice; pymodbus's own reconnect is
off, and `DeviceClient` reconnects in a background task with exponential backoff instead,
so a step never waits for a dead device. A failed request raises `DeviceError` with a
kind: `timeout` (no answer within the deadline), `connection` (refused, reset, closed),
`exception` (a Modbus exception response, with its code) or `garbage` (bytes that are no
valid answer, or an answer of the wrong size). `as_reader` gives any pymodbus-style async
client the same `read` / `write` contract, so every reader of a device (`hil.reading`) works on
both.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType

from hil.serial_line import SerialLine

FailureKind = Literal["timeout", "connection", "exception", "garbage"]


class DeviceError(Exception):
    """A request that failed; `kind` says how, `code` is the Modbus exception code when there is one."""

    def __init__(self, kind: FailureKind, message: str, code: int | None = None):
        super().__init__(message)
        self.kind, self.code = kind, code


def exception_text(code: int | None) -> str:
    """'0x02 ILLEGAL_ADDRESS' for a Modbus exception code (names as in pymodbus's `ExcCodes`)."""
    if code is None:
        return "an exception response"
    try:
        name = ExcCodes(code).name
    except ValueError:
        name = "UNKNOWN"
    return f"0x{code:02x} {name}"


def _answer(rr: Any, who: str) -> Any:
    """The answer itself, or DeviceError when it is empty (garbage) or a Modbus exception response."""
    if rr is None:
        raise DeviceError("garbage", f"{who}: empty answer")
    if rr.isError():
        code = getattr(rr, "exception_code", None)
        raise DeviceError("exception", f"{who}: the device answered {exception_text(code)}", code)
    return rr


def _registers(rr: Any, address: int, count: int, who: str) -> list[int]:
    """The registers of a read answer; DeviceError (garbage) when there are not `count` of them."""
    regs = list(getattr(rr, "registers", []) or [])
    if len(regs) != count:
        raise DeviceError("garbage", f"{who}: read {address}+{count} answered with {len(regs)} registers")
    return regs


async def reachable(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection to host:port opens within `timeout`, else why not, in words."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        return f"no answer from {host}:{port} within {timeout:g} s (timeout)"
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port} (nothing listens on that port)"
    except OSError as exc:
        reason = errno.errorcode.get(exc.errno or 0, "") if exc.errno else ""
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}{f' ({reason})' if reason else ''}"
    writer.close()
    return None


@dataclass
class Stats:
    """What happened on one connection: request counts by outcome and round-trip times (ms)."""

    requests: int = 0
    timeouts: int = 0
    exceptions: int = 0
    garbage: int = 0
    connection_errors: int = 0
    reconnects: int = 0
    rtt_ms: list[float] = field(default_factory=list)


class DeviceClient:
    """One device: `read` / `write` raise `DeviceError`; `connected`, `ensure_reconnect` keep the link alive."""

    ticks = 1  # heartbeat moves the link waits for after a write: a read shows the firmware's state at once
    points: frozenset[str] | None = None  # the points a read carries: None, every point of the registers read

    def __init__(self, name: str, host: str = "127.0.0.1", port: int | None = None, unit: int = 1,
                 timeout: float = 0.5, backoff: tuple[float, float] = (0.2, 5.0), serial: SerialLine | None = None,
                 trace: Callable[[bool, Any], Any] | None = None):
        """Modbus-TCP to host:port, or Modbus RTU on the `serial` line when one is given (host and port unused);
        `trace` sees every PDU sent and received (pymodbus's `trace_pdu`: the run's capture, `hil.capture`)."""
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # failures are reported as DeviceError
        self.name, self.host, self.port, self.unit, self.timeout = name, host, port, unit, timeout
        self.serial = serial
        self.backoff_min, self.backoff_max = backoff
        self.delay = self.backoff_min
        self.next_attempt = 0.0
        self.stats = Stats()
        self._task: asyncio.Task | None = None
        self._rx = 0  # bytes received, to tell garbage from silence when a request times out
        common: dict[str, Any] = {"timeout": timeout, "retries": 0, "reconnect_delay": 0, "name": name,
                                  "trace_packet": self._trace, "trace_pdu": trace}
        if serial is None:
            self.client = AsyncModbusTcpClient(host, port=port, **common)  # type: ignore[arg-type]
        else:
            self.client = AsyncModbusSerialClient(serial.path, framer=FramerType.RTU, baudrate=serial.baudrate,
                                                  bytesize=8, parity=serial.parity, stopbits=serial.stopbits, **common)

    @property
    def where(self) -> str:
        """'127.0.0.1:5020' or '/dev/ttyUSB0 19200 8N1' (for messages)."""
        return f"{self.host}:{self.port}" if self.serial is None else str(self.serial)

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx += len(data)
        return data

    @property
    def connected(self) -> bool:
        return self.client.connected

    async def connect(self) -> bool:
        """Open the connection now (one attempt of at most `timeout` seconds)."""
        ok = await self.client.connect()
        if ok:
            self.delay = self.backoff_min
        return bool(ok)

    def ensure_reconnect(self, now: float) -> None:
        """Start a background reconnect attempt when one is due; the delay doubles after each failure."""
        if self.connected or (self._task is not None and not self._task.done()) or now < self.next_attempt:
            return
        self._task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        if await self.connect():
            self.stats.reconnects += 1
            return
        self.next_attempt = time.monotonic() + self.delay
        self.delay = min(2.0 * self.delay, self.backoff_max)

    @property
    def reconnecting(self) -> bool:
        return self._task is not None and not self._task.done()

    async def read(self, address: int, count: int, write: tuple[int, list[int]] | None = None) -> list[int]:
        """Holding registers [address, address + count); with `write` (address, registers), written first in the
        same transaction (FC23), which saves a round trip; never retried."""
        if write is None:
            call = lambda: self.client.read_holding_registers(address, count=count, device_id=self.unit)  # noqa: E731
        else:
            call = lambda: self.client.readwrite_registers(  # noqa: E731
                read_address=address, read_count=count, write_address=write[0], values=write[1], device_id=self.unit)
        rr = await self._request(call)
        try:
            return _registers(rr, address, count, self.name)
        except DeviceError:
            self.stats.garbage += 1
            raise

    async def write(self, address: int, registers: list[int]) -> None:
        """FC16 write of `registers` at `address`; never retried."""
        await self._request(lambda: self.client.write_registers(address, registers, device_id=self.unit))

    async def _request(self, call: Callable[[], Awaitable]):
        if not self.connected:
            self.stats.connection_errors += 1
            raise DeviceError("connection", f"{self.name}: not connected to {self.where}")
        self.stats.requests += 1
        rx, t0 = self._rx, time.perf_counter()
        try:
            rr = await call()
        except ConnectionException as exc:
            self.stats.connection_errors += 1
            raise DeviceError("connection", f"{self.name}: {exc}") from None
        except ModbusException as exc:
            if not self.connected:
                self.stats.connection_errors += 1
                raise DeviceError("connection", f"{self.name}: connection lost ({exc})") from None
            if self._rx > rx:
                self.stats.garbage += 1
                raise DeviceError("garbage", f"{self.name}: no valid answer within {self.timeout:g} s "
                                             f"({self._rx - rx} bytes of garbage)") from None
            self.stats.timeouts += 1
            raise DeviceError("timeout", f"{self.name}: no answer within {self.timeout:g} s") from None
        self.stats.rtt_ms.append((time.perf_counter() - t0) * 1000.0)
        try:
            return _answer(rr, self.name)
        except DeviceError as exc:
            if exc.kind == "garbage":
                self.stats.garbage += 1
            else:
                self.stats.exceptions += 1
            raise

    def close(self) -> None:
        """Drop the connection and any pending reconnect (safe to call from synchronous code)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.client.close()


class ClientReader:
    """A connected pymodbus-style async client (one unit id) with `DeviceClient`'s `read` / `write` contract."""

    def __init__(self, client: Any, device_id: int = 1, name: str = "device"):
        self.client, self.device_id, self.name = client, device_id, name

    async def read(self, address: int, count: int, write: tuple[int, list[int]] | None = None) -> list[int]:
        """Holding registers [address, address + count), `write` first in the same transaction (FC23)."""
        if write is None:
            rr = await self._call(self.client.read_holding_registers(address, count=count, device_id=self.device_id))
        else:
            rr = await self._call(self.client.readwrite_registers(read_address=address, read_count=count,
                                                                  write_address=write[0], values=write[1],
                                                                  device_id=self.device_id))
        return _registers(rr, address, count, self.name)

    async def write(self, address: int, registers: list[int]) -> None:
        """FC16 write of `registers` at `address`."""
        await self._call(self.client.write_registers(address, registers, device_id=self.device_id))

    async def _call(self, request: Awaitable) -> Any:
        try:
            rr = await request
        except ConnectionException as exc:
            raise DeviceError("connection", f"{self.name}: {exc}") from None
        except ModbusException as exc:
            raise DeviceError("timeout", f"{self.name}: no valid answer ({exc})") from None
        return _answer(rr, self.name)


def as_reader(client: Any, device_id: int = 1) -> Any:
    """`client` itself when it is a `DeviceClient` (or reader), else the pymodbus-style client as a `ClientReader`."""
    if isinstance(client, (DeviceClient, ClientReader)):
        return client
    return ClientReader(client, device_id)
