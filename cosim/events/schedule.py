"""Events resolved against one grid and clock: step interval, path (physical / measurement / command), targets.

`resolve` turns one scenario entry into a `ScheduledEvent` or raises `EventProblem` naming the
key at fault; `conflict` says why two events cannot overlap. A `Schedule` answers what is
active at a step and the ground-truth labels of that step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cosim.events.base import COMMAND, MEASUREMENT, PHYSICAL, WIRE, EventProblem, TargetError, _Event, whole_steps
from cosim.events.registry import Kind, all_kinds, kind_of
from cosim.events.targets import Catalog
from cosim.scenario.schema import Clock
from cosim.scenario.units import format_duration
from cosim.signals import MESSAGE


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
    wire: tuple[str, ...] = ()  # the devices (or `grid_server`) whose Modbus connection carries it; () = simulated

    @property
    def kind(self) -> str:
        """The `kind:` of the scenario entry."""
        return self.spec.kind

    @property
    def is_attack(self) -> bool:
        """Measurement and command events are attacks; physical ones are disruptions."""
        return self.path != PHYSICAL

    @property
    def on_messages(self) -> bool:
        """Whether it hits agent-to-agent messages (`msg.*`), which travel in the controller, not the channel."""
        return bool(self.targets) and all(t.startswith(MESSAGE) for t in self.targets)

    def active(self, k: int) -> bool:
        """Whether the event is in force at step k."""
        return self.start <= k < self.end

    @property
    def target_text(self) -> str:
        """The target as the scenario wrote it (wildcards kept)."""
        return kind_of(self.spec).target_text(self)

    def describe(self) -> str:
        """e.g. 'events[2] (fdi from 13h for 20min)'."""
        where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(self.origin))
        return f"{where} ({self.kind} from {format_duration(self.spec.at)} for {format_duration(self.spec.duration)})"


def resolve(spec: _Event, cat: Catalog, clock: Clock, metered: tuple[str, ...] = (), origin: tuple = ()) -> ScheduledEvent:
    """Place `spec` on the step grid, run its kind's checks and resolve its targets; raise EventProblem
    naming the key at fault when it cannot run."""
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
    kind = kind_of(spec)
    kind.check(spec, clock)
    path = kind.path(spec)
    try:
        targets, wire = _route(kind, spec, path, cat, metered)
    except TargetError as exc:
        raise EventProblem(kind.target_key, str(exc)) from None
    event = ScheduledEvent(spec, path, start, end, targets, origin, wire=wire)
    if wire:
        kind.wire(event, cat.wire, clock.step)  # raises EventProblem for a setting the wire cannot carry
    return event


def _route(kind: Kind, spec: _Event, path: str, cat: Catalog, metered: tuple[str, ...]) -> tuple[tuple, tuple]:
    """(targets, devices whose wire carries the event): an event whose every target is a device's travels on the
    device's wire; one whose targets are the grid's on the simulated channel; a mix of both is a TargetError."""
    if path == WIRE:
        targets = kind.targets(spec, path, cat, metered)
        return targets, targets
    routed = None
    if cat.wire is not None and hasattr(spec, "target") and (path == MEASUREMENT or path in kind.wire_paths):
        routed = cat.device_targets(spec.target, path)
    if routed is None:
        targets = kind.targets(spec, path, cat, metered)
        talk = [t.startswith(MESSAGE) for t in targets]
        if any(talk) and (path != MEASUREMENT or not all(talk)):
            raise TargetError(f"{targets[talk.index(True)]} is an agent-to-agent message, which only a measurement "
                              "event (delay, drop, fdi, ...) whose every target is a message can hit; split it "
                              "into two events")
        return targets, ()
    if path not in kind.wire_paths:
        able = [k.name for k in all_kinds() if path in k.wire_paths]
        raise TargetError(f"{kind.name} cannot act on a device's Modbus wire ({routed[0][0]} is device "
                          f"{routed[1][0]}'s); kinds that can: {', '.join(able)}")
    return routed



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
            COMMAND: "two attacks on the same setpoint", WIRE: f"two {a.kind} events on the same target"}[a.path]
    return f"overlaps {a.describe()} on {shared[0]}{more}: {what} cannot be active at the same time"


@dataclass(frozen=True)
class Labels:
    """Ground truth of one step."""

    attack: bool
    disruption: bool
    kind: str
    event: str

    def signals(self) -> dict[str, object]:
        """The `label.*` signals the recorder writes."""
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
        """The events in force at step k."""
        return tuple(e for e in self.events if e.active(k))

    def labels(self, k: int) -> Labels:
        """Labels of step k: attack / disruption flags, active kinds and event ids ('+'-joined)."""
        act = self.active(k)
        ids = tuple(e.id for e in act)
        if ids not in self._labels:
            self._labels[ids] = Labels(any(e.is_attack for e in act), any(not e.is_attack for e in act),
                                       "+".join(sorted({e.kind for e in act})), "+".join(map(str, ids)))
        return self._labels[ids]
