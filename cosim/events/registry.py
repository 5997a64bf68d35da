"""The catalogue of event kinds: each kind is one module under `cosim.events.kinds` that registers a `Kind`.

A `Kind` carries everything about one kind in one place: its scenario model, the path(s) it acts
on, how its targets resolve and read back, extra timing checks, its random parameters and when
they cannot be drawn, and its transform (a contribution to the grid's `Disruptions`, a
measurement `Attack` or a `CommandAttack`). The schema's event union, the kind lists and the
shared machinery (schedule, physical, randomize, measurement, commands) all ask this registry,
so adding a kind adds one module and touches no shared code.

This module imports neither the schema nor the grid: the schema imports the kinds, which import this.
"""

from __future__ import annotations

import importlib
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

import numpy as np

from cosim import signals as sig
from cosim.events.base import COMMAND, MEASUREMENT, PATHS, PHYSICAL, WIRE, _Event

if TYPE_CHECKING:
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS
    from cosim.events.commands import CommandAttack
    from cosim.events.measurement import Attack
    from cosim.events.schedule import ScheduledEvent
    from cosim.events.targets import Catalog
    from cosim.grid.model import DER
    from cosim.scenario.schema import Clock
    from hil.wire_events import WireNames

_KINDS: dict[str, "Kind"] = {}


class UnknownKind(KeyError):
    """A kind name the registry does not know (or that cannot do what was asked of it)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Draw:
    """What one random event's parameters are drawn from: the seeded stream, the grid's names and the
    event's place; `sign` (+1 or -1) is drawn before any kind-specific value, for every kind. `only` (the
    entry's `buses`) narrows the buses, bus voltages and load buses a kind may pick."""

    rng: np.random.Generator
    cat: "Catalog"
    step: float
    at: float
    duration: float
    sign: float
    only: frozenset[int] | None = None

    def pick(self, seq: typing.Sequence) -> typing.Any:
        """One element of `seq`, uniformly (one integer draw)."""
        return seq[int(self.rng.integers(len(seq)))]

    @property
    def voltages(self) -> list[str]:
        """Bus voltage signals other than the slack bus's."""
        buses = {sig.bus(b) for b in self.buses}
        return [s for s in self.cat.signals if s in buses]

    @property
    def buses(self) -> list[int]:
        """Bus numbers other than the slack bus."""
        return [b for b in self.cat.buses if b != self.cat.slack_bus and (self.only is None or b in self.only)]

    @property
    def load_buses(self) -> list[int]:
        """Buses with a load, in bus order."""
        return sorted(b for b in self.cat.load_buses if self.only is None or b in self.only)

    @property
    def ders(self) -> list["DER"]:
        """The scenario's generators, in scenario order."""
        return list(self.cat.generators.values())


class Kind:
    """One event kind. Subclass `PhysicalKind`, `MeasurementKind` or `CommandKind`, set `model` and
    `rank`, override what the kind needs, and decorate the class with `@register`."""

    model: ClassVar[type[_Event]]
    rank: ClassVar[int]  # position in the kind lists, the event union and error messages
    paths: ClassVar[tuple[str, ...]]  # the paths it can act on; the first is where it acts by default
    target_key: ClassVar[str] = "target"  # the key a target that matches nothing is reported on
    needs_meters: ClassVar[bool] = False  # the grid must publish the measurement model's signals
    first_random_step: ClassVar[int] = 0  # the earliest step a random event of this kind may start at
    wire_paths: ClassVar[tuple[str, ...]] = ()  # paths on which targets that are a device's travel on its wire

    @property
    def name(self) -> str:
        """The `kind:` value, taken from the model's `kind` Literal."""
        return typing.get_args(self.model.model_fields["kind"].annotation)[0]

    @property
    def randomizable(self) -> bool:
        """Whether random schedules can draw this kind (it defines `random_params`)."""
        return type(self).random_params is not Kind.random_params

    def path(self, spec: _Event) -> str:
        """The path this event acts on."""
        return self.paths[0]

    def check(self, spec: _Event, clock: "Clock") -> None:
        """Kind-specific timing checks on the step grid; raise EventProblem (default: none)."""

    def targets(self, spec: _Event, path: str, cat: "Catalog", metered: tuple[str, ...]) -> tuple[str, ...]:
        """The names the event acts on; raise EventProblem or TargetError (reported on `target_key`)."""
        target = spec.target  # type: ignore[attr-defined]
        return cat.match_setpoints(target) if path == COMMAND else cat.match_signals(target)

    def target_text(self, event: "ScheduledEvent") -> str:
        """The target as the scenario wrote it (wildcards kept), for events.csv and reports."""
        target = event.spec.target  # type: ignore[attr-defined]
        return target if isinstance(target, str) else " ".join(target)

    def unusable(self, cat: "Catalog") -> str | None:
        """Why random events of this kind cannot be made on this grid (None if they can)."""
        return None

    def random_params(self, draw: Draw) -> dict:
        """The kind-specific keys of one random event; the draws' order is part of the seeded result."""
        raise UnknownKind(f"random schedules cannot generate {self.name} events: the kind draws no random parameters")

    def disrupt(self, event: "ScheduledEvent") -> dict[str, tuple]:
        """Physical kinds: this event's share of the grid's `Disruptions`, by field name."""
        raise ValueError(f"{self.name} is not a physical disruption")

    def measurement_attack(self, event: "ScheduledEvent", rng: np.random.Generator, step_s: float,
                           estimator: "WLS | None", topology_at: "Callable[[int], Topology] | None") -> "Attack":
        """Measurement-path kinds: the transform of this event."""
        raise ValueError(f"{self.name} is not a measurement-path attack")

    def command_attack(self, event: "ScheduledEvent", rng: np.random.Generator) -> "CommandAttack":
        """Command-path kinds: the transform of this event."""
        raise ValueError(f"{self.name} is not a command-path attack")

    def wire(self, event: "ScheduledEvent", names: "WireNames", step_s: float) -> list[tuple[str, object]]:
        """Kinds with `wire_paths`: the event as attacks on device wires, (device, `Wire*` spec of
        cosim.scenario.devices) pairs; raise EventProblem for a setting the wire cannot carry."""
        raise ValueError(f"{self.name} cannot travel on a device's wire")


