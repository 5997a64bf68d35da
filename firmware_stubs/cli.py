"""The command line of every firmware stub: ``python -m firmware_stubs.<device> --host 127.0.0.1 --port N``.

Common options: ``--host`` (default 127.0.0.1), ``--port`` (0 = a free port), ``--unit``
(0 = answer every unit id), ``--watchdog SECONDS`` (0 = off), ``--tick SECONDS`` (0.1),
``--map FILE`` (default ``hil/maps/<device>.yaml``) and ``--log-level``; each device adds
its own options. ``--serial-port PATH`` (with ``--baudrate``, ``--parity``, ``--stopbits``)
serves Modbus RTU on that serial line instead of Modbus-TCP, ``--protocol iec104`` IEC 60870-5-104 on
``--port`` (`firmware_stubs.iec104`; ``--unit`` is then the common address). On start the process logs
``ready <device> on <host>:<port> unit=<unit>`` to stderr (the port actually bound), or
``ready <device> on serial <path> <baud> 8<parity><stop> unit=<unit>``, and it exits with
status 0 on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from firmware_stubs.device import DeviceStub
from firmware_stubs.image import RegisterImage
from firmware_stubs.server import StubServer
from hil import MAPS_DIR
from hil.registers import load_map
from hil.serial_line import SerialLine


def build_parser(device_cls: type[DeviceStub]) -> argparse.ArgumentParser:
    """The argument parser of one stub: the common server options and the device's own."""
    parser = argparse.ArgumentParser(prog=f"python -m firmware_stubs.{device_cls.name}",
                                     description=device_cls.description or f"{device_cls.name} firmware stub (Modbus-TCP)")
    g = parser.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback)")
    g.add_argument("--port", type=int, default=5020, help="TCP port (default 5020; 0 = pick a free port)")
    g.add_argument("--unit", type=int, default=1, help="Modbus unit/device id (default 1; 0 = answer all)")
    g.add_argument("--watchdog", type=float, default=0.0, metavar="SECONDS",
                   help="go to the safe default after SECONDS without master request (default 0 = off)")
    g.add_argument("--tick", type=float, default=0.1, metavar="SECONDS", help="firmware tick period (default 0.1)")
    g.add_argument("--map", type=Path, default=None, help=f"register map YAML (default hil/maps/{device_cls.map_file})")
    g.add_argument("--protocol", choices=["modbus", "iec104"], default="modbus",
                   help="modbus (default) or iec104: IEC 60870-5-104 on --port, --unit as the common address")
    g.add_argument("--serial-port", metavar="PATH", default=None,
                   help="serve Modbus RTU on this serial line instead of Modbus-TCP (host and port unused)")
    g.add_argument("--baudrate", type=int, default=19200, help="RTU baud rate (default 19200)")
    g.add_argument("--parity", default="N", type=str.upper, choices=["N", "E", "O"], help="RTU parity (default N)")
    g.add_argument("--stopbits", type=int, default=1, choices=[1, 2], help="RTU stop bits (default 1)")
    g.add_argument("--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level (default INFO)")
    device_cls.add_arguments(parser.add_argument_group(device_cls.name))  # type: ignore[arg-type]
    return parser


async def _serve(device_cls: type[DeviceStub], args: argparse.Namespace, log: logging.Logger) -> int:
    image = RegisterImage(load_map(args.map or MAPS_DIR / device_cls.map_file))
    line = SerialLine(args.serial_port, args.baudrate, args.parity, args.stopbits) if args.serial_port else None
    server_cls = _server_class(args.protocol)
    srv = server_cls(device_cls(image, args, log), host=args.host, port=args.port, unit=args.unit,
                     watchdog=args.watchdog, tick=args.tick, log=log, serial=line)
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
    where = f"serial {line}" if line is not None else f"{host}:{port}"
    log.info("ready %s on %s unit=%d watchdog=%s tick=%.3gs", device_cls.name, where, args.unit,
             f"{args.watchdog:g}s" if args.watchdog else "off", args.tick)
    await stop.wait()
    log.info("stopping %s", device_cls.name)
    await srv.stop()
    log.info("stopped")
    return 0


def _server_class(protocol: str) -> type[StubServer]:
    if protocol == "iec104":  # the optional c104 extra, imported only when asked for
        from firmware_stubs.iec104 import Iec104StubServer
        return Iec104StubServer
    return StubServer


def main(device_cls: type[DeviceStub], argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m firmware_stubs.<device>``."""
    parser = build_parser(device_cls)
    args = parser.parse_args(argv)
    if args.tick <= 0:
        parser.error("--tick must be > 0")
    if args.watchdog < 0:
        parser.error("--watchdog must be >= 0")
    if args.protocol == "iec104":
        if args.serial_port:
            parser.error("--protocol iec104 runs over TCP (--host, --port); --serial-port is for Modbus RTU")
        try:
            from firmware_stubs.iec104 import problem
        except ImportError:
            parser.error("--protocol iec104 needs the c104 package: pip install -e '.[iec104]'")
        if (why := problem(device_cls, args.unit)) is not None:
            parser.error(why)
    if args.baudrate <= 0:
        parser.error("--baudrate must be > 0")
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.DEBUG if args.log_level == "DEBUG" else logging.WARNING)
    log = logging.getLogger(f"firmware_stubs.{device_cls.name}")
    try:
        return asyncio.run(_serve(device_cls, args, log))
    except KeyboardInterrupt:  # pragma: no cover - signal handler normally wins
        return 0
