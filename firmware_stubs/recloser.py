"""Recloser / circuit-breaker controller firmware stub.

Register map: ``hil/maps/recloser.yaml`` (holding registers from 0).  The
co-simulation writes the line/fault current ``FaultA`` (float32 at 14) and
reads ``Status`` (0); the heartbeat is at 20, the watchdog counter at 21.

* ``OpenCmd`` / ``CloseCmd`` / ``ResetCmd`` are pulse registers: write 1, the
  command runs at once and the register reads back 0.
* Protection: ``FaultA >= PickupA`` for ``TripDelay`` s while closed trips the
  breaker (open, ``Tripped=1``).  ``TripsToLockout`` trips within
  ``ResetTime`` s cause a lockout: ``CloseCmd`` is then rejected with
  ILLEGAL_VALUE (0x03) (and auto-reclose stops) until ``ResetCmd``.
* ``AutoReclose=1``: the controller recloses ``ReclDelay`` s after a trip.
* Safe default (watchdog): keep the present state; close stays refused while
  locked out.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from typing import Any

from .cli import main
from .device import DeviceStub, WriteRejected


class RecloserStub(DeviceStub):
    name = "recloser"
    map_file = "recloser.yaml"
    description = "Recloser / breaker controller firmware stub (Modbus-TCP)"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--trips-to-lockout", type=int, default=3, help="trips within the reset time to lock out (default 3)")
        parser.add_argument("--reset-time", type=int, default=60, help="trip-counter reset time in s (default 60)")
        parser.add_argument("--pickup", type=float, default=600.0, help="trip pickup current in A (default 600)")
        parser.add_argument("--open", action="store_true", help="start with the breaker open")

    def setup(self, now: float) -> None:
        o = self.options
        if not 1 <= o.trips_to_lockout <= 10:
            raise ValueError("--trips-to-lockout must be in 1..10")
        self.set("TripsToLockout", o.trips_to_lockout)
        self.set("ResetTime", o.reset_time)
        self.set("PickupA", o.pickup)
        self.set("Status", 0 if o.open else 1)
        self.trips: deque[float] = deque()
        self.over_time = 0.0
        self.reclose_at: float | None = None

    def validate_write(self, values: dict[str, Any], now: float) -> None:
        if values.get("CloseCmd") == 1 and self.get("Lockout") and values.get("ResetCmd") != 1:
            raise WriteRejected("close refused: recloser is locked out (write ResetCmd=1 first)")

    def on_write(self, values: dict[str, Any], now: float) -> None:
        if values.get("ResetCmd") == 1:
            self.trips.clear()
            was = self.get("Lockout")
            self.set("Lockout", 0)
            self.set("TripCount", 0)
            self.log.info("reset%s", ": lockout cleared" if was else "")
        if values.get("CloseCmd") == 1:
            self._close(now, "close command")
        if values.get("OpenCmd") == 1:
            self.reclose_at = None
            self._open("open command", trip=False)
        for cmd in ("OpenCmd", "CloseCmd", "ResetCmd"):
            if cmd in values:
                self.set(cmd, 0)

    def _open(self, why: str, trip: bool) -> None:
        if self.get("Status") == 1:
            self.set("OpCount", int(self.get("OpCount")) + 1)
        self.set("Status", 0)
        self.set("Tripped", 1 if trip else 0)
        self.log.info("%s: breaker open", why)

    def _close(self, now: float, why: str) -> None:
        if self.get("Status") == 0:
            self.set("OpCount", int(self.get("OpCount")) + 1)
        self.set("Status", 1)
        self.set("Tripped", 0)
        self.over_time = 0.0
        self.reclose_at = None
        self.log.info("%s: breaker closed", why)

    def _trip(self, now: float) -> None:
        self.trips.append(now)
        self.set("TripTotal", int(self.get("TripTotal")) + 1)
        self._open(f"trip #{len(self.trips)} (I={self.get('FaultA'):.1f} A >= {self.get('PickupA'):.1f} A)", trip=True)
        if len(self.trips) >= int(self.get("TripsToLockout")):
            self.set("Lockout", 1)
            self.reclose_at = None
            self.log.warning("LOCKOUT after %d trips within %s s", len(self.trips), self.get("ResetTime"))
        elif self.get("AutoReclose"):
            self.reclose_at = now + float(self.get("ReclDelay"))
        self.set("TripCount", len(self.trips))

    def tick(self, now: float, dt: float) -> None:
        reset = float(self.get("ResetTime"))
        while self.trips and now - self.trips[0] > reset and not self.get("Lockout"):
            self.trips.popleft()
        self.set("TripCount", len(self.trips))
        if self.get("Status") == 1 and float(self.get("FaultA")) >= float(self.get("PickupA")):
            self.over_time += dt
            if self.over_time >= float(self.get("TripDelay")):
                self.over_time = 0.0
                self._trip(now)
        else:
            self.over_time = 0.0
        if self.reclose_at is not None and now >= self.reclose_at:
            self.reclose_at = None
            if not self.get("Lockout") and self.get("Status") == 0:
                self._close(now, "auto-reclose")

    def safe_default(self, now: float) -> None:
        self.log.info(
            "watchdog safe default: keep state (%s%s)",
            "closed" if self.get("Status") else "open",
            ", locked out" if self.get("Lockout") else "",
        )


if __name__ == "__main__":
    sys.exit(main(RecloserStub))