class PhysicalKind(Kind):
    """A disruption of the grid itself (outages, trips, load and weather changes)."""

    paths = (PHYSICAL,)

    def target_text(self, event: "ScheduledEvent") -> str:
        """The resolved element names."""
        return " ".join(event.targets)


class MeasurementKind(Kind):
    """An attack on what the controller and the detector see."""

    paths = (MEASUREMENT,)


class CommandKind(Kind):
    """An attack on the setpoints between the controller and the devices."""

    paths = (COMMAND,)


_TRANSFORMS = {PHYSICAL: "disrupt", MEASUREMENT: "measurement_attack", COMMAND: "command_attack", WIRE: "wire"}


def register(cls: type[Kind]) -> type[Kind]:
    """Class decorator: add a kind to the catalogue, checking it is complete and not a duplicate."""
    kind = cls()
    name = kind.name
    if name in _KINDS or name == "random":
        raise TypeError(f"event kind {name!r} is registered twice ({cls.__module__})")
    if not kind.paths or any(p not in PATHS for p in kind.paths):
        raise TypeError(f"event kind {name!r}: paths must be some of {PATHS}, got {kind.paths}")
    for path in kind.paths:
        method = _TRANSFORMS[path]
        if getattr(cls, method) is getattr(Kind, method):
            raise TypeError(f"event kind {name!r} acts on the {path} path but defines no {method}")
    if kind.wire_paths and cls.wire is Kind.wire:
        raise TypeError(f"event kind {name!r} travels on the wire ({kind.wire_paths}) but defines no wire")
    clash = next((k for k in _KINDS.values() if k.rank == kind.rank), None)
    if clash is not None:
        raise TypeError(f"event kinds {clash.name!r} and {name!r} have the same rank {kind.rank}")
    _KINDS[name] = kind
    return cls


def unregister(name: str) -> None:
    """Remove a kind (for tests that register a throw-away kind)."""
    _KINDS.pop(name, None)


def _loaded() -> dict[str, Kind]:
    importlib.import_module("cosim.events.kinds")  # registers every kind module once
    return _KINDS


def all_kinds() -> tuple[Kind, ...]:
    """Every registered kind, by rank."""
    return tuple(sorted(_loaded().values(), key=lambda k: k.rank))


def kinds_on(path: str) -> tuple[str, ...]:
    """Names of the kinds that can act on `path`: those at home there first, then the others, by rank."""
    return tuple(k.name for k in sorted((k for k in all_kinds() if path in k.paths),
                                        key=lambda k: (k.paths[0] != path, k.rank)))


def kind_of(spec_or_name: _Event | str) -> Kind:
    """The registered kind of an event (or of a kind name); UnknownKind if there is none."""
    name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.kind  # type: ignore[attr-defined]
    kinds = _loaded()
    if name not in kinds:
        raise UnknownKind(f"unknown event kind {name!r}; known kinds: {', '.join(k.name for k in all_kinds())}")
    return kinds[name]
