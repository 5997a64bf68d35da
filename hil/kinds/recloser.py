"""Recloser / breaker: fed the current of its `line` (`FaultA`), it opens and recloses that line in the grid.

The grid takes the breaker state the device reports (`Status`) as the line's `line.<k>.closed`,
so the device's protection (trip on the current the grid computes, auto-reclose, lockout) and
its pulse commands OpenCmd, CloseCmd and ResetCmd (they read back 0) switch the line; an open
breaker carries no current, which the device is then fed. A `line.<k>.closed` command (a SCADA
breaker command through the grid server) becomes OpenCmd or CloseCmd. Fail-safe (no reading):
the line stays as it was, as the device's own safe default keeps its state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosim import signals as sig
from cosim.scenario.schema import Device
from hil.coupling import NAN, Coupling, num

if TYPE_CHECKING:
    from hil.checks import CheckContext

# read by cosim.scenario.devices without importing hil: keep it a literal
SCHEMA = {
    "map": "recloser.yaml",
    "stub": "firmware_stubs.recloser",
    "keys": {
        "line": {"type": "int", "doc": "the line whose current it measures"},
    },
}

COMMANDS = ("OpenCmd", "CloseCmd", "ResetCmd")


@dataclass
class RecloserCoupling(Coupling):
    """Recloser / breaker: fed its line's current, it switches that line."""

    reads: tuple[str, ...] = ("Status", "Tripped", "Lockout", "TripCount")
    default_writable: tuple[str, ...] = COMMANDS
    fed: frozenset[str] = frozenset({"FaultA"})
    pulse: frozenset[str] = frozenset(COMMANDS)

    def inputs(self, grid: Mapping[str, float]) -> dict[str, float]:
        if self.spec.line is None:
            return {}
        i_ka = grid.get(f"line.{self.spec.line}.i_ka", NAN)
        return {"FaultA": i_ka * 1000.0} if math.isfinite(i_ka) else {}

    def translate(self, setpoint: str, value: float) -> dict[str, float] | None:
        if self.spec.line is not None and setpoint == sig.line(self.spec.line, "closed"):
            return {"CloseCmd": 1} if value >= 0.5 else {"OpenCmd": 1}
        return super().translate(setpoint, value)

    def grid_setpoints(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        status = num(values, "Status")
        if self.spec.line is None or not math.isfinite(status):
            return {}
        return {sig.line(self.spec.line, "closed"): float(status == 1)}

    def signals(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        n = self.name
        return {f"{n}.closed": num(values, "Status"), f"{n}.tripped": num(values, "Tripped"),
                f"{n}.lockout": num(values, "Lockout")}


COUPLING = RecloserCoupling


def check(ctx: "CheckContext", d: Device, at: tuple) -> list[tuple[tuple, str]]:
    """Its line exists."""
    if d.line is not None and d.line not in ctx.lines:
        return [((*at, "line"), f"line {d.line} does not exist on feeder {ctx.scn.grid.feeder} "
                                f"({ctx.feeder.describe('line')})")]
    return []
