"""What events may act on in one scenario: signal, setpoint, line, trafo, bus and generator names.

Targets are matched with shell wildcards (`bus.*.vm_pu`, `pv*`). Command targets may be written
as the setpoint (`pv1.q_set_mvar`) or as the quantity it sets (`pv1.q_mvar`, `pv1.p_mw`), with an
optional `commands.` prefix; `commands` alone means every setpoint.

With devices in the loop, `Catalog.wire` names what their Modbus wires carry (`hil.wire_events`):
the signals they publish (`inv1.p_mw`, wildcards allowed), their register points by exact name
(`inv1.W`) and, for commands, the setpoints they act for (`pv1.p_limit_mw`) and their writable
points (`inv1.VArPct_Ena`). `device_targets` sorts an event's targets between the two.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from controllers.baselines import message_signals
from cosim.detection.models import metering_of
from cosim.events.base import MEASUREMENT, TargetError
from cosim.events.models import RandomEvents
from cosim.events.registry import kind_of
from cosim.grid.feeders import Feeder
from cosim.grid.model import DER, signal_names
from cosim.scenario.schema import Detector, Scenario
from cosim.scenario.storage import storage_units

if TYPE_CHECKING:
    from hil.wire_events import WireNames

SETPOINT_ALIASES = {".q_mvar": ".q_set_mvar", ".p_mw": ".p_limit_mw"}


def measurement_model(scn: Scenario) -> Detector | None:
    """The measurement set the grid must meter: the detector's, or the default one when an event's kind
    needs meters (a stealthy attack rewrites them)."""
    metering = metering_of(scn)
    if metering is not None:
        return metering
    kinds = [name for e in scn.events for name in (e.random.kinds if isinstance(e, RandomEvents) else [e.kind])]
    return Detector() if any(kind_of(name).needs_meters for name in kinds) else None


@dataclass(frozen=True)
class Catalog:
    """The names of one scenario's grid, in publication order."""

    signals: tuple[str, ...]
    setpoints: dict[str, float]  # name -> value in force when no controller has sent one
    lines: dict[int, bool]  # published number -> in service in the base case
    trafos: tuple[int, ...]
    buses: tuple[int, ...]
    load_buses: frozenset[int]
    slack_bus: int
    generators: dict[str, DER]
    wire: "WireNames | None" = None  # what the devices' Modbus wires carry (None: no devices, or no events)
    feeder: Feeder | None = field(default=None, compare=False, repr=False)  # its topology, for attackers' access

    @classmethod
    def of(cls, scn: Scenario, feeder: Feeder, base_dir: Path | None = None) -> "Catalog":
        """Names of `scn` on `feeder` (metering signals included when a measurement model is needed; the devices'
        wire names when events may target them, their maps found from `base_dir`, default the working folder)."""
        net = feeder.net
        ders = [DER(g.name, g.kind, g.bus, g.p_mw, g.rating_mva) for g in scn.generators]
        setpoints = {}
        for d in ders:
            setpoints[f"{d.name}.p_limit_mw"] = d.p_mw  # a limit at nameplate changes nothing
            setpoints[f"{d.name}.q_set_mvar"] = 0.0
        for b in scn.storage:  # batteries idle until told
            setpoints[f"{b.name}.p_set_mw"] = setpoints[f"{b.name}.q_set_mvar"] = 0.0
        label = dict(zip(net.bus.index, feeder.bus_labels.tolist()))
        return cls(
            signals=tuple(signal_names(feeder, ders, measurement_model(scn) is not None, storage_units(scn)))
            + message_signals(scn.controller.kind, [d.name for d in ders]),
            setpoints=setpoints,
            lines=dict(zip(feeder.line_labels.tolist(), net.line.in_service.astype(bool).tolist())),
            trafos=tuple(feeder.trafo_labels.tolist()),
            buses=tuple(feeder.bus_labels.tolist()),
            load_buses=frozenset(label[b] for b in net.load.bus),
            slack_bus=label[net.ext_grid.bus.iloc[0]],
            generators={d.name: d for d in ders},
            wire=_wire_names(scn, base_dir),
            feeder=feeder,
        )

    def device_targets(self, patterns: str | list[str], path: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(targets, their devices) when every pattern names what a device's wire carries; None when none does;
        TargetError for a mix of device and grid targets or a device name that matches nothing."""
        patterns = [patterns] if isinstance(patterns, str) else patterns
        found: dict[str, str] = {}  # target -> device
        grid: list[str] = []
        for p in patterns:
            hits = self._device_hits(p, path)
            if hits:
                found.update(hits)
            if not hits or self._grid_hits(p, path):
                grid.append(p)
        if not found:
            named = next((p.split(".")[0] for p in patterns if p.split(".")[0] in self.wire.devices), None)
            if named is not None:
                raise TargetError(f"{patterns[0]!r} matches nothing device {named}'s wire carries "
                                  f"({self.wire.describe(named, path)})")
            return None
        if grid:
            raise TargetError(f"the targets mix what a device's Modbus wire carries ({next(iter(found))}) with "
                              f"{grid[0]!r}, which is not a device's: an event travels either on the wire (every "
                              "target a device's) or on the simulated channel; split it into two events")
        return tuple(found), tuple(dict.fromkeys(found.values()))

    def _device_hits(self, p: str, path: str) -> dict[str, str]:
        w = self.wire
        if path == MEASUREMENT:
            names = [*fnmatch.filter(w.signals, p), *([p] if p in w.points else [])]
            carriers = {**w.signals, **w.points}
            return {n: carriers[n].device for n in names}
        if p in w.commands:
            return {p: w.commands[p][0]}
        try:
            setpoints = self.match_setpoints(p)
        except TargetError:
            return {}
        return {n: w.commands[n][0] for n in setpoints if n in w.commands}

    def _grid_hits(self, p: str, path: str) -> bool:
        if path == MEASUREMENT:
            return bool(fnmatch.filter(self.signals, p))
        try:
            return any(n not in self.wire.commands for n in self.match_setpoints(p))
        except TargetError:
            return p not in self.wire.commands

    def match_signals(self, patterns: str | list[str]) -> tuple[str, ...]:
        """Measured signals matching any pattern; each pattern must match something."""
        return _match(patterns, self.signals, "signal", _signal_hint(self.signals))

    def match_setpoints(self, patterns: str | list[str]) -> tuple[str, ...]:
        """Setpoints matching any pattern (aliases and the `commands` prefix understood)."""
        names = tuple(self.setpoints)
        if not names:
            raise TargetError("the scenario has no generators, so there are no setpoints to attack")
        patterns = [patterns] if isinstance(patterns, str) else patterns
        cleaned = []
        for p in patterns:
            p = "*" if p == "commands" else p.removeprefix("commands.")
            for alias, name in SETPOINT_ALIASES.items():
                if p.endswith(alias):
                    p = p[: -len(alias)] + name
            cleaned.append(p)
        return _match(cleaned, names, "setpoint", f"setpoints are {_short(names)}")

    def match_generators(self, pattern: str) -> tuple[str, ...]:
        """Scenario generators whose name matches."""
        names = tuple(self.generators)
        return _match([pattern], names, "generator", f"generators are {_short(names)}" if names else
                      "the scenario has no generators")


def _wire_names(scn: Scenario, base_dir: Path | None) -> "WireNames | None":
    """The devices' wire names, only when there are devices and events that may target them."""
    if not (scn.devices or scn.grid_server) or all(isinstance(e, RandomEvents) for e in scn.events):
        return None
    from hil.wire_events import wire_names  # only scenarios with devices pay for importing hil

    return wire_names(scn, base_dir if base_dir is not None else Path.cwd())


def _match(patterns: str | list[str], names: tuple[str, ...], what: str, hint: str) -> tuple[str, ...]:
    patterns = [patterns] if isinstance(patterns, str) else patterns
    found: dict[str, None] = {}
    for p in patterns:
        hits = fnmatch.filter(names, p)
        if not hits:
            guess = difflib.get_close_matches(p, names, n=1)
            mean = f"; did you mean {guess[0]!r}?" if guess else ""
            raise TargetError(f"{what} {p!r} matches nothing on this grid{mean} ({hint})")
        found.update(dict.fromkeys(hits))
    return tuple(n for n in names if n in found)


def _short(names: tuple[str, ...], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _signal_hint(signals: tuple[str, ...]) -> str:
    """The signal families, e.g. 'signals look like bus.<n>.vm_pu, line.<n>.loading_pct, ...'."""
    families = dict.fromkeys(".".join("<n>" if p.isdigit() else p for p in s.split(".")) for s in signals)
    return "signals look like " + ", ".join(list(families)[:12])
