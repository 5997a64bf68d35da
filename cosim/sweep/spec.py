"""Sweep files: the schema, the checks before anything runs, and the matrix of runs they name.

A sweep file names scenarios, seeds, controllers and optional overrides (dotted scenario keys,
each with a list of values); the runs are their cartesian product. Paths (scenario files,
controller files) are tried against the sweep file's folder first, then the working directory.
Everything that keeps the sweep from running is one `SweepError`, one paragraph per problem.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from controllers.base import ControllerError
from controllers.plugin import split_target
from controllers.registry import parse_spec
from cosim.scenario.base import Strict
from cosim.scenario.errors import Problem, ScenarioError, field_path
from cosim.scenario.schema_errors import schema_problems
from cosim.scenario.loader import LoadedScenario, load_scenario
from cosim.scenario.yamlpos import YamlSyntaxError, line_for, load_yaml_with_lines
from cosim.sweep.overrides import OverrideError, key_problem, overridden
from cosim.validation import validate


class SweepError(Exception):
    """A sweep that cannot run; `str()` is one paragraph per problem, ready for a terminal."""


class SweepFile(Strict):
    """The keys of a sweep file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    scenarios: list[str] = Field(description="scenario files")
    seeds: list[int] = Field(description="each run's scenario seed")
    controllers: list[str] = Field(description="controller SPECs, as for `cosim regress --controller`")
    overrides: dict[str, list[Any]] = Field(default_factory=dict, description="dotted scenario key -> values")

    @field_validator("scenarios", "seeds", "controllers")
    @classmethod
    def _an_axis(cls, v: list) -> list:
        if not v:
            raise ValueError("the matrix is empty: list at least one value")
        return v

    @field_validator("overrides")
    @classmethod
    def _not_empty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, values in v.items() if not values]
        if empty:
            raise ValueError(f"every override needs at least one value ({', '.join(empty)} has none)")
        return v


@dataclass(frozen=True)
class RunTask:
    """One run of the matrix: a scenario file with a seed, a controller and override values."""

    run_id: str
    scenario: str
    path: str
    seed: int
    controller: str
    block: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """What decides the run's results (stored beside them, compared by --resume)."""
        return {"scenario": self.scenario, "path": self.path, "seed": self.seed, "controller": self.controller,
                "block": self.block, "overrides": self.overrides}


@dataclass
class Sweep:
    """A checked sweep file and its runs, in matrix order (scenario, overrides, controller, seed)."""

    path: Path
    name: str
    override_keys: list[str]
    tasks: list[RunTask]


def run_id(scenario: str, controller: str, seed: int, params: dict[str, Any]) -> str:
    """A readable folder name, unique through a digest of everything that decides the run."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", controller).strip("_")[:40] or "controller"
    return f"{scenario}-{slug}-seed{seed}-{digest}"


def _resolve(text: str, folders: list[Path]) -> Path | None:
    """The first existing file of `text` against `folders` (an absolute path stands alone)."""
    p = Path(text).expanduser()
    candidates = [p] if p.is_absolute() else [f / p for f in folders]
    return next((c.resolve() for c in candidates if c.exists()), None)


def _controller(spec: str, folders: list[Path]):
    """The controller block of a SPEC, its file found against `folders` (the first one if it exists nowhere)."""
    block = parse_spec(spec, folders[0])
    for folder in folders[1:]:
        target = block.policy or (split_target(block.path)[0] if block.path else None)
        if target is None or Path(target).exists():
            break
        block = parse_spec(spec, folder)
    return block


def _read(path: Path) -> tuple[dict, dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError(f"{path}: sweep file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: cannot read the sweep file: {exc}") from None
    try:
        data, lines = load_yaml_with_lines(text)
    except YamlSyntaxError as exc:
        raise SweepError(str(ScenarioError(path, [Problem("", exc.message, exc.line)]))) from None
    if not isinstance(data, dict):
        raise SweepError(f"{path}, line 1: expected a mapping with name, scenarios, seeds, controllers "
                         "and optionally overrides")
    return data, lines


def _schema(path: Path, data: dict, lines: dict) -> SweepFile:
    try:
        return SweepFile.model_validate(data)
    except ValidationError as exc:
        raise SweepError(str(ScenarioError(path, schema_problems(SweepFile, data, exc, lines)))) from None


def load_sweep(path: Path, cwd: Path | None = None) -> Sweep:
    """Read and check a sweep file, its scenarios, controllers and overrides; raise SweepError on bad input."""
    path = Path(path)
    folders = [path.resolve().parent, (cwd or Path.cwd()).resolve()]
    data, lines = _read(path)
    spec = _schema(path, data, lines)
    problems: list[Problem] = []
    errors: list[str] = []

    def add(loc: tuple, message: str) -> None:
        problems.append(Problem(field_path(loc), message, line_for(lines, loc)))

    scenarios: list[LoadedScenario] = []
    names: dict[str, str] = {}
    for i, text in enumerate(spec.scenarios):
        file = _resolve(text, folders)
        if file is None:
            add(("scenarios", i), f"scenario file {text!r} not found (tried {' and '.join(str(f / text) for f in folders)})")
            continue
        try:
            loaded = load_scenario(file)
        except ScenarioError as exc:
            errors.append(str(exc))
            continue
        name = loaded.scenario.name
        if name in names:
            add(("scenarios", i), f"scenario name {name!r} is also used by {names[name]}; summary rows need unique names")
            continue
        names[name] = str(file)
        scenarios.append(loaded)
    blocks = {}
    for i, text in enumerate(spec.controllers):
        try:
            blocks[text] = _controller(text, folders)
        except ControllerError as exc:
            add(("controllers", i), str(exc))
    for key in spec.overrides:
        why = key_problem(key)
        if why is not None:
            add(("overrides", key), f"override key {key!r} names no scenario field: {why}")
    if not problems and not errors:
        problems += _check_cases(scenarios, spec, blocks)
    if problems or errors:
        text = str(ScenarioError(path, sorted(problems, key=lambda p: p.line or 0))) if problems else ""
        raise SweepError("\n".join([t for t in [text] if t] + errors))
    keys = list(spec.overrides)
    combos = [dict(zip(keys, values)) for values in itertools.product(*spec.overrides.values())]
    tasks = []
    for loaded, combo, controller, seed in itertools.product(scenarios, combos, spec.controllers, spec.seeds):
        block = blocks[controller].model_dump()
        params = {"path": str(loaded.path), "seed": seed, "block": block, "overrides": combo}
        tasks.append(RunTask(run_id(loaded.scenario.name, controller, seed, params), loaded.scenario.name,
                             str(loaded.path), seed, controller, block, combo))
    return Sweep(path, spec.name, keys, tasks)


def _check_cases(scenarios: list[LoadedScenario], spec: SweepFile, blocks: dict) -> list[Problem]:
    """Every override combination must give a valid scenario, and every controller must run on each scenario."""
    problems = []
    keys = list(spec.overrides)
    for loaded in scenarios:
        for values in itertools.product(*spec.overrides.values()):
            combo = dict(zip(keys, values))
            try:
                overridden(loaded, combo)
            except OverrideError as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in combo.items())
                problems.append(Problem("overrides", f"scenario {loaded.path} with {shown}: {exc}"))
        for text, block in blocks.items():
            loaded.scenario.controller = block
            try:
                validate(loaded)
            except ScenarioError as exc:
                reasons = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in exc.problems)
                problems.append(Problem("controllers", f"controller {text!r} on scenario {loaded.path}: {reasons}"))
    return problems
