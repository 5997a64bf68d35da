"""One device in the loop: each step, feed it, write the guarded setpoints, let it act, read it back, notice trouble.

A cycle writes the setpoints in force that the device does not hold yet (each through the
guard, one request each, never retried) and the physics inputs of an emulated device, then
reads every point it needs in as few requests as the map allows, which doubles as the
read-back check of this cycle's writes. The timing rule: what the read shows must already
be the device's answer to this step's writes, since it is what the grid takes at the next
step. A device whose map has a `Heartbeat` point (a counter its firmware bumps every tick,
as every firmware stub does) is read only after the heartbeat has moved past its value read
once the writes were acknowledged, i.e. after a whole firmware tick that saw them (by `client.ticks`
over a protocol whose values arrive up to a tick late, IEC 104: two; `device_no_tick` when it does
not move within two ticks more plus the request timeout, or in a paced run by 70 % of the step's
slot, so that one stalled device does not make the step miss its deadline); a device without one is
taken to act on a write before acknowledging it and is read right away. The physics inputs
ride on the first heartbeat read, or on the first read when there is no heartbeat (FC23,
write then read in one transaction). The reads are planned and
decoded by `hil.reading.ReadPlan`, like every other read of a device. What went wrong is noted as
events for the run's event log: `guard_blocked`, `guard_clamped`, `readback_mismatch`,
`device_rejected`, `write_timeout`, `write_unencodable`, `device_write_unexpected` (see below),
`device_stale` (with `device_timeout`, `device_garbage` or `device_exception` saying why, when
connected) and `device_reconnected`.

Writes from outside: every control register of the device (a read-write point of its map that
is no pulse command and no physics input) that the step's reads cover — the writable points
are always read — is compared each step with what the bridge last saw or set; a change the
bridge did not write is `device_write_unexpected`, with the register and the old and new value
as the event's detail: another master (a rogue client), or the device's own fail-safe. Points
a device moves itself (`Coupling.self_changing`, e.g. a capacitor bank's StepCmd in auto mode)
are not compared while it does.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cosim.eventlog import Note
from hil.client import DeviceClient, DeviceError
from hil.codec import EncodeError, encode
from hil.coupling import Coupling
from hil.guard import Guard
from hil.reading import ReadPlan, read_spans
from hil.registers import RegisterMap

DEFAULT_TICK_S = 0.1  # firmware tick assumed for a device that does not say (the stubs' default)


def _control_points(regmap: RegisterMap, spans: Sequence[tuple[int, int]], exclude: frozenset[str]) -> set[str]:
    """The read-write points lying entirely inside the read requests `spans`, less `exclude`."""
    return {p.name for p in regmap.points if p.writable and p.name not in exclude
            and any(a <= p.address and p.end <= a + n for a, n in spans)}


def _merge(writes: dict[int, list[int]]) -> list[tuple[int, list[int]]]:
    """Adjacent register writes joined into one request each."""
    out: list[tuple[int, list[int]]] = []
    for address in sorted(writes):
        regs = writes[address]
        if out and out[-1][0] + len(out[-1][1]) == address:
            out[-1] = (out[-1][0], out[-1][1] + regs)
        else:
            out.append((address, list(regs)))
    return out


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class DeviceLink:
    """Client + coupling + guard of one device, and what the bridge knows of it between steps."""

    def __init__(self, coupling: Coupling, guard: Guard, client: DeviceClient, emulate: bool,
                 hold_s: float = math.inf, tick_s: float = DEFAULT_TICK_S):
        self.c, self.guard, self.client, self.emulate, self.hold_s = coupling, guard, client, emulate, hold_s
        regmap = coupling.regmap
        self.beat = regmap["Heartbeat"] if "Heartbeat" in regmap else None
        self.poll_s = min(max(tick_s / 10.0, 0.001), 0.01)  # heartbeat polls: a tenth of a tick, 1..10 ms
        self.tick_wait_s = (2.0 + client.ticks) * tick_s + client.timeout
        writable = {p for p in coupling.writable if p in regmap} - coupling.pulse
        spans = read_spans(regmap, set(coupling.reads) | writable)
        self.watched = _control_points(regmap, spans, coupling.pulse | coupling.fed) | writable
        if client.points is not None:  # a protocol whose reads carry named points only (IEC 104)
            self.watched &= client.points
        self.plan = ReadPlan(regmap, set(coupling.reads) | self.watched, spans=spans)
        self.values: dict[str, Any] | None = None  # last good reading (engineering units)
        self.raw: dict[str, list[int]] = {}
        self.sfs: dict[str, int | None] = {}
        self.known: dict[str, tuple[list[int], Any]] = {}  # control points as the bridge last saw or set them
        self.wanted: dict[str, float] = {}  # level setpoints in force
        self.pulses: dict[str, float] = {}  # one-shot commands of this step
        self.fresh_at = -math.inf
        self.stale = True
        self.synced = False  # read since the last (re)connection
        self.syncs = 0  # connections that got as far as a first read
        self.io_ms = math.nan
        self.notes: list[tuple[str, str]] = []
        self.counts = {"readback_mismatches": 0, "rejected_writes": 0, "writes_unexpected": 0, "write_timeouts": 0,
                       "stale_steps": 0}

    @property
    def name(self) -> str:
        return self.c.name

    def command(self, point: str, value: float) -> None:
        """A setpoint for `point` from a controller or SCADA: held until replaced (pulses: this step only)."""
        (self.pulses if point in self.c.pulse else self.wanted)[point] = value

    def _note(self, kind: str, point: str = "", detail: str = "") -> None:
        self.notes.append(Note(kind, f"{self.name}.{point}" if point else self.name, detail))

    async def start(self) -> None:
        """First connection attempt (a failure leaves the device stale; reconnection goes on in the background)."""
        if not await self.client.connect():
            self.client.next_attempt = time.monotonic() + self.client.delay

    async def cycle(self, grid: Mapping[str, float], now: float | None = None, wait_s: float | None = None) -> None:
        """One step of I/O with the device (see the module docstring); never raises for device trouble.

        `now` is the step's time on the guard's clock (the bridge's: simulated seconds in a run
        that is not paced, wall seconds in a real-time one); default the monotonic wall clock.
        `wait_s` caps the wait for the firmware tick (a paced run: what is left of the step's budget)."""
        t0 = time.perf_counter()
        now = time.monotonic() if now is None else now
        self.notes = []
        try:
            if not self.client.connected:
                self.synced = False
                self.client.ensure_reconnect(time.monotonic())
                raise DeviceError("connection", f"{self.name}: not connected")
            if not self.synced:
                await self._read(now)
                self.known = {}  # a device that restarted holds what it holds: compare from here on
                self.synced = True
                self.syncs += 1
                if self.syncs > 1:
                    self._note("device_reconnected")
            feed = self._feed(grid)
            moving = self.c.self_changing(self.values)
            written = await self._write(now)
            if self.beat is not None and (feed or written):
                await self._await_tick(feed, self.tick_wait_s if wait_s is None else min(self.tick_wait_s, wait_s))
                feed = []
            await self._read(now, feed)
            self._verify(written, now, moving | self.c.self_changing(self.values))
            self.fresh_at, self.stale = time.monotonic(), False
        except DeviceError as exc:
            self.stale = True
            self.counts["stale_steps"] += 1
            self._note("device_stale")
            if exc.kind != "connection":
                self._note(f"device_{exc.kind}")
        finally:
            self.pulses = {}
            self.io_ms = (time.perf_counter() - t0) * 1000.0

    def _feed(self, grid: Mapping[str, float]) -> list[tuple[int, list[int]]]:
        """The physics inputs of an emulated device as register writes (address, registers)."""
        if not self.emulate:
            return []
        writes: dict[int, list[int]] = {}
        for point, value in self.c.inputs(grid).items():
            if self.guard.check_input(point, value).blocked:
                self._note("guard_blocked", point)
                continue
            p = self.c.regmap[point]
            writes[p.address] = encode(p, value, self.sfs.get(p.sf) if p.sf else None)
        return _merge(writes)

    async def _write(self, now: float) -> dict[str, tuple[list[int], float]]:
        """Write what the device does not hold yet; returns point -> (registers, value) actually sent."""
        sent: dict[str, tuple[list[int], float]] = {}
        for point, asked in [*self.wanted.items(), *self.pulses.items()]:
            d = self.guard.check(point, asked, now)
            if d.blocked:
                self._note("guard_blocked", point)
                continue
            if d.clamped:
                self._note("guard_clamped", point)
            p = self.c.regmap[point]
            try:
                regs = encode(p, d.value, self.sfs.get(p.sf) if p.sf else None)
            except EncodeError:  # a value the register cannot hold (a point without min/max in its map)
                self._note("write_unencodable", point)
                continue
            if point not in self.c.pulse and self.raw.get(point) == regs:
                self.guard.settle(point, d.value, now)
                continue
            try:
                await self.client.write(p.address, regs)
            except DeviceError as exc:
                if exc.kind == "exception":
                    self.counts["rejected_writes"] += 1
                    self._note("device_rejected", point)
                    continue
                if exc.kind == "timeout":  # it may or may not have landed: the read-back tells
                    self.counts["write_timeouts"] += 1
                    self._note("write_timeout", point)
                    sent[point] = (regs, d.value)
                    continue
                raise
            sent[point] = (regs, d.value)
        return sent

    async def _await_tick(self, feed: Sequence[tuple[int, list[int]]], wait_s: float) -> None:
        """Write the physics inputs, then wait (at most `wait_s`) until a whole firmware tick has run since this
        step's writes."""
        for address, regs in feed[1:]:
            await self.client.write(address, regs)
        beat = self.beat.address
        first = (await self.client.read(beat, 1, feed[0] if feed else None))[0]
        deadline = time.monotonic() + wait_s
        while True:
            await asyncio.sleep(self.poll_s)
            if ((await self.client.read(beat, 1))[0] - first) % 65536 >= self.client.ticks:
                return
            if time.monotonic() > deadline:
                self._note("device_no_tick")
                return

    async def _read(self, now: float, feed: Sequence[tuple[int, list[int]]] = ()) -> None:
        """Read every point of the plan; the first physics-input write rides on the first read (FC23)."""
        for address, regs in feed[1:]:
            await self.client.write(address, regs)
        values, raw, sfs = await self.plan.read(self.client, feed[0] if feed else None)
        first = self.values is None or not self.synced
        self.values, self.raw, self.sfs = values, raw, sfs
        if first:  # the device's state is the base of the rate limits from now on
            for point in self.guard.rules:
                if isinstance(values.get(point), (int, float)):
                    self.guard.settle(point, float(values[point]), now)

    def _verify(self, sent: dict[str, tuple[list[int], float]], now: float, moving: frozenset[str]) -> None:
        for point, (regs, value) in sent.items():
            if point in self.c.pulse:
                continue
            if self.raw.get(point) != regs:
                self.counts["readback_mismatches"] += 1
                self._note("readback_mismatch", point)
            else:
                self.guard.settle(point, value, now)
        for point in self.watched:
            now_raw = self.raw.get(point)
            if now_raw is None:
                continue
            before = self.known.get(point)
            if before is not None and before[0] != now_raw and point not in sent and point not in moving:
                self.counts["writes_unexpected"] += 1
                p = self.c.regmap[point]
                self._note("device_write_unexpected", point,
                           f"register {p.address}: {_show(before[1])} -> {_show(self.values.get(point))}")
            self.known[point] = (now_raw, self.values.get(point))

    def signals(self) -> dict[str, float]:
        """Published readings plus `<name>.stale` and `<name>.io_ms` (this step's I/O time)."""
        out = self.c.signals(self.values)
        out[f"{self.name}.stale"] = float(self.stale)
        out[f"{self.name}.io_ms"] = self.io_ms
        return out

    def grid_setpoints(self) -> dict[str, float]:
        """The device's effect on the grid: its last reading, held `hold_s` after it went stale, then its fail-safe."""
        if self.values is None or time.monotonic() - self.fresh_at > self.hold_s:
            return self.c.grid_setpoints(None)
        return self.c.grid_setpoints(self.values)

    def close(self) -> None:
        self.client.close()
