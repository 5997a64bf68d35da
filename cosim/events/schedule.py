"""Events resolved against one grid and clock: step interval, path (physical / measurement / command), targets.

`resolve` turns one scenario entry into a `ScheduledEvent` or raises `EventProblem` naming the
key at fault; `conflict` says why two events cannot overlap. A `Schedule` answers what is
active at a step and the ground-truth labels of that step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cosim.events.targets import Catalog, TargetError, is_command_target
from cosim.scenario.schema import (PHYSICAL_KINDS, Clock, CloudTransient, DGTrip, FDIStealthy, LineOutage, LoadStep,
                                   Replay, TimestampSkew, TrafoOutage, _Event)
from cosim.scenario.units import format_duration

PHYSICAL, MEASUREMENT, COMMAND = "physical", "measurement", "command"


class EventProblem(ValueError):
    """An event that cannot run: `key` is the offending key inside the entry ('' for the entry)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key, self.message = key, message


@dataclass(frozen=True)
class ScheduledEvent:
    """One event on the step grid: active for steps start <= k < end."""

    spec: _Event
    path: str
    start: int
    end: int
    targets: tuple[str, ...]
    origin: tuple = ()  # where it came from in the scenario, e.g. ('events', 3)
    id: int = 0

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def is_attack(self) -> bool:
        return self.path != PHYSICAL

    def active(self, k: int) -> bool:
        return self.start <= k < self.end

    @property
    def target_text(self) -> str:
        """The target as the scenario wrote it (wildcards kept)."""
        s = self.spec
        if isinstance(s, LineOutage):
            return f"line.{s.line}"
        if isinstance(s, TrafoOutage):
            return f"trafo.{s.trafo}"
        if isinstance(s, (DGTrip, CloudTransient)):
            return s.generator
        if isinstance(s, LoadStep):
            return " ".join(self.targets)
        if isinstance(s, FDIStealthy):
            return "buses " + ",".join(map(str, s.buses))
        target = s.target  # type: ignore[attr-defined]
        return target if isinstance(target, str) else " ".join(target)

    def describe(self) -> str:
        """e.g. 'events[2] (fdi from 13h for 20min)'."""
        where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(self.origin))
        return f"{where} ({self.kind} from {format_duration(self.spec.at)} for {format_duration(self.spec.duration)})"


def path_of(spec: _Event) -> str:
    """Which path an event acts on; delay and drop go to commands when their target says `commands`."""
    if spec.kind in PHYSICAL_KINDS:
        return PHYSICAL
    if spec.kind.startswith("command_"):
        return COMMAND
    if spec.kind in ("delay", "drop") and is_command_target(spec.target):  # type: ignore[attr-defined]
        return COMMAND
    return MEASUREMENT


