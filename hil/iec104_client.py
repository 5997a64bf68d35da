"""One IEC 60870-5-104 connection to one device (a c104 client), with `DeviceClient`'s register contract.

So the link above it (`hil.link.DeviceLink`: guard, read-back, heartbeat wait, writes from
outside, stale handling) and every reader of `hil.reading` work unchanged. The device's objects
are those of `firmware_stubs.iec104` (`hil/maps/<map>_iec104.yaml`): a monitoring object at
IOA = the point's Modbus address, its command at 100000 + that address.

- A read of registers [a, a + n) is answered from the values the station last sent
  (interrogation at connection, then spontaneous changes), each point encoded into its
  registers by `hil.codec` with the scale factor the station sent for it; registers no object
  carries read 0 (the link compares only `points`, the monitored ones).
- A write of registers is the command of the point at that address (the value decoded with
  its scale factor; C_SC_NA_1 for a 0..1 point, else C_SE_NC_1), sent in a worker thread: a
  negative activation confirmation is a `DeviceError` `exception`, none within `timeout` a
  `timeout`; a write no command object takes is an `exception` (ILLEGAL_ADDRESS, 0x02).
- Not open, or open but not yet interrogated (every object of the list received again), is
  `connection`. c104 reconnects by itself;
  `ensure_reconnect` interrogates a connection that came back before it counts as connected,
  so the first read after a reconnection is the device's state, not the last one seen.
- A value reaches the client when the station publishes, up to one publishing interval after
  the firmware tick that made it, so the link waits for the heartbeat to move by `ticks` = 2.
"""
# no `from __future__ import annotations`: c104 checks a callback's annotations as real types

import asyncio
import math
import time
from collections.abc import Iterable
from pathlib import Path

import c104
import yaml

from firmware_stubs.iec104 import COMMAND_BASE, StubObjectList
from hil import MAPS_DIR
from hil.client import DeviceError, Stats
from hil.codec import EncodeError, decode, encode_clamped
from hil.registers import Point, RegisterMap

ILLEGAL_ADDRESS = 0x02


def _binary(p: Point) -> bool:
    return p.min == 0 and p.max == 1


