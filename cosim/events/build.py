"""Scenario events -> one `Schedule`, and the feeder-aware checks the loader reports as problems.

Explicit entries are resolved in file order, then `random:` entries and the `failures:` models
(`cosim.events.failures`) expand around them; events are numbered 1.. by start time. Every problem names the entry and key at fault.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cosim.detection.checks import metering_problems
from cosim.detection.network import plan_for
from cosim.events.failures import failure_outages
from cosim.events.models import RandomEvents
from cosim.events.base import whole_steps
from cosim.events.randomize import expand
from cosim.events.schedule import EventProblem, Schedule, ScheduledEvent, conflict, resolve
from cosim.events.targets import Catalog, measurement_model
from cosim.grid.feeders import Feeder
from cosim.scenario.errors import Problem, field_path
from cosim.scenario.limits import MAX_EVENTS
from cosim.scenario.schema import Scenario
from cosim.scenario.yamlpos import line_for


def metered_signals(scn: Scenario, feeder: Feeder) -> tuple[str, ...]:
    """Signals in the measurement model (what a stealthy attack rewrites), empty without one."""
    model = measurement_model(scn)
    return tuple(m.name for m in plan_for(model, feeder)) if model is not None else ()


def build_schedule(scn: Scenario, feeder: Feeder,
                   base_dir: Path | None = None) -> tuple[Schedule, list[tuple[tuple, str]]]:
    """The schedule of `scn` and the problems found as (path in the scenario, message); `base_dir` (the scenario's
    folder) finds the register maps of devices whose signals events may target."""
    if not scn.events and scn.failures is None:  # nothing to place: skip naming the grid (RL builds one per day)
        return Schedule((), scn.clock.step), []
    cat = Catalog.of(scn, feeder, base_dir)
    metered = metered_signals(scn, feeder)
    problems: list[tuple[tuple, str]] = []
    placed: list[ScheduledEvent] = []
    randoms = []
    for i, spec in enumerate(scn.events):
        if isinstance(spec, RandomEvents):
            randoms.append((i, spec))
            continue
        try:
            event = resolve(spec, cat, scn.clock, metered, ("events", i))
        except EventProblem as exc:
            problems.append((("events", i, *exc.key.split(".")) if exc.key else ("events", i), exc.message))
            continue
        clash = next((why for e in placed if (why := conflict(e, event))), None)
        if clash:
            problems.append((("events", i), clash))
            continue
        placed.append(event)
    for i, spec in randoms:
        try:
            placed += expand(spec.random, i, scn, cat, metered, placed)
        except EventProblem as exc:
            problems.append((("events", i, *exc.key.split(".")), exc.message))
    if scn.failures is not None:
        try:
            placed += _failures(scn, cat, metered, placed)
        except EventProblem as exc:
            problems.append((("failures", *exc.key.split(".")), exc.message))
        problems += _restoration_problems(scn)
    ordered = sorted(placed, key=lambda e: (e.start, e.origin))
    numbered = tuple(replace(e, id=n + 1) for n, e in enumerate(ordered))
    return Schedule(numbered, scn.clock.step), problems


def _failures(scn: Scenario, cat: Catalog, metered: tuple[str, ...],
              taken: list[ScheduledEvent]) -> list[ScheduledEvent]:
    """The outages the `failures:` models draw, less those that clash with events already scheduled."""
    out: list[ScheduledEvent] = []
    for spec in failure_outages(scn.failures, cat, scn.clock.step, scn.clock.n_steps, scn.seed, MAX_EVENTS):
        event = resolve(spec, cat, scn.clock, metered, ("failures", spec.kind))
        if all(conflict(e, event) is None for e in taken):
            out.append(event)
    return out


def _restoration_problems(scn: Scenario) -> list[tuple[tuple, str]]:
    """A switching time off the step grid; restoration with a detector, whose network model knows outages only."""
    spec = scn.failures.restoration
    if spec is None:
        return []
    problems = []
    try:
        whole_steps(spec.switching_time, scn.clock.step, "switching_time", "switching time")
    except EventProblem as exc:
        problems.append((("failures", "restoration", exc.key), exc.message))
    if measurement_model(scn) is not None:
        problems.append((("failures", "restoration"), "restoration closes tie lines, which the detector's network "
                         "model cannot follow (its breaker status shows outages only); run without a detector "
                         "or without restoration"))
    return problems


def _detector_problems(scn: Scenario, feeder: Feeder) -> list[tuple[tuple, str]]:
    model = measurement_model(scn)
    if model is None:
        return []
    if scn.metering is not None:  # the scenario's metering block has checks of its own
        return metering_problems(scn, feeder, model)
    problems = []
    known = {True: set(feeder.bus_labels.tolist()), False: set(feeder.line_labels.tolist())}
    for name in type(model.measurements).model_fields:
        cfg = getattr(model.measurements, name)
        if cfg is None or cfg.at == "all":
            continue
        what = "line" if name.startswith("line_") else "bus"
        missing = [x for x in cfg.at if x not in known[what == "bus"]]
        if missing:
            problems.append((("detector", "measurements", name, "at"),
                             f"{what} {missing[0]} does not exist on feeder {scn.grid.feeder} "
                             f"({feeder.describe(what)})"))
    if problems:
        return problems
    n_meters = len(plan_for(model, feeder))
    n_states = 2 * len(feeder.bus_labels) - 1
    if n_meters <= n_states:
        problems.append((("detector", "measurements"),
                         f"{n_meters} meters cannot estimate {n_states} states (angles and magnitudes of "
                         f"{len(feeder.bus_labels)} buses): meter more buses or lines"))
    return problems or metering_problems(scn, feeder, model)


def event_problems(scn: Scenario, feeder: Feeder, lines: dict, base_dir: Path | None = None) -> list[Problem]:
    """Loader check: events and detector settings that cannot run on this feeder, with their lines."""
    found = _detector_problems(scn, feeder)
    if not found:
        found += build_schedule(scn, feeder, base_dir)[1]
    return [Problem(field_path(path), message, line_for(lines, path)) for path, message in found]
