"""Voltage regulator / OLTC controller: fed the regulated voltage (`VMeasPu`), its tap published.

`<name>.tap` moves it (manual mode). The tap is published only: the shipped feeders have
no regulator element to apply it to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosim.scenario.schema import Device
from hil.coupling import Coupling, measured_voltage, num

if TYPE_CHECKING:
    from hil.checks import CheckContext

# read by cosim.scenario.devices without importing hil: keep it a literal
SCHEMA = {
    "map": "regulator.yaml",
    "stub": "firmware_stubs.regulator",
    "limits": {
        "tap": {"type": "int_range", "point": "TapCmd", "doc": "regulator tap positions"},
    },
}


@dataclass
class RegulatorCoupling(Coupling):
    """Voltage regulator / OLTC controller: fed the regulated voltage, its tap published."""

    reads: tuple[str, ...] = ("Tap", "TapCmd", "Mode", "BandStatus")
    default_writable: tuple[str, ...] = ("Mode", "TapCmd")
    volatile: frozenset[str] = frozenset({"TapCmd"})

    def inputs(self, grid: Mapping[str, float]) -> dict[str, float]:
        return measured_voltage(grid, self.spec.bus)

    def translate(self, setpoint: str, value: float) -> dict[str, float] | None:
        if setpoint == f"{self.name}.tap":
            return {"Mode": 0, "TapCmd": round(value)}
        return super().translate(setpoint, value)

    def signals(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        n = self.name
        return {f"{n}.tap": num(values, "Tap"), f"{n}.mode": num(values, "Mode"), f"{n}.band": num(values, "BandStatus")}


COUPLING = RegulatorCoupling


def check(ctx: "CheckContext", d: Device, at: tuple) -> list[tuple[tuple, str]]:
    """A regulator needs its bus."""
    return ctx.needs_bus(d, at)
