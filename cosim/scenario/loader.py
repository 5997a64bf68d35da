"""Read a scenario file into a validated `Scenario`, or raise one `ScenarioError` listing every problem.

Three layers: YAML syntax (with line numbers), the schema (types, unknown keys with a
did-you-mean, ranges) and checks that need the feeder (bus numbers, names, files, events,
devices). Loading builds nothing: `cosim.validation.validate` assembles the run and tries
its controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from cosim.events.build import event_problems
from cosim.files import resolve_path
from cosim.grid.feeders import Feeder, FeederError, load_feeder
from cosim.profiles import ProfileError, csv_profile
from cosim.scenario import limits
from cosim.scenario.detector_metering import lift as lift_metering
from cosim.scenario.devices import KINDS
from cosim.scenario.errors import Problem, ScenarioError, field_path
from cosim.scenario.forecast import forecast_problems
from cosim.scenario.schema import Scenario
from cosim.scenario.schema_errors import schema_problems
from cosim.scenario.yamlpos import YamlSyntaxError, line_for, load_yaml_with_lines


@dataclass
class LoadedScenario:
    """A valid scenario with where it came from and its feeder, loaded once."""

    scenario: Scenario
    path: Path
    base_dir: Path
    lines: dict
    feeder: Feeder


def _feeder_problems(scn: Scenario, feeder: Feeder, base_dir: Path, lines: dict) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: tuple, message: str) -> None:
        problems.append(Problem(field_path(path), message, line_for(lines, path)))

    names: dict[str, int] = {}
    for i, g in enumerate(scn.generators):
        if g.name in names:
            add(("generators", i, "name"), f"duplicate generator name {g.name!r} (first used by generators[{names[g.name]}])")
        names.setdefault(g.name, i)
        if g.bus not in feeder.bus_labels:
            add(("generators", i, "bus"), f"bus {g.bus} does not exist on feeder {scn.grid.feeder} ({feeder.describe('bus')})")
    stored: dict[str, int] = {}
    for i, b in enumerate(scn.storage):
        if b.name in names:
            add(("storage", i, "name"), f"storage name {b.name!r} is also the name of generators[{names[b.name]}]")
        elif b.name in stored:
            add(("storage", i, "name"), f"duplicate storage name {b.name!r} (first used by storage[{stored[b.name]}])")
        stored.setdefault(b.name, i)
        if b.bus not in feeder.bus_labels:
            add(("storage", i, "bus"), f"bus {b.bus} does not exist on feeder {scn.grid.feeder} ({feeder.describe('bus')})")
    if scn.loads.profile.startswith("csv:"):
        from cosim.inputs import time_grid

        path = resolve_path(scn.loads.profile[4:], base_dir)
        if not path.is_file():
            add(("loads", "profile"), f"CSV file {path} does not exist (relative paths start at the scenario's folder)")
        else:
            try:
                csv_profile(path, time_grid(scn))
            except ProfileError as exc:
                add(("loads", "profile"), str(exc))
    if not any(p.field.startswith(("generators", "storage")) for p in problems):
        problems += event_problems(scn, feeder, lines, base_dir)
        if scn.devices:  # the device kinds' checks live with the kinds, under hil
            from hil.checks import device_problems

            unreadable = _map_file_problems(scn, base_dir)
            for path, message in unreadable or device_problems(scn, feeder, base_dir):
                add(path, message)
            if not problems:
                for path, message in _stub_arg_problems(scn, base_dir):
                    add(path, message)
    return problems


def _map_file_problems(scn: Scenario, base_dir: Path) -> list[tuple[tuple, str]]:
    """Register maps the scenario names that are too large or not UTF-8 text (the map parser reads text)."""
    from hil.devices import map_path

    found = []
    for i, d in enumerate(scn.devices):
        path = map_path(d, base_dir)
        if d.map is None or not path.is_file():
            continue  # shipped maps are fine; a missing file is reported by the device checks
        too_big = limits.file_size_problem(path.stat().st_size, "register maps")
        if too_big is None:
            try:
                path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                too_big = f"register map {path} is not UTF-8 text (byte {exc.start}): expected a YAML register map"
        if too_big is not None:
            found.append((("devices", i, "map"), too_big))
    return found


def _stub_arg_problems(scn: Scenario, base_dir: Path) -> list[tuple[tuple, str]]:
    """`stub_args` the firmware stub of an emulated device would refuse at start, read with the stub's own parser."""
    import argparse
    import importlib

    from firmware_stubs.cli import build_parser
    from firmware_stubs.device import DeviceStub
    from hil.devices import coupling
    from hil.stubs import stub_command

    found = []
    for i, d in enumerate(scn.devices):
        if not d.emulate:
            continue
        module = importlib.import_module(KINDS[d.kind].stub)
        stub = next(c for c in vars(module).values()
                    if isinstance(c, type) and issubclass(c, DeviceStub) and c.__module__ == module.__name__)
        parser = build_parser(stub)
        parser.exit_on_error = False
        cmd = stub_command(coupling(scn, d, base_dir))
        argv = cmd[cmd.index("-m") + 2:]  # after `python [flags] -m <stub module>`
        try:
            args, unknown = parser.parse_known_args(argv)
        except argparse.ArgumentError as exc:
            found.append((("devices", i, "stub_args"), f"the {d.kind} stub refuses {exc}"))
            continue
        if unknown:
            options = sorted(a.dest for a in parser._actions if a.option_strings and a.dest != "help")
            found.append((("devices", i, "stub_args"), f"the {d.kind} stub has no option {unknown[0].lstrip('-').replace('-', '_')!r} "
                                                       f"(its options: {', '.join(options)})"))
        elif args.tick <= 0:
            found.append((("devices", i, "stub_args", "tick"), f"expected a tick period > 0 s, got {args.tick:g}"))
    return found


