"""Voltage regulator / on-load tap changer controller firmware stub.

Register map: ``hil/maps/regulator.yaml`` (holding registers from 0).  The
co-simulation writes the regulated-side voltage ``VMeasPu`` (float32 at 9)
and applies ``Tap`` (int16 at 0) with ``TapStepPct`` (at 8) to its
transformer model; the heartbeat is at 15, the watchdog counter at 16.

* Auto mode (``Mode=1``): when ``|VMeasPu - VSetPu| > BandwidthPu / 2`` for
  ``Delay`` s the tap moves one position towards the band (tap up raises the
  voltage) and the timer restarts; back in the band the timer resets.  At a
  tap limit the controller waits.
* Manual mode (``Mode=0``): the tap goes to ``TapCmd`` at once; ``TapCmd``
  outside ``TapMin..TapMax`` or written in auto mode is rejected with
  ILLEGAL_VALUE (0x03).
* Safe default (watchdog): hold the present tap and return to auto mode.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli import main
from .device import DeviceStub, WriteRejected


class RegulatorStub(DeviceStub):
    name = "regulator"
    map_file = "regulator.yaml"
    description = "Voltage regulator / OLTC controller firmware stub (Modbus-TCP)"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tap-min", type=int, default=-16, help="lowest tap (default -16)")
        parser.add_argument("--tap-max", type=int, default=16, help="highest tap (default 16)")
        parser.add_argument("--tap-step-pct", type=float, default=0.625, help="voltage per tap in %% (default 0.625)")
        parser.add_argument("--v-set", type=float, default=1.0, help="voltage setpoint in pu (default 1.0)")
        parser.add_argument("--bandwidth", type=float, default=0.02, help="total bandwidth in pu (default 0.02)")
        parser.add_argument("--delay", type=float, default=30.0, help="time delay in s (default 30)")
        parser.add_argument("--mode", choices=["manual", "auto"], default="auto", help="initial mode (default auto)")

    def setup(self, now: float) -> None:
        o = self.options
        if not -32 <= o.tap_min <= 0 <= o.tap_max <= 32:
            raise ValueError("need -32 <= --tap-min <= 0 <= --tap-max <= 32")
        self.set("TapMin", o.tap_min)
        self.set("TapMax", o.tap_max)
        self.set("TapStepPct", o.tap_step_pct)
        self.set("VSetPu", o.v_set)
        self.set("BandwidthPu", o.bandwidth)
        self.set("Delay", o.delay)
        self.set("Mode", 1 if o.mode == "auto" else 0)
        self.timer = 0.0
        self.direction = 0

    def validate_write(self, values: dict[str, Any], now: float) -> None:
        mode = values.get("Mode", self.get("Mode"))
        if "TapCmd" in values:
            cmd = values["TapCmd"]
            if mode == 1 and cmd != self.get("Tap"):
                raise WriteRejected("TapCmd is only accepted in manual mode")
            if not self.get("TapMin") <= cmd <= self.get("TapMax"):
                raise WriteRejected(f"TapCmd={cmd} outside {self.get('TapMin')}..{self.get('TapMax')}")

    def on_write(self, values: dict[str, Any], now: float) -> None:
        if values.get("Mode") == 0:
            self.set("TapCmd", self.get("Tap"))
        if "TapCmd" in values and self.get("Mode") == 0:
            self._tap_to(int(values["TapCmd"]), "manual")
        if "Mode" in values:
            self.timer = 0.0

    def _tap_to(self, tap: int, why: str) -> None:
        old = int(self.get("Tap"))
        tap = max(int(self.get("TapMin")), min(int(self.get("TapMax")), tap))
        if tap == old:
            return
        self.set("Tap", tap)
        self.set("TapOps", int(self.get("TapOps")) + abs(tap - old))
        self.log.info("%s: tap %d -> %d", why, old, tap)

    def tick(self, now: float, dt: float) -> None:
        v = float(self.get("VMeasPu"))
        err = v - float(self.get("VSetPu"))
        half = float(self.get("BandwidthPu")) / 2.0
        band = 1 if err > half else (-1 if err < -half else 0)
        self.set("BandStatus", band)
        if self.get("Mode") == 1:
            direction = -band
            tap = int(self.get("Tap"))
            at_limit = (direction > 0 and tap >= self.get("TapMax")) or (direction < 0 and tap <= self.get("TapMin"))
            if direction != self.direction:
                self.timer = 0.0
                self.direction = direction
            if direction and not at_limit:
                self.timer += dt
                if self.timer >= float(self.get("Delay")):
                    self._tap_to(tap + direction, f"auto (V={v:.4f} pu, band {self.get('VSetPu')}+-{half:g})")
                    self.set("TapCmd", self.get("Tap"))
                    self.timer = 0.0
            else:
                self.timer = 0.0
        else:
            self.timer = 0.0
            self.direction = 0
        self.set("Timer", min(self.timer, 6553.0))

    def safe_default(self, now: float) -> None:
        self.set("TapCmd", self.get("Tap"))
        if self.get("Mode") != 1:
            self.log.info("watchdog safe default: hold tap %d, auto mode", self.get("Tap"))
        self.set("Mode", 1)
        self.timer = 0.0


if __name__ == "__main__":
    sys.exit(main(RegulatorStub))
