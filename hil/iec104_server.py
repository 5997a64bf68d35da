"""The grid server over IEC 60870-5-104 (c104 library): the Modbus grid server's data model, another front end.

The objects are `hil/maps/grid_server_iec104.yaml`, derived from the Modbus layout: each entry
of the Modbus table is one information object at `base + its Modbus address` (measured values
M_ME_NC_1, breaker states M_DP_NA_1, breaker commands C_DC_NA_1 / C_SC_NA_1, set-points
C_SE_NC_1). Every step publishes the changed values spontaneously; interrogation (C_IC_NA_1)
returns every monitoring object. A command passes exactly what a Modbus write passes
(`hil.grid_server.GridServer`: guard, allow-list of breakers, clamps, read-only mode) and, as
`grid_server.commands: false` here means "no commands", is refused too when commands are off; the
answer is a positive or negative activation confirmation. c104 calls back on its own thread, so
every decision runs on the co-simulation's event loop (`LoopGate`) like the Modbus server's.
"""
# no `from __future__ import annotations`: c104 checks a callback's annotations as real types

import asyncio
import concurrent.futures
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import c104
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hil import MAPS_DIR
from hil.codec import raw_to_registers, registers_to_raw
from hil.grid_server import Entry, GridServer
from hil.guard import Guard
from hil.modbus_server import ILLEGAL_FUNCTION, ILLEGAL_VALUE, Refused

OBJECTS = MAPS_DIR / "grid_server_iec104.yaml"
COMMAND_WAIT_S = 10.0  # how long a command waits for the event loop: the c104 client's default command timeout
COMMANDS = frozenset({"C_SC_NA_1", "C_DC_NA_1", "C_SE_NC_1"})


class LoopGate:
    """Runs a c104 callback's work on the event loop that owns the data model, and waits for its answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._open = True
        self._waiting: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., bool], *args: object) -> bool:
        """fn(*args) on the loop; False when the gate is closed or the loop does not take it in time."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if not self._open:
                return False
            self._waiting.add(fut)

        def run() -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                    fut.set_exception(exc)

        try:
            self.loop.call_soon_threadsafe(run)
            try:
                return fut.result(COMMAND_WAIT_S)
            except concurrent.futures.TimeoutError:
                return False if fut.cancel() else fut.result()  # not begun: never runs; begun: its answer
        except (RuntimeError, concurrent.futures.CancelledError):  # loop closed, or the gate closed meanwhile
            return False
        finally:
            with self._lock:
                self._waiting.discard(fut)

    def close(self) -> None:
        """Refuse every further call and cancel the ones still waiting (from the loop's thread: never run)."""
        with self._lock:
            self._open = False
            waiting = list(self._waiting)
        for fut in waiting:
            fut.cancel()


def response(ok: bool) -> c104.ResponseState:
    """The activation confirmation of a decision: positive or negative."""
    return c104.ResponseState.SUCCESS if ok else c104.ResponseState.FAILURE


class Monitor:
    """The monitoring objects of one station: each set to its latest value, the changed ones sent together."""

    def __init__(self) -> None:
        self.points: dict[int, c104.Point] = {}  # ioa -> point
        self._sent: dict[int, object] = {}  # ioa -> value last set

    def publish(self, values: Mapping[int, object], server: c104.Server | None, cause: c104.Cot) -> None:
        """Set each object (a NaN short float marked invalid); transmit the changed ones with `cause` if `server`."""
        changed: dict[c104.Type, list[c104.Point]] = {}
        for ioa, value in values.items():
            last = self._sent.get(ioa)
            if ioa in self._sent and (value == last or (value != value and last != last)):  # NaN: unchanged
                continue
            point = self.points[ioa]
            point.value = value
            if point.type == c104.Type.M_ME_NC_1:
                point.quality = c104.Quality.Invalid if math.isnan(value) else c104.Quality()
            self._sent[ioa] = value
            changed.setdefault(point.type, []).append(point)
        if server is not None:
            for points in changed.values():
                server.transmit_batch(c104.Batch(cause, points))