def whole_steps(seconds: float, step: float, key: str, what: str) -> int:
    """`seconds` as a number of steps; an EventProblem if it is not a whole number."""
    if seconds % step:
        raise EventProblem(key, f"{what} {format_duration(seconds)} is not a whole number of steps "
                                f"(the step is {format_duration(step)})")
    return int(seconds // step)


def resolve(spec: _Event, cat: Catalog, clock: Clock, metered: tuple[str, ...] = (), origin: tuple = ()) -> ScheduledEvent:
    """Place `spec` on the step grid and resolve its targets; raise EventProblem when it cannot run."""
    horizon = clock.duration
    if spec.at >= horizon:
        raise EventProblem("at", f"starts at {format_duration(spec.at)}, at or after the end of the run "
                                 f"({format_duration(horizon)})")
    if spec.at + spec.duration > horizon:
        raise EventProblem("duration", f"ends at {format_duration(spec.at + spec.duration)}, after the end of the run "
                                       f"({format_duration(horizon)}); shorten it to at most "
                                       f"{format_duration(horizon - spec.at)}")
    start = whole_steps(spec.at, clock.step, "at", "start time")
    end = start + whole_steps(spec.duration, clock.step, "duration", "duration")
    if isinstance(spec, Replay) and spec.window > spec.at:
        raise EventProblem("window", f"the replayed window of {format_duration(spec.window)} would begin before the "
                                     f"run starts (the attack starts at {format_duration(spec.at)})")
    if isinstance(spec, Replay):
        whole_steps(spec.window, clock.step, "window", "window")
    if isinstance(spec, TimestampSkew):
        whole_steps(spec.skew, clock.step, "skew", "skew")
    path = path_of(spec)
    return ScheduledEvent(spec, path, start, end, _targets(spec, path, cat, metered), origin)


def _targets(spec: _Event, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[str, ...]:
    try:
        if isinstance(spec, LineOutage):
            if spec.line not in cat.lines:
                raise EventProblem("line", f"line {spec.line} does not exist ({_span('line', list(cat.lines))})")
            if not cat.lines[spec.line]:
                raise EventProblem("line", f"line {spec.line} is normally open (out of service in the base case); "
                                           "an outage would change nothing")
            return (f"line.{spec.line}",)
        if isinstance(spec, TrafoOutage):
            if spec.trafo not in cat.trafos:
                raise EventProblem("trafo", f"trafo {spec.trafo} does not exist ({_span('trafo', list(cat.trafos))})")
            return (f"trafo.{spec.trafo}",)
        if isinstance(spec, DGTrip):
            return cat.match_generators(spec.generator)
        if isinstance(spec, CloudTransient):
            found = [g for g in cat.match_generators(spec.generator) if cat.generators[g].kind == "pv"]
            if not found:
                raise EventProblem("generator", f"no PV generator matches {spec.generator!r}; a cloud acts on PV only")
            return tuple(found)
        if isinstance(spec, LoadStep):
            buses = [spec.bus] if isinstance(spec.bus, int) else spec.bus
            for b in buses:
                if b not in cat.buses:
                    raise EventProblem("bus", f"bus {b} does not exist ({_span('bus', list(cat.buses))})")
                if b not in cat.load_buses:
                    raise EventProblem("bus", f"bus {b} has no load to step")
            return tuple(f"bus.{b}" for b in buses)
        if isinstance(spec, FDIStealthy):
            for b in spec.buses:
                if b not in cat.buses:
                    raise EventProblem("buses", f"bus {b} does not exist ({_span('bus', list(cat.buses))})")
                if b == cat.slack_bus:
                    raise EventProblem("buses", f"bus {b} is the slack bus: its injection balances the feeder "
                                                "and cannot be faked consistently")
            return metered
        target = spec.target  # type: ignore[attr-defined]
        return cat.match_setpoints(target) if path == COMMAND else cat.match_signals(target)
    except TargetError as exc:
        key = "generator" if isinstance(spec, (DGTrip, CloudTransient)) else "target"
        raise EventProblem(key, str(exc)) from None


def _span(what: str, labels: list[int]) -> str:
    if not labels:
        return f"the feeder has no {what}s"
    return f"{what}s are numbered {min(labels)}..{max(labels)}"


def conflict(a: ScheduledEvent, b: ScheduledEvent) -> str | None:
    """Why `b` may not overlap `a` (None if it may): attacks on one signal or setpoint, or the same
    physical disruption twice on one element, cannot be active together."""
    if a.path != b.path or a.end <= b.start or b.end <= a.start:
        return None
    if a.path == PHYSICAL and a.kind != b.kind:
        return None
    shared = [t for t in a.targets if t in set(b.targets)]
    if not shared:
        return None
    more = f" (and {len(shared) - 1} more)" if len(shared) > 1 else ""
    what = {PHYSICAL: f"two {a.kind} events on the same element", MEASUREMENT: "two attacks on the same signal",
            COMMAND: "two attacks on the same setpoint"}[a.path]
    return f"overlaps {a.describe()} on {shared[0]}{more}: {what} cannot be active at the same time"


@dataclass(frozen=True)
class Labels:
    """Ground truth of one step."""

    attack: bool
    disruption: bool
    kind: str
    event: str

    def signals(self) -> dict[str, object]:
        return {"label.attack": float(self.attack), "label.disruption": float(self.disruption),
                "label.kind": self.kind, "label.event": self.event}


@dataclass(frozen=True)
class Schedule:
    """All events of a run, numbered 1.. in order of start."""

    events: tuple[ScheduledEvent, ...] = ()
    step_s: float = 1.0
    _labels: dict = field(default_factory=dict, compare=False, repr=False)

    def on(self, path: str) -> list[ScheduledEvent]:
        """The events acting on one path."""
        return [e for e in self.events if e.path == path]

    def active(self, k: int) -> tuple[ScheduledEvent, ...]:
        return tuple(e for e in self.events if e.active(k))

    def labels(self, k: int) -> Labels:
        """Labels of step k: attack / disruption flags, active kinds and event ids ('+'-joined)."""
        act = self.active(k)
        ids = tuple(e.id for e in act)
        if ids not in self._labels:
            self._labels[ids] = Labels(any(e.is_attack for e in act), any(not e.is_attack for e in act),
                                       "+".join(sorted({e.kind for e in act})), "+".join(map(str, ids)))
        return self._labels[ids]
