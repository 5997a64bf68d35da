"""The behaviour of an emulated device: the `DeviceStub` base class, its firmware tick and its watchdog.

A device subclasses :class:`DeviceStub`: ``setup`` (apply the nameplate), ``validate_write``
(device-specific rejection, raise :class:`WriteRejected`), ``on_write`` (react to an applied
write), ``tick`` (the firmware loop, every ``--tick`` seconds) and ``safe_default`` (what the
communication watchdog does). :func:`tick_loop` runs the ticks and increments a ``Heartbeat``
point if the map has one; :class:`Watchdog` calls ``safe_default`` when no master request has
arrived for its timeout and counts expiries in a ``WdgCount`` point if the map has one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any, ClassVar

from pymodbus.constants import ExcCodes

from firmware_stubs.image import RegisterImage


class WriteRejected(Exception):
    """Raised by device logic to refuse a write; carries the Modbus exception code."""

    def __init__(self, reason: str, code: ExcCodes = ExcCodes.ILLEGAL_VALUE):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def fit_sf(max_abs: float, type_max: int = 32767, lo: int = -3, hi: int = 10) -> int:
    """Smallest SunSpec scale factor in lo..hi so that ``max_abs`` fits ``type_max``."""
    for sf in range(lo, hi + 1):
        if abs(max_abs) / (10.0**sf) <= type_max:
            return sf
    return hi


class DeviceStub:
    """Base class of a device's firmware logic (subclass per device)."""

    #: device name (used in logs and as ``python -m firmware_stubs.<name>``)
    name: ClassVar[str] = "device"
    #: map file name in ``hil/maps``
    map_file: ClassVar[str] = ""
    #: one-line description for ``--help``
    description: ClassVar[str] = ""

    def __init__(self, image: RegisterImage, options: argparse.Namespace, log: logging.Logger):
        self.image = image
        self.options = options
        self.log = log

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add device-specific command-line options."""

    def setup(self, now: float) -> None:
        """Apply nameplate options to the image (called once before serving)."""

    def validate_write(self, values: dict[str, Any], now: float) -> None:
        """Raise :class:`WriteRejected` to refuse a write (values already range-checked)."""

    def on_write(self, values: dict[str, Any], now: float) -> None:
        """React to an applied write of ``values`` (engineering units)."""

    def tick(self, now: float, dt: float) -> None:
        """Firmware loop body, called every tick with the monotonic time."""

    def safe_default(self, now: float) -> None:
        """Go to the safe default state (communication watchdog expired)."""

    def get(self, name: str) -> Any:
        """A point's engineering value."""
        return self.image.get(name)

    def set(self, name: str, value: Any) -> None:
        """Set a point's engineering value."""
        self.image.set(name, value)


async def tick_loop(device: DeviceStub, interval: float, log: logging.Logger) -> None:
    """Call ``device.tick`` every `interval` seconds (without catching up after a stall); bump ``Heartbeat``."""
    image = device.image
    last = time.monotonic()
    nxt = last + interval
    heartbeat = "Heartbeat" in image.map
    while True:
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
        now = time.monotonic()
        nxt += interval
        if nxt < now:  # fell behind (e.g. suspended): do not try to catch up
            nxt = now + interval
        dt, last = now - last, now
        try:
            device.tick(now, dt)
        except Exception:  # noqa: BLE001 - keep the firmware loop alive
            log.exception("device tick failed")
        if heartbeat:
            image.set_raw("Heartbeat", [(image.raw("Heartbeat")[0] + 1) & 0xFFFF])


class Watchdog:
    """Communication watchdog: ``device.safe_default`` once `timeout` seconds pass without a master request."""

    def __init__(self, device: DeviceStub, timeout: float, log: logging.Logger):
        self.device, self.timeout, self.log = device, timeout, log
        self.last_request = time.monotonic()
        self.tripped = False

    def alive(self) -> None:
        """A master request for this device arrived."""
        self.last_request = time.monotonic()
        if self.tripped:
            self.tripped = False
            self.log.info("watchdog: master requests resumed")

    async def run(self) -> None:
        """Check every tenth of the timeout (at most 0.1 s) until cancelled."""
        image = self.device.image
        while True:
            await asyncio.sleep(min(0.1, self.timeout / 10))
            now = time.monotonic()
            if self.tripped or now - self.last_request <= self.timeout:
                continue
            self.tripped = True
            if "WdgCount" in image.map:
                image.set("WdgCount", (int(image.get("WdgCount")) + 1) & 0xFFFF)
            self.log.warning("watchdog: no master request for %.1f s -> safe default", now - self.last_request)
            try:
                self.device.safe_default(now)
            except Exception:  # noqa: BLE001
                self.log.exception("device safe_default failed")
