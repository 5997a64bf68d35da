"""Capacitor bank: fed its bus voltage (`VMeasPu`); its QOut is injected at its bus.

The bank is a reactive-only element `<name>` added to the grid model after the scenario's
generators; `<name>.step` switches it (manual mode). Fail-safe: open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosim.grid.model import DER
from cosim.scenario.schema import Device
from hil.coupling import Coupling, measured_voltage, num

if TYPE_CHECKING:
    from hil.checks import CheckContext

# read by cosim.scenario.devices without importing hil: keep it a literal
SCHEMA = {
    "map": "capbank.yaml",
    "stub": "firmware_stubs.capbank",
    "keys": {
        "rating_mvar": {"type": "positive", "doc": "full output at 1 pu (default from the stub's steps x kvar_per_step)"},
    },
    "limits": {
        "step": {"type": "int_range", "point": "StepCmd", "doc": "capacitor bank steps"},
    },
}


@dataclass
class CapBankCoupling(Coupling):
    """Switched capacitor bank: fed its bus voltage, injects QOut at its bus."""

    reads: tuple[str, ...] = ("Status", "Mode", "StepCmd", "Step", "QOut")
    default_writable: tuple[str, ...] = ("Mode", "StepCmd")
    volatile: frozenset[str] = frozenset({"StepCmd"})

    @property
    def rating_mvar(self) -> float:
        """Full output: `rating_mvar`, else steps x kvar per step of the stub it runs (or would run) as."""
        if self.spec.rating_mvar is not None:
            return self.spec.rating_mvar
        return float(self.stub_option("steps")) * float(self.stub_option("kvar_per_step")) / 1000.0

    def inputs(self, grid: Mapping[str, float]) -> dict[str, float]:
        return measured_voltage(grid, self.spec.bus)

    def translate(self, setpoint: str, value: float) -> dict[str, float] | None:
        if setpoint == f"{self.name}.step":
            return {"Mode": 0, "StepCmd": round(value)}
        return super().translate(setpoint, value)

    def signals(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        n = self.name
        return {f"{n}.step": num(values, "Step"), f"{n}.q_mvar": num(values, "QOut") / 1000.0,
                f"{n}.mode": num(values, "Mode")}

    def grid_setpoints(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        q = 0.0 if values is None else num(values, "QOut") / 1000.0  # fail-safe: open
        return {f"{self.name}.q_set_mvar": q} if math.isfinite(q) else {}

    def der(self) -> DER:
        return DER(self.name, "capbank", int(self.spec.bus), 0.0, 1.5 * self.rating_mvar)


COUPLING = CapBankCoupling


def check(ctx: "CheckContext", d: Device, at: tuple) -> list[tuple[tuple, str]]:
    """A capacitor bank needs its bus."""
    return ctx.needs_bus(d, at)
