"""Dotted scenario keys of a sweep's `overrides:`: check them against the scenario schema and apply them.

A key such as `loads.scale`, `grid.voltage_limits` or `generators.0.p_mw` walks the scenario
models (list items by index, free-form mappings such as `controller.params` by any name). An
override is applied to the scenario file's YAML data, which is then validated again, so a
value is checked exactly as if it had been written in the file.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from dataclasses import replace
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from cosim.grid.feeders import FeederError, load_feeder
from cosim.scenario.loader import LoadedScenario
from cosim.scenario.schema import Scenario
from cosim.scenario.schema_errors import schema_problems
from cosim.scenario.yamlpos import load_yaml_with_lines

#: Scenario keys that are axes of the sweep itself, not overrides.
AXES = {"seed": "seeds", "controller": "controllers"}


class OverrideError(ValueError):
    """An override that names nothing in the schema or gives a value the scenario rejects."""


def _shape(annotation: Any) -> tuple[str, Any]:
    """What an annotation holds: ('models', [classes]) | ('list', item) | ('dict', value) | ('value', None)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _shape(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a  # tagged members
                   for a in typing.get_args(annotation) if a is not type(None)]
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if models:
            return "models", models
        return _shape(members[0]) if len(members) == 1 else ("value", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "models", [annotation]
    if origin is list:
        return "list", typing.get_args(annotation)[0]
    if origin is dict:
        return "dict", typing.get_args(annotation)[1]
    return "value", None


def key_problem(key: str) -> str | None:
    """Why a dotted key names no scenario field (None when it does)."""
    parts = key.split(".")
    if parts[0] in AXES:
        return f"{parts[0]!r} is an axis of the sweep: list its values under {AXES[parts[0]]!r}"
    shape: tuple[str, Any] = ("models", [Scenario])
    for i, part in enumerate(parts):
        where = ".".join(parts[:i]) or "the scenario"
        kind, inner = shape
        if kind == "dict":
            shape = _shape(inner)
        elif kind == "list":
            if not part.isdigit():
                return f"{where} is a list: the next part must be an item's index, as in {where}.0"
            shape = _shape(inner)
        elif kind == "models":
            fields = {name: m.model_fields[name].annotation for m in reversed(inner) for name in m.model_fields}
            if part not in fields:
                guess = difflib.get_close_matches(part, list(fields), n=1)
                hint = f"; did you mean {guess[0]!r}?" if guess else ""
                return f"{where} has no key {part!r}{hint} (allowed: {', '.join(sorted(fields))})"
            shape = _shape(fields[part])
        else:
            return f"{where} is a value, not a block: nothing can follow it"
    return None


def _set(data: dict, key: str, value: Any) -> None:
    """Set a dotted key in YAML data, creating missing mappings; list items must exist."""
    node: Any = data
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            index = int(part)
            if index >= len(node):
                raise OverrideError(f"{'.'.join(parts[:i])} has {len(node)} items, so there is no item {index}")
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
        else:
            raise OverrideError(f"{'.'.join(parts[:i])} is not a block in this scenario")


def overridden(loaded: LoadedScenario, overrides: dict[str, Any]) -> LoadedScenario:
    """The loaded scenario with its file's YAML changed by `overrides` and validated again."""
    if not overrides:
        return loaded
    data, _ = load_yaml_with_lines(loaded.path.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    for key, value in overrides.items():
        _set(data, key, value)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{p.field}: {p.message}" for p in schema_problems(Scenario, data, exc, {}))
        raise OverrideError(f"the scenario rejects the value: {reasons}") from None
    feeder = loaded.feeder
    if scenario.grid.feeder != loaded.scenario.grid.feeder:
        try:
            feeder = load_feeder(scenario.grid.feeder, loaded.base_dir)
        except FeederError as exc:
            raise OverrideError(f"grid.feeder: {exc}") from None
    return replace(loaded, scenario=scenario, feeder=feeder)
