"""Inverter (SunSpec models 1, 103, 123 and IEEE 1547-2018 701-706): acts for one scenario generator.

The controller's `<gen>.p_limit_mw` / `<gen>.q_set_mvar` become WMaxLimPct (+ WMaxLim_Ena)
and VArWMaxPct (+ VArPct_Mod = 1, VArPct_Ena), in percent of the generator's nameplate;
an emulated one is fed PAvail (the generator's available power) and VTermPu (its bus
voltage); the grid takes the P and Q the device reports as the generator's limit and
reactive setpoint, so what flows in the grid is what the device does. The device's own
volt-var (model 705) and volt-watt (706) functions act through the same P and Q; they are
switched by the direct commands `<name>.M705_Ena` / `<name>.M706_Ena` once the scenario's
`writable:` lists them (not by default: watched points are read every step, and these lie
outside the one read of models 103/123). `<name>.events` publishes the trip event bits (Evt1).
Fail-safe: no curtailment, no reactive power.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosim.scenario.schema import Device, Scenario
from hil.coupling import NAN, Coupling, num
from hil.registers import RegisterMap

if TYPE_CHECKING:
    from hil.checks import CheckContext

# read by cosim.scenario.devices without importing hil: keep it a literal
SCHEMA = {
    "map": "inverter.yaml",
    "stub": "firmware_stubs.inverter",
    "keys": {
        "generator": {"type": "str", "doc": "the scenario generator whose P and Q it sets "
                                            "(default: the only one at its bus)"},
    },
    "limits": {
        "w_max_lim_pct": {"type": "range", "point": "WMaxLimPct", "doc": "active-power limit, % of WMax"},
        "var_pct": {"type": "range", "point": "VArWMaxPct", "doc": "reactive power, % of WMax"},
        "max_step_pct_per_s": {"type": "positive", "rate_of": ["WMaxLimPct", "VArWMaxPct"],
                               "doc": "rate limit of the % setpoints"},
    },
}


def generator_for(scn: Scenario, spec: Device) -> Any:
    """The scenario generator an inverter acts for: the named one, else the only one at its bus, else None."""
    if spec.generator is not None:
        return next((g for g in scn.generators if g.name == spec.generator), None)
    at_bus = [g for g in scn.generators if g.bus == spec.bus]
    return at_bus[0] if len(at_bus) == 1 else None


@dataclass
class InverterCoupling(Coupling):
    """SunSpec PV inverter acting for one scenario generator (see the module docstring)."""

    reads: tuple[str, ...] = ("W", "VAr", "St", "Conn", "WMaxLimPct", "WMaxLim_Ena", "VArWMaxPct", "VArPct_Mod",
                              "VArPct_Ena", "Evt1")
    default_writable: tuple[str, ...] = ("WMaxLimPct", "WMaxLim_Ena", "VArWMaxPct", "VArPct_Mod", "VArPct_Ena")
    fed: frozenset[str] = frozenset({"PAvail", "VTermPu"})
    generator: Any = None  # the scenario generator block

    @classmethod
    def build(cls, scn: Scenario, spec: Device, regmap: RegisterMap, base_dir: Path) -> "InverterCoupling":
        """The coupling, with the generator the inverter acts for."""
        return cls(spec, regmap, base_dir, generator=generator_for(scn, spec))

    @property
    def p_w(self) -> float:
        """The generator's nameplate in W (100 % of the percent setpoints)."""
        return self.generator.p_mw * 1e6

    def stub_argv(self) -> list[str]:
        g = self.generator
        return ["--w-max", f"{g.p_mw * 1e6:g}", "--va-max", f"{g.rating_mva * 1e6:g}", *super().stub_argv()]

    def inputs(self, grid: Mapping[str, float]) -> dict[str, float]:
        g, out = self.generator.name, {}
        p_avail, vm = grid.get(f"{g}.p_avail_mw", NAN), grid.get(f"bus.{self.generator.bus}.vm_pu", NAN)
        if math.isfinite(p_avail):
            out["PAvail"] = max(0.0, p_avail * 1e6)
        if math.isfinite(vm):
            out["VTermPu"] = vm
        return out

    def translate(self, setpoint: str, value: float) -> dict[str, float] | None:
        g = self.generator.name
        if setpoint == f"{g}.p_limit_mw":
            return {"WMaxLim_Ena": 1, "WMaxLimPct": 100.0 * value * 1e6 / self.p_w}
        if setpoint == f"{g}.q_set_mvar":
            return {"VArPct_Mod": 1, "VArPct_Ena": 1, "VArWMaxPct": 100.0 * value * 1e6 / self.p_w}
        return super().translate(setpoint, value)

    def signals(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        n = self.name
        lim = num(values, "WMaxLimPct") if num(values, "WMaxLim_Ena") == 1 else (100.0 if values else NAN)
        var = num(values, "VArWMaxPct") if num(values, "VArPct_Ena") == 1 else (0.0 if values else NAN)
        return {f"{n}.p_mw": num(values, "W") / 1e6, f"{n}.q_mvar": num(values, "VAr") / 1e6,
                f"{n}.w_max_lim_pct": lim, f"{n}.var_pct": var, f"{n}.state": num(values, "St"),
                f"{n}.events": num(values, "Evt1")}

    def grid_setpoints(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        g = self.generator.name
        if values is None:  # fail-safe: limits revert, no reactive power
            return {f"{g}.p_limit_mw": self.generator.p_mw, f"{g}.q_set_mvar": 0.0}
        p, q = num(values, "W"), num(values, "VAr")
        if not (math.isfinite(p) and math.isfinite(q)):
            return {}
        return {f"{g}.p_limit_mw": max(0.0, p) / 1e6, f"{g}.q_set_mvar": q / 1e6}


COUPLING = InverterCoupling


def check(ctx: "CheckContext", d: Device, at: tuple) -> list[tuple[tuple, str]]:
    """The generator exists, is at the device's bus, and has no other device acting for it."""
    if d.bus is None and d.generator is None:
        return [(at, "missing required key 'bus' (or generator: an inverter acts for a generator at its bus)")]
    if d.generator is not None and d.generator not in ctx.generators:
        known = ", ".join(sorted(ctx.generators)) or "none"
        return [((*at, "generator"), f"generator {d.generator!r} does not exist (generators: {known})")]
    g = generator_for(ctx.scn, d)
    if g is None:
        at_bus = [x.name for x in ctx.scn.generators if x.bus == d.bus]
        why = (f"generators {', '.join(at_bus)} are all at bus {d.bus}; name one with generator: <name>" if at_bus else
               f"no scenario generator is at bus {d.bus}; add one (kind pv) or name it with generator: <name>")
        return [(at, f"an inverter acts for one scenario generator: {why}")]
    out = []
    if d.bus is not None and d.bus != g.bus:
        out.append(((*at, "bus"), f"generator {g.name} is at bus {g.bus}, not {d.bus}"))
    if g.name in ctx.acting:
        out.append(((*at, "generator"), f"generator {g.name} already has device {ctx.acting[g.name]} acting for it"))
    ctx.acting.setdefault(g.name, d.name)
    return out
