"""Shared framework of the emulated field devices ("firmware stubs").

Each stub is a standalone process serving Modbus-TCP with pymodbus::

    python -m firmware_stubs.<device> --host 127.0.0.1 --port N [--unit 1]
        [--watchdog SECONDS] [--tick SECONDS] [--map FILE] [--log-level INFO]

Building blocks
---------------
* :class:`RegisterImage` -- the device's register image, built from its
  register map (``hil/maps/<device>.yaml``; the one source of truth), with
  engineering-value ``get``/``set`` that honour ``scale`` and SunSpec ``sf``.
* :class:`DeviceStub` -- base class of the device logic: ``setup`` (apply the
  nameplate), ``validate_write`` (device-specific rejection), ``on_write``
  (react to an applied write), ``tick`` (firmware loop, every ``--tick``
  seconds, 0.1 s by default) and ``safe_default`` (watchdog expiry).
* :class:`StubServer` -- the pymodbus async TCP server.  It uses the pymodbus
  3.x ``SimDevice``/``SimData`` datastore (the replacement of the deprecated
  ``ModbusDeviceContext``) with an ``action`` hook, which runs before every
  datastore access and may return a Modbus exception code:

  - reads are served from the :class:`RegisterImage`;
  - a write is rejected with ILLEGAL_DATA_ADDRESS (0x02) when it touches an
    unmapped register (pymodbus already rejects those before the hook), only
    part of a multi-register point, or a read-only point; with
    ILLEGAL_DATA_VALUE (0x03) when a value is outside the point's min/max (or
    not finite) or the device logic refuses it; nothing is changed then;
  - coil / discrete-input functions get ILLEGAL_FUNCTION (0x01);
  - requests for another unit id get GATEWAY_TARGET_NO_RESPONSE (0x0B)
    (``--unit 0`` answers every unit id).

  Every applied or rejected write is logged.  A communication watchdog
  (``--watchdog N``; off by default) calls ``safe_default`` when no master
  request for this unit has arrived for N seconds.  If the map has points
  named ``Heartbeat`` / ``WdgCount`` the framework increments them every tick
  / every watchdog expiry.

On start the process logs ``ready <device> on <host>:<port> unit=<unit>`` to
stderr (``--port 0`` picks a free port, reported in that line) and it exits
with status 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hil import MAPS_DIR
from hil.registers import (
    INT_RANGES,
    EncodeError,
    Point,
    RegisterMap,
    decode,
    encode,
    load_map,
    raw_to_registers,
)

__all__ = [
    "MAPS_DIR",
    "DeviceStub",
    "RegisterImage",
    "StubServer",
    "WriteRejected",
    "build_parser",
    "fit_sf",
    "main",
]

EXC_NAMES = {
    0x01: "ILLEGAL_FUNCTION",
    0x02: "ILLEGAL_DATA_ADDRESS",
    0x03: "ILLEGAL_DATA_VALUE",
    0x04: "SERVER_DEVICE_FAILURE",
    0x06: "SERVER_DEVICE_BUSY",
    0x0B: "GATEWAY_TARGET_NO_RESPONSE",
}

#: Register function codes served (read holding/input, write single/multiple,
#: mask write, read/write multiple).
_REGISTER_FCS = {3, 4, 6, 16, 22, 23}


class WriteRejected(Exception):
    """Raised by device logic to refuse a write; carries the Modbus exception code."""

    def __init__(self, reason: str, code: ExcCodes = ExcCodes.ILLEGAL_VALUE):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def fit_sf(max_abs: float, type_max: int = 32767, lo: int = -3, hi: int = 10) -> int:
    """Smallest SunSpec scale factor in lo..hi so that ``max_abs`` fits ``type_max``."""
    for sf in range(lo, hi + 1):
        if abs(max_abs) / (10.0**sf) <= type_max:
            return sf
    return hi


# --------------------------------------------------------------------------- #
# Register image
# --------------------------------------------------------------------------- #
class RegisterImage:
    """Register values of one device, addressed by protocol address.

    Only mapped registers exist.  ``set`` is the firmware-side writer: it
    ignores access rights and min/max and clamps numbers to the register type
    (the master's writes are checked in :class:`StubServer`).
    """

    def __init__(self, regmap: RegisterMap):
        self.map = regmap
        self.regs: dict[int, int] = {}
        for p in regmap.points:
            for a in range(p.address, p.end):
                self.regs[a] = 0
        # scale factors first, then the points that depend on them
        for p in sorted(regmap.points, key=lambda q: q.type != "sunssf"):
            if p.default is not None:
                self.set(p.name, p.default)

    # -- raw ---------------------------------------------------------------- #
    def read(self, address: int, count: int) -> list[int]:
        return [self.regs.get(a, 0) for a in range(address, address + count)]

    def raw(self, name: str) -> list[int]:
        p = self.map[name]
        return [self.regs[a] for a in range(p.address, p.end)]

    def set_raw(self, name: str, registers: Sequence[int]) -> None:
        p = self.map[name]
        if len(registers) != p.size:
            raise ValueError(f"{name}: needs {p.size} registers")
        for i, r in enumerate(registers):
            self.regs[p.address + i] = int(r) & 0xFFFF

    # -- engineering values ------------------------------------------------- #
    def sf(self, point: Point) -> int | None:
        if point.sf is None:
            return None
        v = decode(self.map[point.sf], self.raw(point.sf))
        return None if v is None else int(v)  # type: ignore[arg-type]

    def get(self, name: str) -> Any:
        p = self.map[name]
        return decode(p, self.raw(name), self.sf(p))

    def set(self, name: str, value: Any) -> None:
        p = self.map[name]
        self.set_raw(name, encode_clamped(p, value, self.sf(p)))

    def values(self) -> dict[str, Any]:
        return {p.name: self.get(p.name) for p in self.map.points}


def encode_clamped(point: Point, value: Any, sf: int | None) -> list[int]:
    """Like :func:`hil.registers.encode`, but clamps integers to the type range.

    Points with a SunSpec scale factor never get the "not implemented"
    sentinel (0xFFFF, 0x8000, ...) through clamping.
    """
    if point.type in ("string", "float32"):
        return encode(point, value, sf)
    if point.sf is not None and sf is None:
        raise EncodeError(f"point {point.name!r} needs the value of scale factor {point.sf!r}")
    v = float(value)
    if not math.isfinite(v):
        v = 0.0
    if point.scale is not None:
        raw_f = v / point.scale
    elif point.sf is not None and sf is not None:
        raw_f = v * (10 ** (-sf)) if sf <= 0 else v / (10**sf)
    else:
        raw_f = v
    lo, hi = INT_RANGES[point.type]
    if point.sf is not None and point.type != "acc32":
        lo, hi = (lo + 1, hi) if lo < 0 else (lo, hi - 1)
    raw = max(lo, min(hi, int(round(raw_f))))
    return raw_to_registers(point.type, raw)


# --------------------------------------------------------------------------- #
# Device logic base class
# --------------------------------------------------------------------------- #
class DeviceStub:
    """Base class of a device's firmware logic (subclass per device)."""

    #: device name (used in logs)
    name: ClassVar[str] = "device"
    #: map file name in :data:`MAPS_DIR`
    map_file: ClassVar[str] = ""
    #: one-line description for ``--help``
    description: ClassVar[str] = ""

    def __init__(self, image: RegisterImage, options: argparse.Namespace, log: logging.Logger):
        self.image = image
        self.options = options
        self.log = log

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add device-specific command-line options."""

    def setup(self, now: float) -> None:
        """Apply nameplate options to the image (called once before serving)."""

    def validate_write(self, values: dict[str, Any], now: float) -> None:
        """Raise :class:`WriteRejected` to refuse a write (values already range-checked)."""

    def on_write(self, values: dict[str, Any], now: float) -> None:
        """React to an applied write of ``values`` (engineering units)."""

    def tick(self, now: float, dt: float) -> None:
        """Firmware loop body, called every tick with the monotonic time."""

    def safe_default(self, now: float) -> None:
        """Go to the safe default state (communication watchdog expired)."""

    # helpers
    def get(self, name: str) -> Any:
        return self.image.get(name)

    def set(self, name: str, value: Any) -> None:
        self.image.set(name, value)


# --------------------------------------------------------------------------- #
# Server
# --------------------------------------------------------------------------- #
class StubServer:
    """A pymodbus TCP server in front of a :class:`DeviceStub`."""

    def __init__(
        self,
        device: DeviceStub,
        *,
        host: str = "127.0.0.1",
        port: int = 5020,
        unit: int = 1,
        watchdog: float | None = None,
        tick: float = 0.1,
        log: logging.Logger | None = None,
    ):
        if not 0 <= unit <= 247:
            raise ValueError("unit must be in 0..247")
        self.device = device
        self.image = device.image
        self.map = device.image.map
        self.host = host
        self.port = port
        self.unit = unit
        self.watchdog = watchdog if watchdog and watchdog > 0 else None
        self.tick_interval = tick
        self.log = log or logging.getLogger(f"firmware_stubs.{device.name}")
        self.server: ModbusTcpServer | None = None
        self.last_request = time.monotonic()
        self.watchdog_tripped = False
        self._tasks: list[asyncio.Task] = []
        self._reject_logged = False
        self._requests: dict[int, ModbusPDU] = {}

    # -- datastore ---------------------------------------------------------- #
    def _simdata(self) -> list[SimData]:
        blocks = self.map.blocks(max_count=0x10000)
        return [SimData(start, count=count, datatype=DataType.REGISTERS) for start, count in blocks]

    def _devices(self) -> list[SimDevice]:
        devices = [SimDevice(id=self.unit, simdata=self._simdata(), action=self._action)]
        if self.unit != 0:
            devices.append(
                SimDevice(
                    id=0,
                    simdata=[SimData(0, count=0x10000, datatype=DataType.REGISTERS)],
                    action=self._other_unit_action,
                )
            )
        return devices

    async def _other_unit_action(self, *_args: Any) -> ExcCodes | None:
        return ExcCodes.GATEWAY_NO_RESPONSE

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus SimDevice action hook: serve reads, validate and apply writes."""
        if function_code not in _REGISTER_FCS:
            return self._reject(
                ExcCodes.ILLEGAL_FUNCTION,
                function_code,
                address,
                count,
                "coil/discrete functions not supported",
                what="request",
            )
        offset = address - start_address
        if set_values is None:
            registers[offset : offset + count] = self.image.read(address, count)
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
                raise WriteRejected(
                    f"partial write of {p.size}-register point {p.name!r} ({p.address}..{p.end - 1})",
                    ExcCodes.ILLEGAL_ADDRESS,
                )
            if not p.writable:
                raise WriteRejected(f"point {p.name!r} is read-only", ExcCodes.ILLEGAL_ADDRESS)
            points.append(p)
            a = p.end
        out: dict[str, Any] = {}
        for p in points:
            regs = values[p.address - address : p.end - address]
            v = decode(p, regs, self.image.sf(p))
            if isinstance(v, float) and not math.isfinite(v):
                raise WriteRejected(f"{p.name}={v} is not finite")
            if isinstance(v, (int, float)) and not p.in_range(v):
                raise WriteRejected(f"{p.name}={_fmt(v)} outside {_fmt(p.min)}..{_fmt(p.max)}")
            out[p.name] = v
        return out

    def _reject(
        self, code: ExcCodes, fc: int, address: int, count: int, reason: str, what: str = "write"
    ) -> ExcCodes:
        self.log.warning(
            "%s rejected: %s (0x%02x) fc=%d addr=%d count=%d: %s",
            what,
            EXC_NAMES.get(int(code), str(code)),
            int(code),
            fc,
            address,
            count,
            reason,
        )
        # the response is sent without yielding to the loop: the trace hook
        # below sees this flag for exactly this request
        self._reject_logged = True
        return code

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        """pymodbus trace hook: liveness for the watchdog, logging of other rejections."""
        if not sending:
            if self.unit == 0 or pdu.dev_id == self.unit:
                self._mark_alive()
            if len(self._requests) > 256:
                self._requests.clear()
            self._requests[pdu.transaction_id] = pdu
            return pdu
        req = self._requests.pop(pdu.transaction_id, None)
        if isinstance(pdu, ExceptionResponse):
            if self._reject_logged:
                self._reject_logged = False
            else:
                code = int(pdu.exception_code)
                addr = getattr(req, "address", "?")
                count = getattr(req, "count", "?") if req is not None else "?"
                what = "write" if (pdu.function_code & 0x7F) in (5, 6, 15, 16, 22, 23) else "request"
                self.log.warning(
                    "%s rejected: %s (0x%02x) fc=%d dev_id=%s addr=%s count=%s",
                    what,
                    EXC_NAMES.get(code, str(code)),
                    code,
                    pdu.function_code & 0x7F,
                    pdu.dev_id,
                    addr,
                    count,
                )
        else:
            self._reject_logged = False
        return pdu

    def _trace_connect(self, connected: bool) -> None:
        self.log.debug("client %s", "connected" if connected else "disconnected")

    def _mark_alive(self) -> None:
        self.last_request = time.monotonic()
        if self.watchdog_tripped:
            self.watchdog_tripped = False
            self.log.info("watchdog: master requests resumed")

    # -- loops -------------------------------------------------------------- #
    async def _tick_loop(self) -> None:
        interval = self.tick_interval
        last = time.monotonic()
        nxt = last + interval
        hb = self.map.get("Heartbeat")
        while True:
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            now = time.monotonic()
            nxt += interval
            if nxt < now:  # fell behind (e.g. suspended): do not try to catch up
                nxt = now + interval
            dt, last = now - last, now
            try:
                self.device.tick(now, dt)
            except Exception:  # noqa: BLE001 - keep the firmware loop alive
                self.log.exception("device tick failed")
            if hb is not None:
                self.image.set_raw("Heartbeat", [(self.image.raw("Heartbeat")[0] + 1) & 0xFFFF])

    async def _watchdog_loop(self) -> None:
        assert self.watchdog is not None
        period = min(0.1, self.watchdog / 10)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if not self.watchdog_tripped and now - self.last_request > self.watchdog:
                self.watchdog_tripped = True
                if "WdgCount" in self.map:
                    self.image.set("WdgCount", (int(self.image.get("WdgCount")) + 1) & 0xFFFF)
                self.log.warning(
                    "watchdog: no master request for %.1f s -> safe default", now - self.last_request
                )
                try:
                    self.device.safe_default(now)
                except Exception:  # noqa: BLE001
                    self.log.exception("device safe_default failed")

    # -- lifecycle ---------------------------------------------------------- #
    async def start(self) -> tuple[str, int]:
        """Start serving; returns the bound (host, port)."""
        self.device.setup(time.monotonic())
        self.server = ModbusTcpServer(
            self._devices(),
            address=(self.host, self.port),
            trace_pdu=self._trace_pdu,
            trace_connect=self._trace_connect,
        )
        await self.server.serve_forever(background=True)
        transport: Any = self.server.transport
        sock = transport.sockets[0]
        host, port = sock.getsockname()[:2]
        self.host, self.port = host, port
        self.last_request = time.monotonic()
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="firmware-tick"))
        if self.watchdog is not None:
            self._tasks.append(asyncio.create_task(self._watchdog_loop(), name="watchdog"))
        return host, port

    async def stop(self) -> None:
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


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def build_parser(device_cls: type[DeviceStub]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m firmware_stubs.{device_cls.name}",
        description=device_cls.description or f"{device_cls.name} firmware stub (Modbus-TCP)",
    )
    g = parser.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback)")
    g.add_argument("--port", type=int, default=5020, help="TCP port (default 5020; 0 = pick a free port)")
    g.add_argument("--unit", type=int, default=1, help="Modbus unit/device id (default 1; 0 = answer all)")
    g.add_argument(
        "--watchdog",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="go to the safe default after SECONDS without master request (default 0 = off)",
    )
    g.add_argument("--tick", type=float, default=0.1, metavar="SECONDS", help="firmware tick period (default 0.1)")
    g.add_argument("--map", type=Path, default=None, help=f"register map YAML (default hil/maps/{device_cls.map_file})")
    g.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (default INFO)",
    )
    device_cls.add_arguments(parser.add_argument_group(device_cls.name))  # type: ignore[arg-type]
    return parser


