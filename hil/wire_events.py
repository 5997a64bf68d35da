"""What the devices' Modbus wires carry, for scheduled events that target them, and those events as wire attacks.

`wire_names` reads each scenario device's coupling: the signals it publishes and the read point
that carries each (found by probing `Coupling.signals`: a signal that moves linearly with exactly
one read point, the others fixed, is carried by it), its points by exact name, the setpoints it
acts for with the register writes they become (`Coupling.translate` probed at three values), and
where a flood may be sent (the device's, or the grid server's, host and port). `wire_attacks`
turns a schedule's wire events into the `Wire*` specs of each device through each kind's `wire`,
the same specs a device's `wire:` list holds, so both end in one `hil.bridge.WireSchedule`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cosim.events.base import MEASUREMENT
from cosim.events.registry import kind_of
from cosim.events.schedule import Schedule
from cosim.scenario.schema import Scenario
from hil.checks import is_loopback
from hil.coupling import Coupling

GRID_SERVER = "grid_server"  # the flood target that names the grid's own server


class Carrier(NamedTuple):
    """How a scenario name travels in one register point: point value = gain * name value + const."""

    device: str
    point: str
    gain: float
    const: float

    def value(self, x: float) -> float:
        """The point's value for the name's value x."""
        return self.gain * x + self.const

    def bias(self, scale: float, bias: float) -> float:
        """The bias on the point that makes it show name * scale + bias (its scale stays `scale`)."""
        return self.gain * bias + self.const * (1.0 - scale)


class Endpoint(NamedTuple):
    """Where a flood would go: host and port (port None: a free one per run), and whether it speaks Modbus-TCP."""

    host: str
    port: int | None
    tcp: bool


@dataclass(frozen=True)
class WireNames:
    """The names the devices' wires carry (see the module docstring)."""

    signals: dict[str, Carrier]  # published signal -> its read point
    points: dict[str, Carrier]  # `<device>.<point>` of every read point
    commands: dict[str, tuple[str, tuple[Carrier, ...]]]  # setpoint or `<device>.<writable point>` -> writes
    endpoints: dict[str, Endpoint]  # flood targets: device names and `grid_server`

    @property
    def devices(self) -> frozenset[str]:
        """The devices' names."""
        return frozenset(c.device for c in self.points.values())

    def carrier(self, name: str) -> Carrier:
        """The read point carrying a measured target."""
        return self.signals.get(name) or self.points[name]

    def by_device(self, targets: tuple[str, ...]) -> dict[str, list[Carrier]]:
        """The read points carrying measured targets, per device."""
        out: dict[str, list[Carrier]] = defaultdict(list)
        for name in targets:
            c = self.carrier(name)
            out[c.device].append(c)
        return dict(out)

    def describe(self, device: str, path: str) -> str:
        """What a device's wire carries, for messages."""
        if path == MEASUREMENT:
            signals = [n for n, c in self.signals.items() if c.device == device]
            return f"signals {', '.join(signals) or 'none'}, or a read point by name such as {device}.<point>"
        names = [n for n, (d, _) in self.commands.items() if d == device]
        return f"setpoints and writable points {', '.join(names[:8]) or 'none'}"

    def refuse_flood(self, target: str) -> str | None:
        """Why `target` cannot be flooded (None: it can)."""
        e = self.endpoints.get(target)
        if e is None:
            return (f"it is neither a device nor {GRID_SERVER} of this scenario (targets: "
                    f"{', '.join(self.endpoints) or 'none'})")
        if not e.tcp:
            return "it is on a serial line (Modbus RTU) or speaks IEC 104; a flood is Modbus-TCP"
        if not is_loopback(e.host):
            return (f"it is at {e.host}, not a loopback address: a flood is only ever sent to 127.0.0.1, ::1 "
                    "or localhost (a test bench's own stubs and servers)")
        return None


def _signal_carriers(c: Coupling) -> dict[str, Carrier]:
    base = {p: 1.0 for p in c.reads}
    s0 = c.signals(base)
    found: dict[str, list[Carrier]] = defaultdict(list)
    for p in c.reads:
        s1, s2 = c.signals({**base, p: 2.0}), c.signals({**base, p: 3.0})
        for name, v0 in s0.items():
            d1, d2 = s1[name] - v0, s2[name] - s1[name]
            if math.isfinite(d1) and d1 != 0 and math.isclose(d1, d2, rel_tol=1e-9):
                found[name].append(Carrier(c.name, p, 1.0 / d1, -(v0 - d1) / d1))
    return {name: cs[0] for name, cs in found.items() if len(cs) == 1}


def _writes(c: Coupling, name: str) -> tuple[Carrier, ...] | None:
    t = [c.translate(name, v) for v in (0.0, 1.0, 2.0)]
    if t[0] is None or any(set(x or ()) != set(t[0]) for x in t):
        return None
    out = []
    for point, v0 in t[0].items():
        g = t[1][point] - v0
        if not math.isclose(t[2][point] - t[1][point], g, rel_tol=1e-9, abs_tol=1e-12):
            return None  # not linear in the setpoint (e.g. an open / close command)
        out.append(Carrier(c.name, point, g, v0))
    return tuple(out)


def wire_names_of(scn: Scenario, couplings: list[Coupling]) -> WireNames:
    """The wire names of the given couplings of `scn`."""
    signals, points, commands, endpoints = {}, {}, {}, {}
    setpoints = [f"{g.name}.{s}" for g in scn.generators for s in ("p_limit_mw", "q_set_mvar")]
    for c in couplings:
        signals.update(_signal_carriers(c))
        points.update({f"{c.name}.{p}": Carrier(c.name, p, 1.0, 0.0) for p in c.reads})
        for p in sorted(c.writable):
            if p in c.regmap:
                commands[f"{c.name}.{p}"] = (c.name, (Carrier(c.name, p, 1.0, 0.0),))
        for name in setpoints:
            writes = _writes(c, name)
            if writes is not None and name not in commands:
                commands[name] = (c.name, writes)
        m = c.spec.modbus
        endpoints[c.name] = Endpoint(m.host, m.port, m.transport == "tcp")
    if scn.grid_server is not None:
        endpoints[GRID_SERVER] = Endpoint(scn.grid_server.host, scn.grid_server.port, scn.grid_server.protocol == "modbus")
    return WireNames(signals, points, commands, endpoints)


def wire_names(scn: Scenario, base_dir: Path) -> WireNames:
    """The wire names of every device of `scn` that can be built; one the device checks reject (a missing or bad
    map, an inverter without its generator) offers none, and those checks report it."""
    from hil.devices import coupling

    built = []
    for spec in scn.devices:
        try:
            c = coupling(scn, spec, base_dir)
            wire_names_of(scn, [c])  # probes its signals and setpoints
        except Exception:  # noqa: BLE001 - reported by the device checks, not here
            continue
        built.append(c)
    return wire_names_of(scn, built)


def wire_attacks(schedule: Schedule, names: WireNames, step_s: float) -> dict[str, list]:
    """Device (or `grid_server`) -> the `Wire*` specs of the schedule's events that travel on its wire."""
    out: dict[str, list] = defaultdict(list)
    for e in schedule.events:
        if e.wire:
            for device, spec in kind_of(e.spec).wire(e, names, step_s):
                out[device].append(spec)
    return dict(out)