class Iec104Client:
    """One device's station over IEC 104 (see the module docstring); same `read` / `write` / reconnect contract."""

    ticks = 2  # heartbeat moves the link waits for after a write (values arrive up to one publish interval late)

    def __init__(self, name: str, regmap: RegisterMap, monitor: Iterable[str], commands: Iterable[str],
                 host: str = "127.0.0.1", port: int = 2404, common_address: int = 1, timeout: float = 0.5,
                 backoff: tuple[float, float] = (0.2, 5.0)):
        """`monitor` / `commands`: the point names of the device's IEC 104 object list."""
        self.name, self.regmap, self.host, self.port, self.unit = name, regmap, host, port, common_address
        self.timeout = timeout
        self.serial = None
        self.delay = backoff[0]
        self.next_attempt = 0.0
        self.stats = Stats()
        self.points = frozenset(monitor)  # the points a read carries (the link compares only these)
        self._monitor = [regmap[n] for n in monitor]
        self._commands = {regmap[n].address: regmap[n] for n in commands}
        self._synced = False
        self._task: asyncio.Task | None = None
        self._client = c104.Client(tick_rate_ms=50, command_timeout_ms=max(50, int(timeout * 1000)))
        self._client.on_new_point(callable=self._new_point)
        self._con = self._client.add_connection(ip=host, port=port, init=c104.Init.NONE)
        self._station = self._con.add_station(common_address=common_address)
        self._seen: set[int] = set()  # monitoring objects received since the last (re)connection
        for p in self._monitor:
            obj = self._station.add_point(io_address=p.address,
                                          type=c104.Type.M_SP_NA_1 if _binary(p) else c104.Type.M_ME_NC_1)
            obj.on_receive(callable=self._received)
        for p in self._commands.values():
            self._station.add_point(io_address=COMMAND_BASE + p.address,
                                    type=c104.Type.C_SC_NA_1 if _binary(p) else c104.Type.C_SE_NC_1)
        self._started = False

    @staticmethod
    def _new_point(client: c104.Client, station: c104.Station, io_address: int, point_type: c104.Type) -> None:
        station.add_point(io_address=io_address, type=point_type)  # objects the list does not name: kept, unused

    def _received(self, point: c104.Point, previous_info: c104.Information,
                  message: c104.IncomingMessage) -> c104.ResponseState:
        """c104's thread: a monitoring object arrived (its value is the point's own)."""
        self._seen.add(point.io_address)
        return c104.ResponseState.NONE

    @property
    def where(self) -> str:
        """'127.0.0.1:2404 CA 1' (for messages)."""
        return f"{self.host}:{self.port} CA {self.unit}"

    @property
    def connected(self) -> bool:
        return self._synced and self._con.is_connected

    async def connect(self) -> bool:
        """Open the connection and interrogate the station (at most `timeout` seconds for each)."""
        if not self._started:
            self._client.start()
            self._started = True
        else:
            self._con.connect()
        deadline = time.monotonic() + self.timeout
        while self._con.state != c104.ConnectionState.OPEN:
            if self._con.state == c104.ConnectionState.OPEN_MUTED:
                self._con.unmute()  # c104 2.2 can leave a fresh connection muted on the client's side
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        self._seen = set()
        if not await asyncio.to_thread(self._con.interrogation, common_address=self.unit, wait_for_response=False):
            return False
        wanted = {p.address for p in self._monitor}
        while not wanted <= self._seen:  # every object of the list answered: the image is the device's state
            if time.monotonic() > deadline + self.timeout:
                return False  # e.g. a wrong common address: the station sends nothing
            await asyncio.sleep(0.005)
        self._synced = True
        self.delay = 0.2
        return True

    def ensure_reconnect(self, now: float) -> None:
        """Interrogate a connection c104 has opened again (c104 itself retries closed ones)."""
        self._synced = self._synced and self._con.is_connected
        if self._synced or (self._task is not None and not self._task.done()) or now < self.next_attempt:
            return
        self._task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        if self._con.is_connected and await self.connect():
            self.stats.reconnects += 1
            return
        self.next_attempt = time.monotonic() + self.delay
        self.delay = min(2.0 * self.delay, 5.0)

    @property
    def reconnecting(self) -> bool:
        return self._task is not None and not self._task.done()

    def _check(self) -> None:
        if not self.connected:
            self.stats.connection_errors += 1
            raise DeviceError("connection", f"{self.name}: not connected to {self.where}")

    async def read(self, address: int, count: int, write: tuple[int, list[int]] | None = None) -> list[int]:
        """Registers [address, address + count) from the station's last values; `write` is sent first."""
        if write is not None:
            await self.write(*write)
        self._check()
        self.stats.requests += 1
        t0 = time.perf_counter()
        regs = [0] * count
        sfs = {p.name: self._value(p) for p in self._monitor if p.type == "sunssf"}
        for p in self._monitor:
            if address <= p.address and p.address + p.size <= address + count:
                value = self._value(p)
                sf = sfs.get(p.sf) if p.sf else None
                if value is None or (p.sf and sf is None):
                    continue
                try:
                    regs[p.address - address:p.address - address + p.size] = encode_clamped(p, value, sf)
                except EncodeError:
                    continue
        self.stats.rtt_ms.append((time.perf_counter() - t0) * 1000.0)
        return regs

    def _value(self, p: Point) -> float | None:
        """The point's last value from the station (its information object), None when it sent none or NaN."""
        obj = self._station.get_point(p.address)
        v = None if obj is None else obj.value
        if isinstance(v, bool):
            return float(v)
        if not isinstance(v, (int, float)) or math.isnan(v):
            return None
        return int(round(v)) if p.type == "sunssf" else float(v)

    async def write(self, address: int, registers: list[int]) -> None:
        """The commands of the points at `address` on (adjacent ones, as the link joins them) with the values
        `registers` encode, one after another; never retried."""
        self._check()
        at = address
        while at < address + len(registers):
            p = self._commands.get(at)
            if p is None or at + p.size > address + len(registers):
                self.stats.exceptions += 1
                raise DeviceError("exception", f"{self.name}: no IEC 104 command object for register {at}",
                                  ILLEGAL_ADDRESS)
            await self._command(p, registers[at - address:at - address + p.size])
            at += p.size

    async def _command(self, p: Point, registers: list[int]) -> None:
        sf = self._value(self.regmap[p.sf]) if p.sf else None
        value = decode(p, registers, int(sf) if sf is not None else None)
        obj = self._station.get_point(COMMAND_BASE + p.address)
        obj.value = bool(value) if _binary(p) else float(value)
        self.stats.requests += 1
        t0 = time.perf_counter()
        ok = await asyncio.to_thread(obj.transmit, cause=c104.Cot.ACTIVATION)
        elapsed = time.perf_counter() - t0
        if not self._con.is_connected:
            self.stats.connection_errors += 1
            raise DeviceError("connection", f"{self.name}: connection lost during a command")
        if not ok and elapsed >= self.timeout:
            self.stats.timeouts += 1
            raise DeviceError("timeout", f"{self.name}: no activation confirmation within {self.timeout:g} s")
        self.stats.rtt_ms.append(elapsed * 1000.0)
        if not ok:
            self.stats.exceptions += 1
            raise DeviceError("exception", f"{self.name}: negative confirmation of {p.name}={value}")

    def close(self) -> None:
        """Drop the connection and any pending re-interrogation (safe to call from synchronous code)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._started:
            self._client.stop()
            self._started = False


def object_file(map_file: Path) -> Path:
    """The IEC 104 object list of a register map: `<map>_iec104.yaml` next to it, else the shipped one of that name."""
    own = map_file.with_name(f"{map_file.stem}_iec104.yaml")
    return own if own.exists() else MAPS_DIR / own.name


def client_for(name: str, regmap: RegisterMap, map_file: Path, host: str, port: int, common_address: int,
               timeout: float) -> Iec104Client:
    """The client of a device whose objects are listed in the object file of `map_file` (ValueError when none)."""
    path = object_file(map_file)
    if not path.exists():
        raise ValueError(f"device {name}: transport iec104 needs the IEC 104 object list {path} (none exists)")
    spec = StubObjectList.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    return Iec104Client(name, regmap, spec.monitor, spec.commands, host, port, common_address, timeout)
