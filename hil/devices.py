"""Device kinds: which register map and stub each uses, and how the grid and the device meet.

A `Coupling` says, for one scenario device, what the co-simulation feeds an emulated device
(its physics inputs, from the grid), which co-simulation setpoints become which register
writes, which registers are read, what they publish as signals, and what the device's
output means for the grid:

- inverter: acts for one scenario generator (`generator:`, or the only one at its bus). The
  controller's `<gen>.p_limit_mw` / `<gen>.q_set_mvar` become WMaxLimPct / VArWMaxPct
  (percent of the generator's nameplate); the stub is fed PAvail (the generator's available
  power) and VTermPu (its bus voltage); the grid takes the P and Q the device reports as the
  generator's limit and reactive setpoint, so what flows in the grid is what the device does.
- capbank: fed VMeasPu; its QOut is injected at its bus (a reactive-only element `<name>`
  added to the grid model); `<name>.step` switches it (manual mode).
- regulator: fed VMeasPu; `<name>.tap` moves it (manual mode); its tap is published only
  (the shipped feeders have no regulator element to apply it to).
- recloser: fed FaultA, the current of its line; published only (lines are switched by events).
- custom: a map of your own; reads `points:` (default: every numeric point), writes nothing
  unless `writable:` lists points.

Any device also takes direct point commands `<name>.<Point>` (through the guard's allow-list).
A device whose reading is lost holds its last reading in the grid for `watchdog` seconds
(the time its own fail-safe takes), then the grid assumes the fail-safe state.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosim.grid.model import DER
from cosim.scenario.schema import Device, Scenario
from hil import MAPS_DIR
from hil.guard import Rule
from hil.registers import RegisterMap, load_map

NAN = math.nan


def _measured_voltage(grid: dict[str, float], bus: int) -> dict[str, float]:
    """The device's voltage input (`VMeasPu`) from its bus voltage; nothing while the bus has no value."""
    vm = grid.get(f"bus.{bus}.vm_pu", NAN)
    return {"VMeasPu": vm} if math.isfinite(vm) else {}


def _num(values: Mapping[str, Any] | None, point: str) -> float:
    v = values.get(point) if values else None
    return float(v) if isinstance(v, (int, float)) else NAN


@dataclass
class Coupling:
    """A scenario device and its register map; subclasses fill in the kind's behaviour."""

    spec: Device
    regmap: RegisterMap
    base_dir: Path
    reads: tuple[str, ...] = ()  # points read every step (their scale factors are read with them)
    default_writable: tuple[str, ...] = ()
    pulse: frozenset[str] = frozenset()  # command registers that read back 0 after a write
    volatile: frozenset[str] = frozenset()  # writable points the device also changes itself (auto mode)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def writable(self) -> frozenset[str]:
        """The guard's allow-list."""
        return frozenset(self.default_writable if self.spec.writable is None else self.spec.writable)

    def rules(self) -> dict[str, Rule]:
        """Clamp and rate rules per writable point (the map's own min/max always apply)."""
        return {p: self._map_rule(p) for p in self.writable if p in self.regmap}

    def _map_rule(self, point: str) -> Rule:
        p = self.regmap[point]
        return Rule(-math.inf if p.min is None else p.min, math.inf if p.max is None else p.max)

    def _limit_rule(self, point: str, bounds: tuple[float, float] | None, rate: float | None = None) -> dict[str, Rule]:
        """The rule of a point with scenario `limits` (inside the map's own bounds), if the point is writable."""
        if point not in self.writable:
            return {}
        own = self._map_rule(point)
        lo, hi = bounds if bounds is not None else (own.lo, own.hi)
        return {point: Rule(max(lo, own.lo), min(hi, own.hi), rate)}

    def stub_argv(self) -> list[str]:
        """Extra command-line options of the firmware stub (nameplate and the scenario's `stub_args`)."""
        args = []
        for key, value in self.spec.stub_args.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value is not False:
                args += [flag, str(value)]
        return args

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

    def der(self) -> DER | None:
        """An element this device adds to the grid model, if any."""
        return None


