"""Everything the co-simulation does over Modbus in one step, as one object the mosaik simulator drives.

Per step: take the controller's setpoints (and the commands a SCADA wrote to the grid
server), route each to the device that acts for it (or pass it on to the grid), set the
wire attacks of the step, run every device's I/O cycle concurrently, and return the
setpoints the grid gets: the passed-on ones plus what each device reports doing (for a point
the wire forged this step, what the device really sent: a wire attack deceives the masters,
not the physics). Wire attacks come from a device's `wire:` list and from the scenario's
`events:` that travel on its wire (`hil.wire_events`), both as one `WireSchedule` per device
(and one for the grid server, which only a flood targets). Every
request runs on the caller's event loop; nothing here blocks it. The devices' guards run on
simulated time (step k is k x step seconds) in a run that is not paced and on the wall clock
in a real-time one, with a rate budget of at most one step per decision. With a `capture`
(`cosim run --capture-modbus`, `hil.capture`), every Modbus master of the run is tapped and the
capture learns the step of each frame and the attacks that reach the wire.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from cosim.scenario.schema import (GridServer as GridServerSpec, Scenario, WireDelay, WireDrop, WireFDI, WireInjection,
                                   WireReplay, WireTamper)
from cosim.scenario.devices import WireFlood
from cosim.eventlog import Note
from cosim.events.schedule import Schedule
from cosim.realtime import WallClock
from cosim.scenario.units import steps_in
from cosim.seeding import rng_for
from hil.capture import BRIDGE, ROGUE, Capture, hits
from hil.client import DeviceClient
from hil.coupling import Coupling
from hil.devices import map_path
from hil.flood import Flooder
from hil.grid_server import GridServer, entries, load_layout, scada_rules
from hil.guard import Guard, Rule
from hil.link import DEFAULT_TICK_S, DeviceLink
from hil.mitm import ModbusProxy, rogue_write
from hil.reading import read_spans
from hil.wire_events import GRID_SERVER, wire_attacks, wire_names_of
from hil.serial_line import line_of


TICK_BUDGET = 0.7  # share of a paced step's slot by which every device's firmware-tick wait ends


@dataclass
class FloodTarget:
    """Where a flood of one device or the grid server goes: its own host and port (no proxy) and what it reads."""

    host: str
    port: int
    unit: int
    request: tuple[int, int, int]  # (function code, address, count) of a valid read
    stretch: float  # wall seconds per simulated second (the flood's own time bound)


@dataclass
class WireSchedule:
    """The wire attacks of one device (or the grid server) on the step grid, with the proxy that carries them
    (None when only floods target it) and the floods' clients."""

    name: str
    proxy: ModbusProxy | None
    attacks: list[tuple[int, int, object]]  # (first step, end step, spec)
    replay_from: dict[int, int]  # attack index -> first step of its recording window
    labelled: frozenset[int] = frozenset()  # the `wire:` list's attacks, noted each step (events: the schedule labels)
    flood_at: FloodTarget | None = None
    floods: dict[int, Flooder] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)

    def apply(self, k: int) -> tuple[list[tuple[str, float]], list[tuple[str, str]]]:
        """Set the proxy and the floods for step k; returns the rogue writes (point, value) and notes of the step
        (`wire_<kind>` of the `wire:` list's attacks, flood starts and stops)."""
        p = self.proxy
        if p is not None:
            p.clear()
        writes, notes = [], []
        for i, (start, end, a) in enumerate(self.attacks):
            if isinstance(a, WireFlood):
                notes += self._flood(i, k, start, end, a)
                continue
            if isinstance(a, WireReplay) and self.replay_from[i] <= k < start:
                p.recording = True
            if not start <= k < end:
                continue
            point = getattr(a, "point", "")
            if i in self.labelled:
                notes.append((f"wire_{a.kind}", f"{self.name}.{point}" if point else self.name))
            if isinstance(a, WireFDI):
                p.tamper[a.point] = (a.scale, a.bias)
            elif isinstance(a, WireReplay):
                p.replaying = True
                p.replay_points = None if a.points is None else {*(p.replay_points or ()), *a.points}
            elif isinstance(a, WireDelay):
                p.delay_s = a.seconds
            elif isinstance(a, WireDrop):
                p.drop_rate = a.rate
            elif isinstance(a, WireTamper):
                p.write_tamper[a.point] = (a.scale, a.offset)
            elif isinstance(a, WireInjection):
                writes.append((a.point, a.value))
        return writes, notes

    def _flood(self, i: int, k: int, start: int, end: int, a: WireFlood) -> list[Note]:
        """Start the flood at its first step; stop it at its end step and wait for its client."""
        t = self.flood_at
        if start <= k < end and i not in self.floods:
            f = self.floods[i] = Flooder(t.host, t.port, a.rate_per_s, a.duration * t.stretch, t.unit, *t.request)
            f.start()
            return [Note("flood_started", self.name, f"{f.rate:g} requests/s to {t.host}:{t.port}")]
        if k >= end and i in self.floods and i not in self.ended:
            self.ended.add(i)
            f = self.floods[i]
            f.stop()
            return [Note("flood_stopped", self.name, f"{f.sent} requests sent, {f.answered} answered, "
                                                     f"{f.timeouts} timed out")]
        return []

    def stop_floods(self) -> None:
        """Stop every flood still sending (the end of the run)."""
        for f in self.floods.values():
            f.stop()


