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
from cosim.scenario.errors import Problem, ScenarioError, field_path
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
    if not any(p.field.startswith("generators") for p in problems):
        problems += event_problems(scn, feeder, lines)
        if scn.devices:  # the device kinds' checks live with the kinds, under hil
            from hil.checks import device_problems

            for path, message in device_problems(scn, feeder, base_dir):
                add(path, message)
    return problems


def load_scenario(path: str | Path) -> LoadedScenario:
    """Parse and check a scenario file; raise ScenarioError naming file, line and field on bad input."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(path, [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, [Problem("", f"cannot read the file: {exc}")]) from None
    try:
        data, lines = load_yaml_with_lines(text)
    except YamlSyntaxError as exc:
        raise ScenarioError(path, [Problem("", exc.message, exc.line)]) from None
    if not isinstance(data, dict):
        raise ScenarioError(path, [Problem("", "expected a mapping of keys (name, seed, clock, grid, ...) at the top level", 1)])
    try:
        scn = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = sorted(schema_problems(Scenario, data, exc, lines), key=lambda p: (p.line or 0))
        raise ScenarioError(path, problems) from None
    base_dir = path.resolve().parent
    try:
        feeder = load_feeder(scn.grid.feeder, base_dir)
    except FeederError as exc:
        raise ScenarioError(path, [Problem("grid.feeder", str(exc), line_for(lines, ("grid", "feeder")))]) from None
    problems = _feeder_problems(scn, feeder, base_dir, lines)
    if problems:
        raise ScenarioError(path, sorted(problems, key=lambda p: (p.line or 0)))
    return LoadedScenario(scn, path, base_dir, lines, feeder)