@dataclass
class Inverter(Coupling):
    """SunSpec PV inverter acting for one scenario generator (see the module docstring)."""

    generator: Any = None  # the scenario generator block

    def __post_init__(self) -> None:
        self.reads = ("W", "VAr", "St", "Conn", "WMaxLimPct", "WMaxLim_Ena", "VArWMaxPct", "VArPct_Mod", "VArPct_Ena")
        self.default_writable = ("WMaxLimPct", "WMaxLim_Ena", "VArWMaxPct", "VArPct_Mod", "VArPct_Ena")
        self.p_w = self.generator.p_mw * 1e6

    def rules(self) -> dict[str, Rule]:
        lim = self.spec.limits
        return {**super().rules(), **self._limit_rule("WMaxLimPct", lim.w_max_lim_pct, lim.max_step_pct_per_s),
                **self._limit_rule("VArWMaxPct", lim.var_pct, lim.max_step_pct_per_s)}

    def stub_argv(self) -> list[str]:
        g = self.generator
        return ["--w-max", f"{g.p_mw * 1e6:g}", "--va-max", f"{g.rating_mva * 1e6:g}", *super().stub_argv()]

    def inputs(self, grid):
        g, out = self.generator.name, {}
        p_avail, vm = grid.get(f"{g}.p_avail_mw", NAN), grid.get(f"bus.{self.generator.bus}.vm_pu", NAN)
        if math.isfinite(p_avail):
            out["PAvail"] = max(0.0, p_avail * 1e6)
        if math.isfinite(vm):
            out["VTermPu"] = vm
        return out

    def translate(self, setpoint, value):
        g = self.generator.name
        if setpoint == f"{g}.p_limit_mw":
            return {"WMaxLim_Ena": 1, "WMaxLimPct": 100.0 * value * 1e6 / self.p_w}
        if setpoint == f"{g}.q_set_mvar":
            return {"VArPct_Mod": 1, "VArPct_Ena": 1, "VArWMaxPct": 100.0 * value * 1e6 / self.p_w}
        return super().translate(setpoint, value)

    def signals(self, values):
        n = self.name
        lim = _num(values, "WMaxLimPct") if _num(values, "WMaxLim_Ena") == 1 else (100.0 if values else NAN)
        var = _num(values, "VArWMaxPct") if _num(values, "VArPct_Ena") == 1 else (0.0 if values else NAN)
        return {f"{n}.p_mw": _num(values, "W") / 1e6, f"{n}.q_mvar": _num(values, "VAr") / 1e6,
                f"{n}.w_max_lim_pct": lim, f"{n}.var_pct": var, f"{n}.state": _num(values, "St")}

    def grid_setpoints(self, values):
        g = self.generator.name
        if values is None:  # fail-safe: limits revert, no reactive power
            return {f"{g}.p_limit_mw": self.generator.p_mw, f"{g}.q_set_mvar": 0.0}
        p, q = _num(values, "W"), _num(values, "VAr")
        if not (math.isfinite(p) and math.isfinite(q)):
            return {}
        return {f"{g}.p_limit_mw": max(0.0, p) / 1e6, f"{g}.q_set_mvar": q / 1e6}


@dataclass
class CapBank(Coupling):
    """Switched capacitor bank: fed its bus voltage, injects QOut at its bus."""

    def __post_init__(self) -> None:
        self.reads = ("Status", "Mode", "StepCmd", "Step", "QOut")
        self.default_writable = ("Mode", "StepCmd")
        self.volatile = frozenset({"StepCmd"})

    def rules(self):
        return {**super().rules(), **self._limit_rule("StepCmd", self.spec.limits.step)}

    @property
    def rating_mvar(self) -> float:
        if self.spec.rating_mvar is not None:
            return self.spec.rating_mvar
        args = self.spec.stub_args
        return float(args.get("steps", 4)) * float(args.get("kvar_per_step", 300)) / 1000.0

    def inputs(self, grid):
        return _measured_voltage(grid, self.spec.bus)

    def translate(self, setpoint, value):
        if setpoint == f"{self.name}.step":
            return {"Mode": 0, "StepCmd": round(value)}
        return super().translate(setpoint, value)

    def signals(self, values):
        n = self.name
        return {f"{n}.step": _num(values, "Step"), f"{n}.q_mvar": _num(values, "QOut") / 1000.0,
                f"{n}.mode": _num(values, "Mode")}

    def grid_setpoints(self, values):
        q = 0.0 if values is None else _num(values, "QOut") / 1000.0  # fail-safe: open
        return {f"{self.name}.q_set_mvar": q} if math.isfinite(q) else {}

    def der(self) -> DER:
        return DER(self.name, "capbank", int(self.spec.bus), 0.0, 1.5 * self.rating_mvar)


