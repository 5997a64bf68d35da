"""Voltage regulator / OLTC controller: fed the regulated voltage (`VMeasPu`), its tap applied to the grid.

With `trafo: <n>` the device is the controller of the feeder's on-load tap changer `trafo.<n>.tap`:
its `Tap` is the position relative to the changer's neutral, signed so that tap up raises the
regulated (LV) voltage, as the stub's auto mode assumes. Without `trafo` it is a feeder-head
regulator at the substation: the source voltage becomes its base value times
1 + Tap x TapStepPct / 100 (`grid.source_ratio`), and `bus` is where it senses the voltage it
regulates (like an LTC with line-drop compensation to a load centre). `<name>.tap` moves it
(manual mode). Fail-safe (no reading): the tap in force holds, as the device's own safe default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosim import signals as sig
from cosim.grid.model import GridModel
from cosim.scenario.schema import Device
from hil.coupling import Coupling, measured_voltage, num

if TYPE_CHECKING:
    from hil.checks import CheckContext

# read by cosim.scenario.devices without importing hil: keep it a literal
SCHEMA = {
    "map": "regulator.yaml",
    "stub": "firmware_stubs.regulator",
    "keys": {
        "trafo": {"type": "int", "doc": "the feeder's tap-changing transformer it controls (default: a "
                                        "feeder-head regulator on the source voltage)"},
    },
    "limits": {
        "tap": {"type": "int_range", "point": "TapCmd", "doc": "regulator tap positions"},
    },
}


@dataclass
class RegulatorCoupling(Coupling):
    """Voltage regulator / OLTC controller: fed the regulated voltage, its tap moves a transformer or the source."""

    reads: tuple[str, ...] = ("Tap", "TapCmd", "Mode", "BandStatus", "TapStepPct")
    default_writable: tuple[str, ...] = ("Mode", "TapCmd")
    fed: frozenset[str] = frozenset({"VMeasPu"})
    volatile: frozenset[str] = frozenset({"TapCmd"})
    neutral: int = 0  # the transformer's neutral tap position (`attach`)
    sign: int = 1  # +1: a changer on the LV side; -1 on the HV side (tap up there lowers the LV voltage)

    def attach(self, model: GridModel) -> None:
        if self.spec.trafo is not None:
            row = model.feeder.net.trafo.loc[model.feeder.trafo_index(self.spec.trafo)]
            neutral = row.get("tap_neutral")
            self.neutral = int(neutral) if neutral is not None and math.isfinite(neutral) else 0
            self.sign = -1 if str(row.get("tap_side", "hv")) == "hv" else 1

    def self_changing(self, values: Mapping[str, Any] | None) -> frozenset[str]:
        """TapCmd moves with the device's own control in auto mode (Mode 1), only by writes in manual mode."""
        return frozenset() if num(values, "Mode") == 0 else self.volatile

    def inputs(self, grid: Mapping[str, float]) -> dict[str, float]:
        return measured_voltage(grid, self.spec.bus)

    def translate(self, setpoint: str, value: float) -> dict[str, float] | None:
        if setpoint == f"{self.name}.tap":
            return {"Mode": 0, "TapCmd": round(value)}
        return super().translate(setpoint, value)

    def signals(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        n = self.name
        return {f"{n}.tap": num(values, "Tap"), f"{n}.mode": num(values, "Mode"), f"{n}.band": num(values, "BandStatus")}

    def grid_setpoints(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        tap, step = num(values, "Tap"), num(values, "TapStepPct")
        if values is None or not (math.isfinite(tap) and math.isfinite(step)):
            return {}  # the tap in force holds
        if self.spec.trafo is not None:
            return {sig.trafo(self.spec.trafo, "tap"): self.neutral + self.sign * tap}
        return {sig.SOURCE_RATIO: 1.0 + tap * step / 100.0}


COUPLING = RegulatorCoupling


def check(ctx: "CheckContext", d: Device, at: tuple) -> list[tuple[tuple, str]]:
    """A regulator needs its bus; its transformer exists and has a tap changer."""
    problems = ctx.needs_bus(d, at)
    if d.trafo is not None:
        from cosim.grid.model import discrete_setpoints

        changers = sorted(int(x.name.split(".")[1]) for x in discrete_setpoints(ctx.feeder) if x.table == "trafo")
        if d.trafo not in changers:
            known = ", ".join(map(str, changers)) or "none"
            problems.append(((*at, "trafo"), f"trafo {d.trafo} of feeder {ctx.scn.grid.feeder} has no on-load tap "
                                             f"changer (transformers with one: {known})"))
    return problems
