"""Read a scenario file into a validated `Scenario`, or raise one `ScenarioError` listing every problem.

Three layers: YAML syntax (with line numbers), the schema (types, unknown keys with a
did-you-mean, ranges) and checks that need the feeder (bus numbers, names, files, events,
devices). Loading builds nothing: `cosim.validation.validate` assembles the run and tries
its controller.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cosim.events.build import event_problems
from cosim.grid.feeders import Feeder, FeederError, load_feeder
from cosim.profiles import ProfileError, csv_profile
from cosim.scenario.errors import Problem, ScenarioError, field_path
from cosim.scenario.schema import Scenario
from cosim.scenario.yamlpos import YamlSyntaxError, line_for, load_yaml_with_lines


@dataclass
class LoadedScenario:
    """A valid scenario with where it came from and its feeder, loaded once."""

    scenario: Scenario
    path: Path
    base_dir: Path
    lines: dict
    feeder: Feeder


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic model classes reachable inside a type annotation (list[...], unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _pick(candidates: list[type[BaseModel]], node: Any, default: type[BaseModel] | None) -> type[BaseModel] | None:
    """The model a mapping of a union stands for: by its `kind`, else the one whose required keys it has."""
    if not isinstance(node, dict) or len(candidates) < 2:
        return default
    if "kind" in node:
        return next((c for c in candidates if "kind" in c.model_fields
                     and node["kind"] in typing.get_args(c.model_fields["kind"].annotation)), default)
    return next((c for c in candidates
                 if all(name in node for name, f in c.model_fields.items() if f.is_required())), default)


def _model_at(data: Any, path: tuple) -> type[BaseModel] | None:
    """The schema model that describes the mapping at `path` (discriminated by its `kind`)."""
    model: type[BaseModel] | None = Scenario
    candidates: list[type[BaseModel]] = [Scenario]
    node = data
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            model = _pick(candidates, node, model)
            continue
        if model is None or part not in model.model_fields:
            return None
        candidates = _models_in(model.model_fields[part].annotation)
        node = node.get(part) if isinstance(node, dict) else None
        model = candidates[0] if candidates else None
        if len(candidates) > 1 and isinstance(node, (dict, list)):
            sample = node if isinstance(node, dict) else None
            kind = sample.get("kind") if sample else None
            model = next((c for c in candidates if kind in typing.get_args(c.model_fields["kind"].annotation)), None)
    return _pick(candidates, node, model)


def _data_path(data: Any, loc: tuple) -> tuple:
    """Drop pydantic's union tags from a location so it follows the YAML document."""
    out, node = [], data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and part == node.get("kind"):
            pass  # the union tag of a check on the whole mapping, e.g. ('events', 0, 'fdi')
        elif last or not isinstance(node, dict):
            out.append(part)
            node = None
        # else: a discriminator tag such as 'pv' in generators[0].pv.p_mw, skipped
    return tuple(out)


def _schema_problems(data: Any, error: ValidationError, lines: dict) -> list[Problem]:
    problems = []
    for err in error.errors(include_url=False):
        path = _data_path(data, err["loc"])
        kind, key = err["type"], path[-1] if path else ""
        if kind == "extra_forbidden":
            model = _model_at(data, path[:-1])
            allowed = sorted(model.model_fields) if model else []
            guess = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            message = f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})"
        elif kind == "missing":
            message = f"missing required key {key!r}"
        elif kind == "union_tag_invalid":
            message = f"unknown kind {err['input'].get('kind')!r}: expected one of {err['ctx']['expected_tags']}"
        elif kind == "union_tag_not_found":
            message = "missing required key 'kind'"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            message = msg if isinstance(got, (dict, list)) else f"{msg}, got {got!r}"
        problems.append(Problem(field_path(path), message, line_for(lines, path)))
    return problems


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

        path = Path(scn.loads.profile[4:])
        path = path if path.is_absolute() else base_dir / path
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
        problems = sorted(_schema_problems(data, exc, lines), key=lambda p: (p.line or 0))
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