@dataclass
class Regulator(Coupling):
    """Voltage regulator / OLTC controller: fed the regulated voltage, its tap published."""

    def __post_init__(self) -> None:
        self.reads = ("Tap", "TapCmd", "Mode", "BandStatus")
        self.default_writable = ("Mode", "TapCmd")
        self.volatile = frozenset({"TapCmd"})

    def rules(self):
        return {**super().rules(), **self._limit_rule("TapCmd", self.spec.limits.tap)}

    def inputs(self, grid):
        return _measured_voltage(grid, self.spec.bus)

    def translate(self, setpoint, value):
        if setpoint == f"{self.name}.tap":
            return {"Mode": 0, "TapCmd": round(value)}
        return super().translate(setpoint, value)

    def signals(self, values):
        n = self.name
        return {f"{n}.tap": _num(values, "Tap"), f"{n}.mode": _num(values, "Mode"), f"{n}.band": _num(values, "BandStatus")}


@dataclass
class Recloser(Coupling):
    """Recloser / breaker: fed its line's current, its state published."""

    def __post_init__(self) -> None:
        self.reads = ("Status", "Tripped", "Lockout", "TripCount")
        self.default_writable = ("OpenCmd", "CloseCmd", "ResetCmd")
        self.pulse = frozenset(self.default_writable)

    def inputs(self, grid):
        if self.spec.line is None:
            return {}
        i_ka = grid.get(f"line.{self.spec.line}.i_ka", NAN)
        return {"FaultA": i_ka * 1000.0} if math.isfinite(i_ka) else {}

    def signals(self, values):
        n = self.name
        return {f"{n}.closed": _num(values, "Status"), f"{n}.tripped": _num(values, "Tripped"),
                f"{n}.lockout": _num(values, "Lockout")}


@dataclass
class Custom(Coupling):
    """A device of your own map: reads `points` (default every numeric point), writes only `writable`."""

    def __post_init__(self) -> None:
        numeric = [p.name for p in self.regmap.points if p.type not in ("string", "sunssf")]
        self.reads = tuple(self.spec.points) if self.spec.points is not None else tuple(numeric)

    def signals(self, values):
        return {f"{self.name}.{p}": _num(values, p) for p in self.reads}


KINDS: dict[str, type[Coupling]] = {"inverter": Inverter, "capbank": CapBank, "regulator": Regulator,
                                    "recloser": Recloser, "custom": Custom}


def cached_map(path: Path) -> RegisterMap:
    """`load_map`, once per file version (a map is parsed and validated in a third of a second)."""
    path = path.resolve()
    return _load(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> RegisterMap:
    return load_map(path)


def map_path(spec: Device, base_dir: Path) -> Path:
    """The register map of a device: its `map:` (relative to the scenario) or the kind's shipped map."""
    if spec.map is not None:
        p = Path(spec.map)
        return p if p.is_absolute() else base_dir / p
    return MAPS_DIR / f"{spec.kind}.yaml"


def generator_for(scn: Scenario, spec: Device):
    """The scenario generator an inverter acts for: the named one, else the only one at its bus, else None."""
    if spec.generator is not None:
        return next((g for g in scn.generators if g.name == spec.generator), None)
    at_bus = [g for g in scn.generators if g.bus == spec.bus]
    return at_bus[0] if len(at_bus) == 1 else None


def coupling(scn: Scenario, spec: Device, base_dir: Path) -> Coupling:
    """The coupling of one (already checked) scenario device."""
    regmap = cached_map(map_path(spec, base_dir))
    if spec.kind == "inverter":
        return Inverter(spec, regmap, base_dir, generator=generator_for(scn, spec))
    return KINDS[spec.kind](spec, regmap, base_dir)


def couplings(scn: Scenario, base_dir: Path) -> list[Coupling]:
    """The couplings of every device of a scenario, in file order."""
    return [coupling(scn, d, base_dir) for d in scn.devices]


def extra_ders(scn: Scenario, base_dir: Path) -> list[DER]:
    """Grid-model elements the devices add (capacitor banks), after the scenario's generators."""
    return [der for c in couplings(scn, base_dir) if (der := c.der()) is not None]
