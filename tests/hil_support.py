"""Helpers of the hardware-in-the-loop tests: firmware stubs on free loopback ports (always stopped), and an
in-process Modbus-TCP server of a plain register bank."""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"ready \S+ on (\S+):(\d+)")


def free_port() -> int:
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub:
    """A firmware stub subprocess on 127.0.0.1 (`port` 0 = any free port); stderr is collected by a
    reader thread, and `stop()` always ends the process."""

    def __init__(self, device: str, *args: str, port: int = 0, timeout: float = 20.0):
        self.device, self.host, self.port = device, "127.0.0.1", port
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.proc = subprocess.Popen([sys.executable, "-m", f"firmware_stubs.{device}", "--port", str(port), *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, cwd=REPO)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"{device} stub not ready:\n{self.log}")

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            m = READY.search(line)
            if m and not self._ready.is_set():
                self.host, self.port = m.group(1), int(m.group(2))
                self._ready.set()
        self._ready.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        return self.proc.returncode


def inverter_scenario(name: str, duration: str, controller: str = "{kind: droop}", port: int | None = None,
                      seed: int = 3, emulate: bool = True, device: str = "") -> str:
    """IEEE 33 at noon at half load, 1 MW of PV at bus 18 behind inverter inv1 on 127.0.0.1 (a free port unless
    given), 1-s steps; `device` adds keys to inv1's block."""
    return textwrap.dedent(f"""\
        name: {name}
        seed: {seed}
        clock: {{start: "2025-06-21T12:00:00", duration: {duration}, step: 1s}}
        grid: {{feeder: ieee33}}
        loads: {{profile: constant, scale: 0.5}}
        generators:
          - {{name: pv1, kind: pv, bus: 18, p_mw: 1.0, cloudiness: 0.0}}
        controller: {controller}
        devices:
          - name: inv1
            kind: inverter
            bus: 18
            modbus: {{port: {port or free_port()}, timeout: 0.3}}
            emulate: {str(emulate).lower()}
        """) + textwrap.indent(textwrap.dedent(device), "    ")


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.asynccontextmanager
async def register_bank(regs: dict[int, int], writable: set[int] | None = None) -> AsyncIterator[AsyncModbusTcpClient]:
    """A real Modbus-TCP server on 127.0.0.1 holding exactly `regs` (address -> value; `writable`: default all),
    served by the firmware-stub server without device logic, and a pymodbus client connected to it."""
    from firmware_stubs.device import DeviceStub
    from firmware_stubs.image import RegisterImage
    from firmware_stubs.server import StubServer
    from hil.registers import parse_map

    points = [{"name": f"r{a}", "address": a, "type": "uint16",
               "access": "rw" if writable is None or a in writable else "r"} for a in sorted(regs)]
    image = RegisterImage(parse_map({"device": "bank", "points": points}))
    image.regs.update({a: v & 0xFFFF for a, v in regs.items()})
    server = StubServer(DeviceStub(image, argparse.Namespace(), logging.getLogger("bank")), port=0)
    host, port = await server.start()
    client = AsyncModbusTcpClient(host, port=port, timeout=2, retries=0)
    try:
        assert await client.connect()
        yield client
    finally:
        client.close()
        await server.stop()


def run_alongside(scenario, out: Path, client, realtime: float = 0.1, join_s: float = 20.0):
    """Run `scenario` (a path or a loaded scenario) paced by `realtime` while `client()` (a SCADA, an attacker)
    runs in a thread; returns the run's outcome once both are done."""
    from cosim.assembly import RunOptions
    from cosim.runner import run_scenario
    from cosim.scenario.loader import load_scenario

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    loaded = load_scenario(scenario) if isinstance(scenario, Path) else scenario
    outcome = run_scenario(loaded, out, options=RunOptions(realtime=realtime))
    thread.join(timeout=join_s)
    return outcome
