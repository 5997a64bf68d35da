"""Pydantic validation errors as scenario problems: the path in the YAML document, its line, what was expected.

Shared by every file the testbed reads against a pydantic schema (scenarios, sweeps, controller
specs), so their messages read the same.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from cosim.scenario.errors import Problem, field_path
from cosim.scenario.yamlpos import line_for


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


def _model_at(root: type[BaseModel], data: Any, path: tuple) -> type[BaseModel] | None:
    """The schema model that describes the mapping at `path` (discriminated by its `kind`)."""
    model: type[BaseModel] | None = root
    candidates: list[type[BaseModel]] = [root]
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


def schema_problems(root: type[BaseModel], data: Any, error: ValidationError, lines: dict) -> list[Problem]:
    """One problem per pydantic error of validating `data` as `root`: the YAML path, its line and what was
    expected (unknown keys with a did-you-mean and the allowed keys, missing keys, unknown kinds)."""
    problems = []
    for err in error.errors(include_url=False):
        path = _data_path(data, err["loc"])
        kind, key = err["type"], path[-1] if path else ""
        if kind == "extra_forbidden":
            model = _model_at(root, data, path[:-1])
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
            said = isinstance(got, (dict, list)) or "got " in msg  # the check's own message may show the value
            message = msg if said else f"{msg}, got {got!r}"
        problems.append(Problem(field_path(path), message, line_for(lines, path)))
    return problems
