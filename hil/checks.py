"""Loader checks of the `devices:` and `grid_server:` blocks that need the feeder, the maps and the files.

Each problem is (path in the scenario, message); the loader turns them into `Problem`s with
their line numbers, like every other scenario error.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cosim.grid.feeders import Feeder
from cosim.scenario.schema import Device, Scenario
from hil.devices import cached_map, generator_for, map_path
from hil.registers import RegisterMapError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def device_problems(scn: Scenario, feeder: Feeder, base_dir: Path) -> list[tuple[tuple, str]]:
    """Problems of the `devices:` and `grid_server:` blocks as (path in the scenario, message)."""
    problems: list[tuple[tuple, str]] = []
    buses = set(feeder.bus_labels.tolist())
    lines = set(feeder.line_labels.tolist())
    generators = {g.name for g in scn.generators}
    names: dict[str, int] = {}
    endpoints: dict[tuple[str, int], str] = {}
    acting: dict[str, str] = {}

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
        elif d.name in generators:
            problems.append(((*at, "name"), f"{d.name!r} is already a generator's name; devices need their own names"))
        names.setdefault(d.name, i)
        endpoint((*at, "modbus"), d.modbus.host, d.modbus.port, d.allow_remote, f"device {d.name}")
        needs_bus = d.kind in ("inverter", "capbank", "regulator")
        if d.bus is None and needs_bus and not (d.kind == "inverter" and d.generator):
            problems.append(((*at,), f"missing required key 'bus' (a {d.kind} is fed its bus voltage)"))
        elif d.bus is not None and d.bus not in buses:
            problems.append(((*at, "bus"), f"bus {d.bus} does not exist on feeder {scn.grid.feeder} "
                                           f"({feeder.describe('bus')})"))
        if d.line is not None and d.line not in lines:
            problems.append(((*at, "line"), f"line {d.line} does not exist on feeder {scn.grid.feeder} "
                                            f"({feeder.describe('line')})"))
        if d.kind == "inverter":
            problems += _inverter_problems(scn, d, at, generators, acting)
        for key in ("w_max_lim_pct", "var_pct"):
            if getattr(d.limits, key) is not None and d.kind != "inverter":
                problems.append(((*at, "limits", key), f"is an inverter limit, not one of a {d.kind}"))
        problems += _map_problems(d, at, base_dir)
        for j, a in enumerate(d.wire):
            if a.at >= scn.clock.duration:
                problems.append(((*at, "wire", j, "at"), f"starts after the end of the run ({scn.clock.duration:g} s)"))
    if scn.grid_server is not None:
        s = scn.grid_server
        endpoint(("grid_server",), s.host, s.port, s.allow_remote, "the grid server")
    return problems


def _inverter_problems(scn: Scenario, d: Device, at: tuple, generators: set[str],
                       acting: dict[str, str]) -> list[tuple[tuple, str]]:
    if d.generator is not None and d.generator not in generators:
        known = ", ".join(sorted(generators)) or "none"
        return [((*at, "generator"), f"generator {d.generator!r} does not exist (generators: {known})")]
    g = generator_for(scn, d)
    if g is None:
        at_bus = [x.name for x in scn.generators if x.bus == d.bus]
        why = (f"generators {', '.join(at_bus)} are all at bus {d.bus}; name one with generator: <name>" if at_bus else
               f"no scenario generator is at bus {d.bus}; add one (kind pv) or name it with generator: <name>")
        return [(at, f"an inverter acts for one scenario generator: {why}")]
    out = []
    if d.bus is not None and d.bus != g.bus:
        out.append(((*at, "bus"), f"generator {g.name} is at bus {g.bus}, not {d.bus}"))
    if g.name in acting:
        out.append(((*at, "generator"), f"generator {g.name} already has device {acting[g.name]} acting for it"))
    acting.setdefault(g.name, d.name)
    return out


def _map_problems(d: Device, at: tuple, base_dir: Path) -> list[tuple[tuple, str]]:
    path = map_path(d, base_dir)
    if not path.is_file():
        return [((*at, "map"), f"register map {path} does not exist (relative paths start at the scenario's folder)")]
    try:
        regmap = cached_map(path)
    except RegisterMapError as exc:
        return [((*at, "map"), str(exc))]
    out = []
    for key in ("writable", "points"):
        for j, name in enumerate(getattr(d, key) or []):
            if name not in regmap:
                out.append(((*at, key, j), f"point {name!r} is not in {path.name}"))
            elif key == "writable" and not regmap[name].writable:
                out.append(((*at, key, j), f"point {name!r} is read-only in {path.name}"))
    for j, a in enumerate(d.wire):
        if hasattr(a, "point") and a.point not in regmap:
            out.append(((*at, "wire", j, "point"), f"point {a.point!r} is not in {path.name}"))
    return out