def load_scenario(path: str | Path) -> LoadedScenario:
    """Parse and check a scenario file; raise ScenarioError naming file, line and field on bad input."""
    path = Path(path)
    try:
        too_big = limits.file_size_problem(path.stat().st_size)
        if too_big is not None:
            raise ScenarioError(path, [Problem("", too_big)])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(path, [Problem("", "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(path, [Problem("", f"not UTF-8 text (byte {exc.start}): expected a YAML scenario")]) from None
    except OSError as exc:
        raise ScenarioError(path, [Problem("", f"cannot read the file: {exc}")]) from None
    try:
        data, lines = load_yaml_with_lines(text)
    except YamlSyntaxError as exc:
        raise ScenarioError(path, [Problem(field_path(exc.path), exc.message, exc.line)]) from None
    if not isinstance(data, dict):
        raise ScenarioError(path, [Problem("", "expected a mapping of keys (name, seed, clock, grid, ...) at the top level", 1)])
    data, lifted = lift_metering(data, path.resolve().parent, lines)
    if lifted:
        raise ScenarioError(path, lifted)
    try:
        scn = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = sorted(schema_problems(Scenario, data, exc, lines), key=lambda p: (p.line or 0))
        raise ScenarioError(path, problems) from None
    _raise_found(path, lines, limits.criteria_problems(scn) + limits.event_problems(scn)
                 + limits.step_problems(scn, 0, None))
    base_dir = path.resolve().parent
    _raise_found(path, lines, forecast_problems(scn, base_dir))
    feeder = _feeder(scn, base_dir, path, lines)
    _raise_found(path, lines, limits.step_problems(scn, len(feeder.net.load), limits.available_memory()))
    problems = _feeder_problems(scn, feeder, base_dir, lines)
    if problems:
        raise ScenarioError(path, sorted(problems, key=lambda p: (p.line or 0)))
    return LoadedScenario(scn, path, base_dir, lines, feeder)


def _raise_found(path: Path, lines: dict, found: list[tuple[tuple, str]]) -> None:
    """Raise the (path in the scenario, message) problems of a check as one ScenarioError, if any."""
    if found:
        raise ScenarioError(path, [Problem(field_path(at), message, line_for(lines, at)) for at, message in found])


def _feeder(scn: Scenario, base_dir: Path, path: Path, lines: dict) -> Feeder:
    """The scenario's feeder; a JSON file that is not a pandapower network with buses and an external grid is bad input."""
    import pandapower as pp

    where = ("grid", "feeder")
    try:
        feeder = load_feeder(scn.grid.feeder, base_dir)
        net = feeder.net
        shape_ok = isinstance(net, pp.pandapowerNet) and len(net.bus) > 0 and len(net.ext_grid) > 0
    except FeederError as exc:
        raise ScenarioError(path, [Problem("grid.feeder", str(exc), line_for(lines, where))]) from None
    except Exception as exc:  # pandapower reads any JSON; a wrong shape fails on first use, with any error
        shape_ok, detail = False, f" ({type(exc).__name__}: {exc})"
    else:
        detail = ""
    if not shape_ok:
        raise ScenarioError(path, [Problem("grid.feeder", f"{scn.grid.feeder} is not a pandapower network{detail}: "
                                           "expected a file written by pandapower.to_json with a bus table and an "
                                           "external grid (ext_grid)", line_for(lines, where))])
    return feeder
