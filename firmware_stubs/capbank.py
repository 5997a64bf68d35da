"""Capacitor bank controller firmware stub.

Register map: ``hil/maps/capbank.yaml`` (holding registers from 0).  The
co-simulation writes the bus voltage ``VMeasPu`` (float32 at 8) and reads
``Step`` (3) / ``QOut`` (float32 at 6, kvar); the heartbeat is at 16, the
watchdog counter at 17.

* Manual mode (``Mode=0``): the bank goes to ``StepCmd`` at once (0 = open).
  ``StepCmd`` above ``NSteps`` or written in auto mode is rejected with
  ILLEGAL_VALUE (0x03).
* Auto mode (``Mode=1``): after ``Delay`` s with ``VMeasPu < VOnPu`` one step
  is switched in, after ``Delay`` s with ``VMeasPu > VOffPu`` one step is
  switched out (the timer restarts after each operation).
* Safe default (watchdog): open, step 0, manual mode.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli import main
from .device import DeviceStub, WriteRejected


class CapBankStub(DeviceStub):
    name = "capbank"
    map_file = "capbank.yaml"
    description = "Switched capacitor bank controller firmware stub (Modbus-TCP)"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--steps", type=int, default=4, help="number of steps (1..32, default 4)")
        parser.add_argument("--kvar-per-step", type=int, default=300, help="kvar per step at 1 pu (default 300)")
        parser.add_argument("--delay", type=float, default=30.0, help="auto-mode time delay in s (default 30)")
        parser.add_argument("--mode", choices=["manual", "auto"], default="manual", help="initial mode (default manual)")

    def setup(self, now: float) -> None:
        o = self.options
        if not 1 <= o.steps <= 32:
            raise ValueError("--steps must be in 1..32")
        if not 1 <= o.kvar_per_step <= 65535:
            raise ValueError("--kvar-per-step must be in 1..65535")
        self.set("NSteps", o.steps)
        self.set("KvarPerStep", o.kvar_per_step)
        self.set("Delay", o.delay)
        self.set("Mode", 1 if o.mode == "auto" else 0)
        self.timer = 0.0
        self.direction = 0
        self._update()

    def validate_write(self, values: dict[str, Any], now: float) -> None:
        mode = values.get("Mode", self.get("Mode"))
        if "StepCmd" in values:
            if mode == 1 and values["StepCmd"] != self.get("Step"):
                raise WriteRejected("StepCmd is only accepted in manual mode")
            if values["StepCmd"] > self.get("NSteps"):
                raise WriteRejected(f"StepCmd={values['StepCmd']} > NSteps={self.get('NSteps')}")
        v_on = values.get("VOnPu", self.get("VOnPu"))
        v_off = values.get("VOffPu", self.get("VOffPu"))
        if v_on >= v_off:
            raise WriteRejected(f"VOnPu={v_on} must be below VOffPu={v_off}")

    def on_write(self, values: dict[str, Any], now: float) -> None:
        if values.get("Mode") == 0:
            self.set("StepCmd", self.get("Step"))  # hold the present step
            self.timer = 0.0
        if "StepCmd" in values and self.get("Mode") == 0:
            self._switch_to(int(values["StepCmd"]), "manual")
        self._update()

    def _switch_to(self, step: int, why: str) -> None:
        old = int(self.get("Step"))
        if step == old:
            return
        self.set("Step", step)
        self.set("OpCount", int(self.get("OpCount")) + abs(step - old))
        self.log.info("%s: step %d -> %d (%s)", why, old, step, "closed" if step else "open")

    def tick(self, now: float, dt: float) -> None:
        if self.get("Mode") == 1:
            v = float(self.get("VMeasPu"))
            step, n = int(self.get("Step")), int(self.get("NSteps"))
            if v < self.get("VOnPu") and step < n:
                direction = 1
            elif v > self.get("VOffPu") and step > 0:
                direction = -1
            else:
                direction = 0
            if direction != self.direction:
                self.timer = 0.0
                self.direction = direction
            if direction:
                self.timer += dt
                if self.timer >= float(self.get("Delay")):
                    self._switch_to(step + direction, f"auto (V={v:.4f} pu)")
                    self.set("StepCmd", self.get("Step"))
                    self.timer = 0.0
        else:
            self.timer = 0.0
            self.direction = 0
        self._update()

    def _update(self) -> None:
        step = int(self.get("Step"))
        v = float(self.get("VMeasPu"))
        self.set("Status", 1 if step > 0 else 0)
        self.set("QOut", step * float(self.get("KvarPerStep")) * v * v)
        self.set("Timer", min(self.timer, 6553.0))

    def safe_default(self, now: float) -> None:
        self.set("Mode", 0)
        self.set("StepCmd", 0)
        self._switch_to(0, "watchdog safe default")
        self.timer = 0.0
        self._update()


if __name__ == "__main__":
    sys.exit(main(CapBankStub))