class ObjectRow(BaseModel):
    """One kind of information object made from one Modbus table."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: Literal["input", "coil", "holding"]
    type: Literal["M_ME_NC_1", "M_DP_NA_1", "C_DC_NA_1", "C_SC_NA_1", "C_SE_NC_1"]
    base: int = Field(ge=1, le=0xFFFFFF - 0xFFFF)
    doc: str = ""


class ObjectMap(BaseModel):
    """The IEC 104 object file of the grid server."""

    model_config = ConfigDict(extra="forbid")
    device: str
    objects: list[ObjectRow]

    @model_validator(mode="after")
    def _apart(self) -> "ObjectMap":
        bases = sorted(r.base for r in self.objects)
        if any(b - a <= 0xFFFF for a, b in zip(bases, bases[1:])):
            raise ValueError("bases must lie more than 65535 apart (one whole Modbus address range each)")
        return self


@dataclass(frozen=True)
class Obj:
    """One information object: its address, type and the Modbus entry it stands for."""

    ioa: int
    type: str
    entry: Entry


def load_objects(path: Path = OBJECTS) -> ObjectMap:
    """The object file, validated."""
    return ObjectMap.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def objects(table: Sequence[Entry], rows: ObjectMap | None = None) -> list[Obj]:
    """Every information object of one grid: one per row and entry of the row's table, IOA = base + address."""
    rows = rows or load_objects()
    return [Obj(r.base + e.address, r.type, e) for r in rows.objects for e in table if e.table == r.table]


class Iec104GridServer(GridServer):
    """The grid server over IEC 60870-5-104 (one station); see the module docstring."""

    def __init__(self, table: list[Entry], guard: Guard, host: str = "127.0.0.1", port: int = 2404,
                 common_address: int = 1, commands: bool = True):
        super().__init__(table, guard, host, port, commands=commands)
        self.common_address = common_address
        self.objects = {o.ioa: o for o in objects(table)}
        self._iec: c104.Server | None = None
        self._gate: LoopGate | None = None
        self._monitor = Monitor()

    async def start(self) -> int:
        """Start serving; returns the port."""
        self._gate = LoopGate(asyncio.get_running_loop())
        server = c104.Server(ip=self.host, port=self.port)
        station = server.add_station(common_address=self.common_address)
        for o in self.objects.values():
            point = station.add_point(io_address=o.ioa, type=getattr(c104.Type, o.type))
            if o.type in COMMANDS:
                point.on_receive(callable=self._on_command)
            else:
                self._monitor.points[o.ioa] = point
        self._publish()
        server.start()
        self._iec = server
        return self.port

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        self.close()

    def close(self) -> None:
        """Refuse the commands still waiting and stop listening."""
        if self._gate is not None:
            self._gate.close()
        if self._iec is not None:
            self._iec.stop()
            self._iec = None

    def update(self, signals: Mapping[str, float], closed: Sequence[bool], step: int) -> None:
        """Publish one step's values: the Modbus image, then each changed object spontaneously."""
        super().update(signals, closed, step)
        self._publish()

    def _publish(self) -> None:
        """Every monitoring object from the Modbus image (the same float32), sent spontaneously when it changed."""
        values: dict[int, object] = {}
        for ioa in self._monitor.points:
            e = self.objects[ioa].entry
            if self.objects[ioa].type == "M_DP_NA_1":
                values[ioa] = c104.Double.ON if self.closed[e.address] else c104.Double.OFF
            else:
                values[ioa] = float(registers_to_raw("float32", self.input_regs[e.address: e.address + 2]))
        self._monitor.publish(values, self._iec, c104.Cot.SPONTANEOUS)

    def _on_command(self, point: c104.Point, previous_info: c104.Information,
                    message: c104.IncomingMessage) -> c104.ResponseState:
        """c104's thread: the decision on the event loop, answered as the activation confirmation."""
        peer = f"iec104 originator {message.originator_address}"
        return response(self._gate.call(self._decide, self.objects[point.io_address], point.value, peer))

    def _decide(self, o: Obj, value: object, peer: str) -> bool:
        """One command through the Modbus grid server's checks (on the event loop); True when accepted."""
        self.peer = peer  # the Modbus server's client address in its events; IEC 104 names no client per command
        target = f"scada.{o.entry.name}"
        try:
            if self.guard.read_only:
                self._blocked(target, ILLEGAL_FUNCTION, "read-only mode")
            if not self.accepts_commands:
                self._blocked(target, ILLEGAL_FUNCTION, "grid_server.commands: false")
            if o.type == "C_SE_NC_1":
                self._command(o.entry.address, raw_to_registers("float32", float(value)))
            elif o.type == "C_SC_NA_1":
                self._breakers(o.entry.address, [int(bool(value))])
            elif value in (c104.Double.ON, c104.Double.OFF):
                self._breakers(o.entry.address, [int(value == c104.Double.ON)])
            else:  # a double command's INTERMEDIATE or INDETERMINATE state
                self._blocked(target, ILLEGAL_VALUE, f"{value} is neither ON nor OFF")
        except Refused:
            return False
        return True
