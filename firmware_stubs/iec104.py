"""IEC 60870-5-104 serving of an emulated device: the stub's data model (register image, write checks) behind c104.

The objects are `hil/maps/<device>_iec104.yaml`: point names only, the addresses and types follow
from the register map (monitoring IOA = the point's Modbus address, command IOA = 100000 + it; a
0..1 point is a single point with single commands, any other a short float with set-point
commands). A command is the Modbus write of its point (`StubServer.write`: range checks, read-only
points, the firmware's own validation), answered with a positive or negative activation
confirmation; its read-back is sent at once, every firmware tick sends the changed monitoring
values spontaneously, and an interrogation returns all of them. Each command feeds the watchdog.
Runs next to the firmware tick on the stub's event loop; c104's callbacks reach it through
`hil.iec104_server.LoopGate`.
"""
# no `from __future__ import annotations`: c104 checks a callback's annotations as real types

import asyncio
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c104
import yaml
from pydantic import BaseModel, ConfigDict

from firmware_stubs.device import DeviceStub, Watchdog, tick_loop
from firmware_stubs.server import StubServer
from hil import MAPS_DIR
from hil.codec import EncodeError, encode
from hil.iec104_server import LoopGate, Monitor, response
from hil.modbus_server import Refused
from hil.registers import Point, load_map

COMMAND_BASE = 100_000  # command IOA = COMMAND_BASE + the point's Modbus address


class StubObjectList(BaseModel):
    """A device's IEC 104 object file: which points are monitored and which take commands."""

    model_config = ConfigDict(extra="forbid")
    device: str
    monitor: list[str]
    commands: list[str]


@dataclass(frozen=True)
class StubObject:
    """One information object of the stub: address, c104 type name and the register-map point."""

    ioa: int
    type: str
    point: Point


def objects_path(map_file: str) -> Path:
    """The IEC 104 object file that goes with a register map file (`inverter.yaml` -> `inverter_iec104.yaml`)."""
    return MAPS_DIR / f"{Path(map_file).stem}_iec104.yaml"


def stub_objects(points: dict[str, Point], path: Path) -> list[StubObject]:
    """The monitoring and command objects of the file at `path`; ValueError naming an unknown or read-only point."""
    spec = StubObjectList.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    for name in spec.monitor + spec.commands:
        if name not in points:
            raise ValueError(f"{path}: point {name!r} is not in the register map")
    out = []
    for name in spec.monitor:
        p = points[name]
        out.append(StubObject(p.address, "M_SP_NA_1" if _binary(p) else "M_ME_NC_1", p))
    for name in spec.commands:
        p = points[name]
        if not p.writable:
            raise ValueError(f"{path}: point {name!r} is read-only and cannot take commands")
        out.append(StubObject(COMMAND_BASE + p.address, "C_SC_NA_1" if _binary(p) else "C_SE_NC_1", p))
    return out


def _binary(p: Point) -> bool:
    return p.min == 0 and p.max == 1


def problem(device_cls: type[DeviceStub], unit: int) -> str | None:
    """What stops `device_cls` from serving IEC 104 with common address `unit` (for the command line), if anything."""
    if not 1 <= unit <= 65534:
        return f"--unit {unit}: with --protocol iec104 it is the common address, 1..65534"
    path = objects_path(device_cls.map_file)
    if not path.exists():
        return f"{device_cls.name} has no IEC 104 object list ({path} is missing)"
    try:
        stub_objects({p.name: p for p in load_map(MAPS_DIR / device_cls.map_file).points}, path)
    except ValueError as exc:
        return str(exc)
    return None


class Iec104StubServer(StubServer):
    """A :class:`StubServer` whose front end is an IEC 104 station (common address = the stub's unit)."""

    def __init__(self, device: DeviceStub, **options: Any):
        super().__init__(device, **options)
        self.objects = {o.ioa: o for o in stub_objects(self.image.points, objects_path(device.map_file))}
        self._monitor = Monitor()
        self._gate: LoopGate | None = None

    async def start(self) -> tuple[str, int]:
        """Start the station, the firmware tick, the publishing of changes and the watchdog; returns (host, port)."""
        self.device.setup(time.monotonic())
        if self.port == 0:  # c104 does not tell the port it bound: take a free one first
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        self._gate = LoopGate(asyncio.get_running_loop())
        server = c104.Server(ip=self.host, port=self.port)
        station = server.add_station(common_address=self.unit)
        for o in self.objects.values():
            point = station.add_point(io_address=o.ioa, type=getattr(c104.Type, o.type))
            if o.type.startswith("C_"):
                point.on_receive(callable=self._on_command)
            else:
                self._monitor.points[o.ioa] = point
        self._monitor.publish(self._values(), None, c104.Cot.SPONTANEOUS)
        server.start()
        self.server = _Station(server, self._gate)
        self._tasks.append(asyncio.create_task(tick_loop(self.device, self.tick_interval, self.log),
                                               name="firmware-tick"))
        self._tasks.append(asyncio.create_task(self._publish_loop(), name="iec104-publish"))
        if self.watchdog_s is not None:
            self.watchdog = Watchdog(self.device, self.watchdog_s, self.log)
            self._tasks.append(asyncio.create_task(self.watchdog.run(), name="watchdog"))
        return self.host, self.port

    async def _publish_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            self._monitor.publish(self._values(), self.server.iec, c104.Cot.SPONTANEOUS)

    def _values(self) -> dict[int, object]:
        """Every monitoring object's value from the register image (NA or an unknown scale factor: NaN)."""
        out: dict[int, object] = {}
        for ioa in self._monitor.points:
            o = self.objects[ioa]
            raw = self.image.get(o.point.name)
            out[ioa] = bool(raw) if o.type == "M_SP_NA_1" else math.nan if raw is None else float(raw)
        return out

    def _on_command(self, point: c104.Point, previous_info: c104.Information,
                    message: c104.IncomingMessage) -> c104.ResponseState:
        """c104's thread: the write on the event loop, answered as the activation confirmation."""
        peer = f"iec104 originator {message.originator_address}"
        return response(self._gate.call(self._command, self.objects[point.io_address], point.value, peer))

    def _command(self, o: StubObject, value: object, peer: str) -> bool:
        """One command as the Modbus write of its point (on the event loop); True when applied."""
        self._alive(self.unit, 16)
        self.peer = peer
        try:
            regs = encode(o.point, float(value), self.image.sf(o.point))
            self.write("holding", o.point.address, regs, 16)
        except (EncodeError, Refused) as exc:
            self.log.warning("iec104 command from %s rejected: %s=%s: %s", peer, o.point.name, value, exc)
            return False
        self._monitor.publish(self._values(), self.server.iec, c104.Cot.SPONTANEOUS)  # the read-back at once
        return True


class _Station:
    """The c104 server as `StubServer.stop` sees its front end."""

    def __init__(self, iec: c104.Server, gate: LoopGate):
        self.iec, self.gate = iec, gate

    async def stop(self) -> None:
        self.gate.close()
        self.iec.stop()