async def _serve(device_cls: type[DeviceStub], args: argparse.Namespace, log: logging.Logger) -> int:
    regmap = load_map(args.map or MAPS_DIR / device_cls.map_file)
    image = RegisterImage(regmap)
    device = device_cls(image, args, log)
    srv = StubServer(
        device,
        host=args.host,
        port=args.port,
        unit=args.unit,
        watchdog=args.watchdog,
        tick=args.tick,
        log=log,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    try:
        host, port = await srv.start()
    except Exception as exc:  # noqa: BLE001
        log.error("cannot start: %s", exc)
        return 1
    log.info(
        "ready %s on %s:%d unit=%d watchdog=%s tick=%.3gs",
        device_cls.name,
        host,
        port,
        args.unit,
        f"{args.watchdog:g}s" if args.watchdog else "off",
        args.tick,
    )
    await stop.wait()
    log.info("stopping %s", device_cls.name)
    await srv.stop()
    log.info("stopped")
    return 0


def main(device_cls: type[DeviceStub], argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m firmware_stubs.<device>``."""
    parser = build_parser(device_cls)
    args = parser.parse_args(argv)
    if args.tick <= 0:
        parser.error("--tick must be > 0")
    if args.watchdog < 0:
        parser.error("--watchdog must be >= 0")
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pymodbus").setLevel(logging.DEBUG if args.log_level == "DEBUG" else logging.WARNING)
    log = logging.getLogger(f"firmware_stubs.{device_cls.name}")
    try:
        return asyncio.run(_serve(device_cls, args, log))
    except KeyboardInterrupt:  # pragma: no cover - signal handler normally wins
        return 0