def _steps(seconds: float, step_s: int) -> int:
    return int(math.ceil(seconds / step_s - 1e-9))


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


class Bridge:
    """The scenario's devices (and grid server) for one run; see the module docstring."""

    def __init__(self, scn: Scenario, couplings: list[Coupling], step_s: float, read_only: bool = False,
                 buses: tuple[int, ...] = (), lines: tuple[int, ...] = (),
                 closed_lines: Callable[[], list[bool]] | None = None, realtime: float | None = None,
                 clock: WallClock | None = None, schedule: Schedule | None = None, capture: Capture | None = None):
        self.scn, self.couplings, self.step_s, self.read_only = scn, couplings, step_s, read_only
        self.realtime = realtime  # wall seconds per simulated second in a paced run; None: not paced
        self.clock = clock  # the schedule of a paced run: the last step stays published for its slot
        self.schedule = schedule  # the scenario's events: those on a device's wire are its wire attacks
        self.capture = capture  # the run's Modbus capture (None: not captured)
        self.k = -1  # the last step done
        self.buses, self.lines = buses, lines
        self.closed_lines = closed_lines or (lambda: [True] * len(lines))
        self.links: list[DeviceLink] = []
        self.wire: dict[str, WireSchedule] = {}
        self.server: GridServer | None = None
        self.server_guard: Guard | None = None
        self.step_ms: list[float] = []
        self.rtt_ms: dict[str, float] = {}  # device -> the longest round trip of its requests this step
        self.notes: list[tuple[str, str]] = []

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start proxies and the grid server, and connect every device (one attempt each)."""
        scheduled = self._scheduled_wire()
        for c in self.couplings:
            spec = c.spec
            host, port = spec.modbus.host, spec.modbus.port
            attacks = [*spec.wire, *scheduled.get(c.name, [])]
            if attacks:
                proxy = None
                if any(not isinstance(a, WireFlood) for a in attacks):  # a flood goes to the device itself
                    seed = int(rng_for(self.scn.seed, "wire", c.name).integers(2**31))
                    proxy = ModbusProxy((host, port), c.regmap, seed=seed)
                    host, port = "127.0.0.1", await proxy.start()
                reads = read_spans(c.regmap, c.reads)[0]
                target = FloodTarget(spec.modbus.host, spec.modbus.port, spec.modbus.unit, (3, *reads), self._stretch())
                self.wire[c.name] = self._schedule(c.name, proxy, attacks, len(spec.wire), target)
            guard = Guard(c.name, c.writable, c.rules(), self.read_only, max_dt=self._guard_step())
            client = self._client(c, host, port)
            hold = spec.watchdog if spec.watchdog is not None else math.inf
            tick = float(c.stub_option("tick")) if spec.emulate else DEFAULT_TICK_S
            self.links.append(DeviceLink(c, guard, client, spec.emulate, hold, tick))
        if self.scn.grid_server is not None:
            gs = self.scn.grid_server
            self.server = self._grid_server(gs)
            await self.server.start()
            if GRID_SERVER in scheduled:  # input registers 0-1: the first bus voltage, always published
                target = FloodTarget(gs.host, gs.port, gs.unit, (4, 0, 2), self._stretch())
                self.wire[GRID_SERVER] = self._schedule(GRID_SERVER, None, scheduled[GRID_SERVER], 0, target)
        if self.capture is not None:
            listed = {name: [a for i, a in enumerate(w.attacks) if i in w.labelled] for name, w in self.wire.items()}
            self.capture.hits = hits(self.couplings, listed, self.schedule, wire_names_of(self.scn, self.couplings),
                                     self.step_s)
        await asyncio.gather(*(link.start() for link in self.links))

    def _client(self, c: Coupling, host: str, port: int | None) -> DeviceClient:
        """The device's client: Modbus-TCP, Modbus RTU on its serial line, or IEC 104 (the same contract)."""
        m = c.spec.modbus
        if m.transport == "iec104":  # the optional c104 extra: imported only when a scenario asks for it
            from hil.iec104_client import client_for
            if self.capture is not None:
                self.capture.uncaptured.append(c.name)
            return client_for(c.name, c.regmap, map_path(c.spec, c.base_dir), host, port, m.common_address, m.timeout)
        trace = self.capture.tap(c.name, BRIDGE) if self.capture is not None else None
        return DeviceClient(c.name, host, port, m.unit, m.timeout, serial=line_of(m), trace=trace)

    def _guard_step(self) -> float:
        """One step on the guards' clock: simulated seconds, or wall seconds in a paced run."""
        return self.step_s * self.realtime if self.realtime else self.step_s

    def _guard_now(self, k: int) -> float:
        """The guards' time of step k: k steps of simulated time, or the wall clock in a paced run."""
        return time.monotonic() if self.realtime else k * self.step_s

    def _scheduled_wire(self) -> dict[str, list]:
        """Device (or grid server) -> the `Wire*` attacks of the scenario's events on its wire."""
        if self.schedule is None or not any(e.wire for e in self.schedule.events):
            return {}
        return wire_attacks(self.schedule, wire_names_of(self.scn, self.couplings), self.step_s)

    def _stretch(self) -> float:
        """Wall seconds per simulated second at most: a flood's own bound on how long it sends."""
        return max(1.0, self.realtime or 1.0)

    def _schedule(self, name: str, proxy: ModbusProxy | None, attacks: list, listed: int,
                  flood_at: FloodTarget) -> WireSchedule:
        """The attacks on the step grid; the first `listed` are the `wire:` list's (noted each step)."""
        placed, replay_from = [], {}
        for i, a in enumerate(attacks):
            start = steps_in(a.at, self.step_s)
            placed.append((start, start + max(1, _steps(a.duration, self.step_s)), a))
            if isinstance(a, WireReplay):
                replay_from[i] = max(0, start - max(1, _steps(a.window, self.step_s)))
        return WireSchedule(name, proxy, placed, replay_from, frozenset(range(listed)), flood_at)

    def _grid_server(self, spec: GridServerSpec) -> GridServer:
        gens = self.scn.generators
        names = [g.name for g in gens]
        rules = scada_rules(gens)  # the allow-list of setpoints a SCADA may write, with their capability clamps
        if spec.setpoints is not None:
            rules = {name: rule for name, rule in rules.items() if name in spec.setpoints}
        for line in spec.breakers:  # the allow-list of breakers a SCADA may operate
            rules[f"line.{line}.closed"] = Rule(0.0, 1.0)
        self.server_guard = Guard("scada", rules.keys(), rules, self.read_only)
        table = entries(load_layout(), self.buses, self.lines, names)
        if spec.protocol == "iec104":  # the optional c104 extra: imported only when a scenario asks for it
            from hil.iec104_server import Iec104GridServer
            return Iec104GridServer(table, self.server_guard, spec.host, spec.port, spec.common_address, spec.commands)
        return GridServer(table, self.server_guard, spec.host, spec.port, spec.unit, spec.commands)

    async def stop(self) -> None:
        """Close every connection, proxy and the server; in a paced run the grid server first keeps the last
        step published for the rest of its slot (less a tenth of a period, so the step still meets its deadline)."""
        if self.server is not None and self.clock is not None:
            wait = self.clock.release(self.k + 1) - 0.1 * self.clock.period - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        for link in self.links:
            link.close()
        for w in self.wire.values():
            w.stop_floods()
            if w.proxy is not None:
                await w.proxy.stop()
        if self.server is not None:
            await self.server.stop()

    def close(self) -> None:
        """Synchronous clean-up for a run that ends abnormally (no awaiting possible)."""
        for link in self.links:
            link.close()
        for w in self.wire.values():
            w.stop_floods()
            if w.proxy is not None:
                w.proxy.close()
        if self.server is not None:
            self.server.close()

    # -- one step ---------------------------------------------------------------------------------
    async def step(self, k: int, commands: Mapping[str, float], grid: Mapping[str, float]) -> dict[str, float]:
        """Route `commands`, exchange with every device, publish the grid; returns the setpoints for the grid."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.k = k
        if self.capture is not None:
            self.capture.k = k
        self.notes = []
        merged = dict(commands)
        if self.server is not None:
            merged.update(self.server.take_commands())
        passed: dict[str, float] = {}
        for name, value in merged.items():
            if not self._route(name, value):
                passed[name] = value
        if GRID_SERVER in self.wire:
            self.notes += self.wire[GRID_SERVER].apply(k)[1]
        seen = [len(link.client.stats.rtt_ms) for link in self.links]
        await asyncio.gather(*(self._device_step(k, link, grid) for link in self.links))
        self.rtt_ms = {link.name: max(link.client.stats.rtt_ms[n:], default=math.nan)
                       for link, n in zip(self.links, seen)}
        delivered = dict(passed)
        for link in self.links:
            delivered.update(self._grid_setpoints(link))
            self.notes += link.notes
        if self.server is not None:
            self.server.update(grid, self.closed_lines(), k)
            self.notes += self.server.notes
            self.server.notes = []
        self.step_ms.append((loop.time() - t0) * 1000.0)
        return delivered

    def take_scada(self) -> dict[str, float]:
        """The SCADA commands written since the last call that no device acts for (they go to the grid at once);
        the others stay for the bridge's step, which hands them to their devices."""
        if self.server is None:
            return {}
        pending = self.server.pending
        direct = {n: v for n, v in pending.items() if not any(link.c.translate(n, v) is not None for link in self.links)}
        self.server.pending = {n: v for n, v in pending.items() if n not in direct}
        return direct

    def _grid_setpoints(self, link: DeviceLink) -> dict[str, float]:
        """What the device's output means for the grid: from what it really sent where the wire forged a reading."""
        held = link.grid_setpoints()
        schedule = self.wire.get(link.name)
        truth = schedule.proxy.truth if schedule is not None and schedule.proxy is not None else {}
        if truth and link.values is not None and held == link.c.grid_setpoints(link.values):
            return link.c.grid_setpoints({**link.values, **truth})
        return held

    def _route(self, name: str, value: float) -> bool:
        for link in self.links:
            points = link.c.translate(name, value)
            if points is not None:
                for point, v in points.items():
                    link.command(point, v)
                return True
        return False

    async def _device_step(self, k: int, link: DeviceLink, grid: Mapping[str, float]) -> None:
        schedule = self.wire.get(link.name)
        if schedule is not None:
            writes, notes = schedule.apply(k)
            self.notes += notes
            spec = link.c.spec
            for point, value in writes:
                if self.read_only:  # --read-only blocks every write the run makes, its wire attacks' too
                    self.notes.append(Note("guard_blocked", f"{link.name}.{point}", "read-only: wire attack write not sent"))
                    continue
                trace = self.capture.tap(link.name, ROGUE) if self.capture is not None else None
                await rogue_write(spec.modbus.host, spec.modbus.port, link.c.regmap, point, value, spec.modbus.unit,
                                  spec.modbus.timeout, trace)
        await link.cycle(grid, self._guard_now(k), self._tick_budget(k))

    def _tick_budget(self, k: int) -> float | None:
        """How long a device may wait for its firmware tick in step k: in a paced run until 70 % of the step's slot
        (then it is read anyway and noted `device_no_tick`), so one stalled device does not make the step late."""
        if self.clock is None:
            return None
        return max(0.0, self.clock.release(k) + TICK_BUDGET * self.clock.period - time.perf_counter())

    # -- what the run records ---------------------------------------------------------------------
    def signals(self) -> dict[str, float]:
        """Every device's readings and flags, the longest round trip of its requests this step (`<name>.rtt_ms`; NaN
        when none was answered), the wall time of this step's I/O (`bridge.step_ms`), this step's guard decisions (`guard.blocked`, `guard.clamped`) and the
        alarm on writes from outside (`alarm.device_write_unexpected`: how many this step)."""
        out: dict[str, float] = {}
        for link in self.links:
            out.update(link.signals())
            out[f"{link.name}.rtt_ms"] = self.rtt_ms.get(link.name, math.nan)
        kinds = [kind for kind, _ in self.notes]
        out["bridge.step_ms"] = self.step_ms[-1] if self.step_ms else math.nan
        out["guard.blocked"] = float(kinds.count("guard_blocked"))
        out["guard.clamped"] = float(kinds.count("guard_clamped"))
        out["alarm.device_write_unexpected"] = float(kinds.count("device_write_unexpected"))
        return out

    def metrics(self) -> dict[str, float]:
        """Counts and timings of the whole run for metrics.json."""
        guards = [link.guard for link in self.links] + ([self.server_guard] if self.server_guard else [])
        counts = {key: sum(link.counts[key] for link in self.links) for key in
                  ("readback_mismatches", "rejected_writes", "writes_unexpected", "write_timeouts", "stale_steps")}
        stats = [link.client.stats for link in self.links]
        rtt = [x for s in stats for x in s.rtt_ms]
        return {
            "guard_blocked_writes": sum(g.blocked for g in guards),
            "guard_clamped_writes": sum(g.clamped for g in guards),
            "guard_readback_mismatches": counts["readback_mismatches"],
            "device_rejected_writes": counts["rejected_writes"],
            "device_write_unexpected": counts["writes_unexpected"],
            "device_setpoint_changes": counts["writes_unexpected"],  # its name before `device_write_unexpected`
            "device_write_timeouts": counts["write_timeouts"],
            "device_stale_steps": counts["stale_steps"],
            "device_reconnects": sum(s.reconnects for s in stats),
            "bridge_requests": sum(s.requests for s in stats),
            "bridge_timeouts": sum(s.timeouts for s in stats),
            "bridge_garbage": sum(s.garbage for s in stats),
            "bridge_exceptions": sum(s.exceptions for s in stats),
            "bridge_rtt_p50_ms": _percentile(rtt, 50),
            "bridge_rtt_p99_ms": _percentile(rtt, 99),
            "bridge_step_p50_ms": _percentile(self.step_ms, 50),
            "bridge_step_max_ms": max(self.step_ms) if self.step_ms else math.nan,
        }
