"""Loader checks of the `devices:` and `grid_server:` blocks that need the feeder, the maps and the files.

The checks every device gets are here (names, endpoints, bus, limits of its kind, map and
points, wire attacks); each kind adds its own (`check` in `hil/kinds/<kind>.py`). Each
problem is (path in the scenario, message); the loader turns them into `Problem`s with
their line numbers, like every other scenario error.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cosim.grid.feeders import Feeder
from cosim.scenario.devices import LIMIT_KEYS, owners_text
from cosim.scenario.schema import Device, Scenario
from hil.devices import cached_map, map_path
from hil.grid_server import scada_setpoints
from hil.kinds import module
from hil.registers import RegisterMapError

Problems = list[tuple[tuple, str]]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class CheckContext:
    """What the checks of one scenario share: the scenario, its feeder, and which device acts for which generator."""

    scn: Scenario
    feeder: Feeder
    buses: set[int] = field(default_factory=set)
    lines: set[int] = field(default_factory=set)
    generators: set[str] = field(default_factory=set)
    acting: dict[str, str] = field(default_factory=dict)  # generator -> the device acting for it

    def needs_bus(self, d: Device, at: tuple) -> Problems:
        """A device fed its bus voltage must say where it is."""
        if d.bus is None:
            return [(at, f"missing required key 'bus' (a {d.kind} is fed its bus voltage)")]
        return []


def device_problems(scn: Scenario, feeder: Feeder, base_dir: Path) -> Problems:
    """Problems of the `devices:` and `grid_server:` blocks as (path in the scenario, message)."""
    ctx = CheckContext(scn, feeder, set(feeder.bus_labels.tolist()), set(feeder.line_labels.tolist()),
                       {g.name for g in scn.generators})
    problems: Problems = []
    names: dict[str, int] = {}
    endpoints: dict[tuple[str, int], str] = {}

    def endpoint(path: tuple, host: str, port: int, allow_remote: bool, who: str) -> None:
        if not allow_remote and not is_loopback(host):
            problems.append(((*path, "host"), f"{host} is not a loopback address; devices and servers are reached on "
                                              "127.0.0.1 unless the entry sets allow_remote: true"))
        key = ("loopback" if is_loopback(host) else host, port)
        if key in endpoints:
            problems.append(((*path, "port"), f"port {port} is already used by {endpoints[key]}"))
        endpoints.setdefault(key, who)

    for i, d in enumerate(scn.devices):
        at = ("devices", i)
        if d.name in names:
            problems.append(((*at, "name"), f"duplicate device name {d.name!r} (first used by devices[{names[d.name]}])"))
        elif d.name in ctx.generators:
            problems.append(((*at, "name"), f"{d.name!r} is already a generator's name; devices need their own names"))
        names.setdefault(d.name, i)
        if d.modbus.port is not None:  # else a free port per run
            endpoint((*at, "modbus"), d.modbus.host, d.modbus.port, d.allow_remote, f"device {d.name}")
        elif not d.allow_remote and not is_loopback(d.modbus.host):
            problems.append(((*at, "modbus", "host"), f"{d.modbus.host} is not a loopback address"))
        if d.bus is not None and d.bus not in ctx.buses:
            problems.append(((*at, "bus"), f"bus {d.bus} does not exist on feeder {scn.grid.feeder} "
                                           f"({feeder.describe('bus')})"))
        kind_check = getattr(module(d.kind), "check", None)
        if kind_check is not None:
            problems += kind_check(ctx, d, at)
        for key, (_, owners) in LIMIT_KEYS.items():
            if getattr(d.limits, key) is not None and d.kind not in owners:
                problems.append(((*at, "limits", key), f"is a limit of kind {owners_text(owners)}, not of {d.kind}"))
        problems += _map_problems(d, at, base_dir)
        for j, a in enumerate(d.wire):
            if a.at >= scn.clock.duration:
                problems.append(((*at, "wire", j, "at"), f"starts after the end of the run ({scn.clock.duration:g} s)"))
    if scn.grid_server is not None:
        s = scn.grid_server
        endpoint(("grid_server",), s.host, s.port, s.allow_remote, "the grid server")
        for j, line in enumerate(s.breakers):
            if line not in ctx.lines:
                problems.append((("grid_server", "breakers", j), f"line {line} does not exist on feeder "
                                                                 f"{scn.grid.feeder} ({feeder.describe('line')})"))
        known = scada_setpoints(scn.generators)
        for j, name in enumerate(s.setpoints or []):
            if name not in known:
                problems.append((("grid_server", "setpoints", j), f"{name!r} is no generator setpoint of this "
                                                                  f"scenario (expected one of {', '.join(known[:6])}"
                                                                  f"{', ...' if len(known) > 6 else ''})"))
    return problems


def _map_problems(d: Device, at: tuple, base_dir: Path) -> Problems:
    path = map_path(d, base_dir)
    if not path.is_file():
        return [((*at, "map"), f"register map {path} does not exist (relative paths start at the scenario's folder)")]
    try:
        regmap = cached_map(path)
    except RegisterMapError as exc:
        return [((*at, "map"), str(exc))]
    out = []
    for key in ("writable", "points"):
        for j, name in enumerate(getattr(d, key, None) or []):
            if name not in regmap:
                out.append(((*at, key, j), f"point {name!r} is not in {path.name}"))
            elif key == "writable" and not regmap[name].writable:
                out.append(((*at, key, j), f"point {name!r} is read-only in {path.name}"))
    for j, a in enumerate(d.wire):
        if hasattr(a, "point") and a.point not in regmap:
            out.append(((*at, "wire", j, "point"), f"point {a.point!r} is not in {path.name}"))
    return out
