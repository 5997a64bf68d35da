"""How one scenario device and the grid meet: the base class of every kind's coupling (`hil/kinds/<kind>.py`).

A `Coupling` says, for one scenario device, what the co-simulation feeds an emulated device
(its physics inputs, from the grid), which co-simulation setpoints become which register
writes, which registers are read, what they publish as signals, what the device's output
means for the grid, and which guard rules its writable points get. The guard rules come
from the kind's declaration (`SCHEMA["limits"]`): a range limit clamps its `point`, a rate
limit (`rate_of`) bounds how fast those points move; the map's own min / max always apply.

Any device also takes direct point commands `<name>.<Point>` (through the guard's allow-list).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosim.grid.model import GridModel, Shunt
from cosim.scenario.devices import KINDS
from cosim.scenario.schema import Device, Scenario
from hil.guard import Rule
from hil.registers import RegisterMap

NAN = math.nan


def num(values: Mapping[str, Any] | None, point: str) -> float:
    """A point's value as a float, NaN when there is no reading or it is not a number."""
    v = values.get(point) if values else None
    return float(v) if isinstance(v, (int, float)) else NAN


def measured_voltage(grid: Mapping[str, float], bus: int) -> dict[str, float]:
    """The device's voltage input (`VMeasPu`) from its bus voltage; nothing while the bus has no value."""
    vm = grid.get(f"bus.{bus}.vm_pu", NAN)
    return {"VMeasPu": vm} if math.isfinite(vm) else {}


@dataclass
class Coupling:
    """A scenario device and its register map; each kind's subclass fills in the kind's behaviour."""

    spec: Device
    regmap: RegisterMap
    base_dir: Path
    reads: tuple[str, ...] = ()  # points read every step (their scale factors are read with them)
    default_writable: tuple[str, ...] = ()
    pulse: frozenset[str] = frozenset()  # command registers that read back 0 after a write
    volatile: frozenset[str] = frozenset()  # writable points the device also changes itself (auto mode)
    fed: frozenset[str] = frozenset()  # physics inputs the co-simulation writes to an emulated device

    @classmethod
    def build(cls, scn: Scenario, spec: Device, regmap: RegisterMap, base_dir: Path) -> "Coupling":
        """The coupling of one (already checked) device of `scn`."""
        return cls(spec, regmap, base_dir)

    @property
    def name(self) -> str:
        """The device's name."""
        return self.spec.name

    @property
    def writable(self) -> frozenset[str]:
        """The guard's allow-list."""
        return frozenset(self.default_writable if self.spec.writable is None else self.spec.writable)

    def rules(self) -> dict[str, Rule]:
        """Clamp and rate rules per writable point: the map's min / max, inside them the kind's `limits`."""
        rules = {p: self._map_rule(p) for p in self.writable if p in self.regmap}
        limits = KINDS[self.spec.kind].limits
        bounds = {d["point"]: getattr(self.spec.limits, key) for key, d in limits.items() if "point" in d}
        rates = {p: getattr(self.spec.limits, key) for key, d in limits.items() for p in d.get("rate_of", ())}
        for point in set(bounds) | set(rates):
            if point in rules:
                own, given = rules[point], bounds.get(point)
                lo, hi = given if given is not None else (own.lo, own.hi)
                rules[point] = Rule(max(lo, own.lo), min(hi, own.hi), rates.get(point))
        return rules

    def _map_rule(self, point: str) -> Rule:
        p = self.regmap[point]
        return Rule(-math.inf if p.min is None else p.min, math.inf if p.max is None else p.max)

    def stub_argv(self) -> list[str]:
        """Extra command-line options of the firmware stub (the scenario's `stub_args`; kinds add their nameplate)."""
        args = []
        for key, value in self.spec.stub_args.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value is not False:
                args += [flag, str(value)]
        return args

    def stub_option(self, dest: str) -> Any:
        """A firmware-stub option as this device's stub runs with it: from `stub_args`, else the stub's default."""
        if dest in self.spec.stub_args:
            return self.spec.stub_args[dest]
        from firmware_stubs.cli import build_parser  # only kinds that ask pay for importing their stub
        from firmware_stubs.device import DeviceStub

        module = importlib.import_module(KINDS[self.spec.kind].stub)
        stub = next(c for c in vars(module).values()
                    if isinstance(c, type) and issubclass(c, DeviceStub) and c.__module__ == module.__name__)
        return build_parser(stub).get_default(dest)

    def self_changing(self, values: Mapping[str, Any] | None) -> frozenset[str]:
        """The writable points the device may move itself in the state `values` (a reading; None: unknown)."""
        return self.volatile

    def inputs(self, grid: Mapping[str, float]) -> dict[str, float]:
        """Physics inputs of an emulated device from the grid's signals (point -> value)."""
        return {}

    def translate(self, setpoint: str, value: float) -> dict[str, float] | None:
        """Register writes for a co-simulation setpoint, or None when it is not this device's."""
        prefix = f"{self.name}."
        if setpoint.startswith(prefix) and setpoint[len(prefix):] in self.regmap:
            return {setpoint[len(prefix):]: value}
        return None

    def signals(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        """Published readings `<name>.<quantity>` (NaN before the first reading)."""
        return {}

    def grid_setpoints(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        """What the device's output means for the grid model; `values` None = the device's fail-safe state."""
        return {}

    def shunt(self) -> Shunt | None:
        """A switched shunt this device adds to the grid model, if any."""
        return None

    def attach(self, model: GridModel) -> None:
        """Learn what the device acts on in the run's grid model (names of added elements, tap positions)."""


