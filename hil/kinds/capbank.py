"""Capacitor bank: fed its bus voltage (`VMeasPu`); its step switches a shunt at its bus.

The bank is a switched shunt the grid model adds at its bus (`cap.<n>.step`, pandapower's shunt
index n; `steps` steps of `kvar_per_step` at 1 pu, constant impedance like the stub's QOut =
step x kvar_per_step x V^2); the grid takes the step the device reports. `<name>.step` switches it
(manual mode). Fail-safe: open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosim.grid.model import GridModel, Shunt
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
    """Switched capacitor bank: fed its bus voltage, switches its shunt in the grid model."""

    reads: tuple[str, ...] = ("Status", "Mode", "StepCmd", "Step", "QOut")
    default_writable: tuple[str, ...] = ("Mode", "StepCmd")
    fed: frozenset[str] = frozenset({"VMeasPu"})
    volatile: frozenset[str] = frozenset({"StepCmd"})
    step_setpoint: str = ""  # the grid model's `cap.<n>.step` of this bank (`attach`)

    @property
    def rating_mvar(self) -> float:
        """Full output: `rating_mvar`, else steps x kvar per step of the stub it runs (or would run) as."""
        if self.spec.rating_mvar is not None:
            return self.spec.rating_mvar
        return float(self.stub_option("steps")) * float(self.stub_option("kvar_per_step")) / 1000.0

    def self_changing(self, values: Mapping[str, Any] | None) -> frozenset[str]:
        """StepCmd moves with the device's own control in auto mode (Mode 1), only by writes in manual mode."""
        return frozenset() if num(values, "Mode") == 0 else self.volatile

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

    def shunt(self) -> Shunt:
        steps = int(self.stub_option("steps"))
        return Shunt(self.name, int(self.spec.bus), self.rating_mvar / steps, steps)

    def attach(self, model: GridModel) -> None:
        self.step_setpoint = model.shunt_setpoint[self.name]

    def grid_setpoints(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        step = 0.0 if values is None else num(values, "Step")  # fail-safe: open
        return {self.step_setpoint: step} if math.isfinite(step) else {}


COUPLING = CapBankCoupling


def check(ctx: "CheckContext", d: Device, at: tuple) -> list[tuple[tuple, str]]:
    """A capacitor bank needs its bus."""
    return ctx.needs_bus(d, at)
