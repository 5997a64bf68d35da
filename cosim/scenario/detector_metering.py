"""The detector block's metering keys, `meters: full | realistic | FILE`, `noise_scale` and `model_error`, as
the run's `metering:` block (`cosim.scenario.metering`), which they are shorthand for.

`full` is the `full` preset, `realistic` the `sparse` one (substation V, P, Q, V at the feeder ends,
load pseudo-measurements at 30 %); FILE is a YAML file, relative to the scenario, holding a
`metering:` mapping (meters and sigmas). `noise_scale` makes the channel draw that many times the
sigma the estimator assumes; `model_error` is the block's. The metering is the run's, so the keys
are lifted out of the detector block(s) before validation; with a `metering:` block as well, or two
blocks that disagree, the scenario is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cosim.scenario.errors import Problem, field_path
from cosim.scenario.metering import Sigma
from cosim.scenario.yamlpos import line_for

KEYS = ("meters", "noise_scale", "model_error")
PRESETS = {"full": "full", "realistic": "sparse"}


def lift(data: dict, base_dir: Path, lines: dict) -> tuple[dict, list[Problem]]:
    """`data` with the detector blocks' metering keys moved into a top-level `metering:` mapping, and the
    problems (naming field and line) that keep it from being one."""
    blocks = [("detector",)] if isinstance(data.get("detector"), dict) else []
    blocks += [("detectors", i) for i, d in enumerate(data.get("detectors") or []) if isinstance(d, dict)]
    given = [(where, {k: _block(data, where)[k] for k in KEYS if k in _block(data, where)}) for where in blocks]
    given = [(where, keys) for where, keys in given if keys]
    if not given:
        return data, []
    where, keys = given[0]
    problem = lambda path, msg: [Problem(field_path(path), msg, line_for(lines, path))]  # noqa: E731
    if "metering" in data:
        return data, problem((*where, next(iter(keys))), "the run's meters are given twice: set meters, "
                             "noise_scale and model_error on the detector or a top-level metering: block, not both")
    for other, more in given[1:]:
        if more != keys:
            return data, problem((*other, next(iter(more))), "detectors share one metering: meters, noise_scale "
                                 "and model_error must be the same on every block that sets them (set them on one)")
    metering, problems = _metering(keys, base_dir, lambda key, msg: problem((*where, key), msg))
    out = {**data, "metering": metering}
    for w, _ in given:
        block = {k: v for k, v in _block(data, w).items() if k not in KEYS}
        out = _with_block(out, w, block)
    return out, problems


def _block(data: dict, where: tuple) -> dict:
    return data["detector"] if where == ("detector",) else data["detectors"][where[1]]


def _with_block(data: dict, where: tuple, block: dict) -> dict:
    if where == ("detector",):
        return {**data, "detector": block}
    return {**data, "detectors": [block if i == where[1] else d for i, d in enumerate(data["detectors"])]}


def _metering(keys: dict, base_dir: Path, problem) -> tuple[dict, list[Problem]]:
    """The `metering:` mapping the keys stand for."""
    meters = keys.get("meters", "full")
    if not isinstance(meters, str):
        return {}, problem("meters", f"expected full, realistic or a YAML file of meters and sigmas, got {meters!r}")
    if meters in PRESETS:
        metering: dict[str, Any] = {"preset": PRESETS[meters]}
    else:
        path = base_dir / meters
        try:
            metering = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            return {}, problem("meters", f"expected full, realistic or a readable YAML file of meters and sigmas; "
                                         f"cannot read {path}: {exc}")
        metering = metering.get("metering", metering) if isinstance(metering, dict) else metering
        if not isinstance(metering, dict):
            return {}, problem("meters", f"{path} must hold a metering mapping (preset, voltage, injections, flows, "
                                         "pseudo_loads, sigma; docs/detection.md)")
    if "noise_scale" in keys:
        scale = keys["noise_scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale < 0:
            return {}, problem("noise_scale", f"expected a number >= 0 (the channel's noise over the assumed "
                                              f"sigma), got {scale!r}")
        try:
            sigma = Sigma.model_validate(metering.get("sigma") or {})
        except ValidationError:  # the metering block's own validation names the bad sigma
            sigma = Sigma()
        metering["noise"] = {**(metering.get("noise") or {}),
                             **{cls: scale * getattr(sigma, cls) for cls in ("voltage", "injection", "flow")}}
    if "model_error" in keys:
        metering["model_error"] = keys["model_error"]
    return metering, []
