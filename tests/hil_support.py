"""Helpers of the hardware-in-the-loop tests: firmware stubs on free loopback ports, always stopped."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"ready \S+ on (\S+):(\d+)")


def free_port() -> int:
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub:
    """A firmware stub subprocess on 127.0.0.1 (`port` 0 = any free port); `stop()` always ends it."""

    def __init__(self, kind: str, *args: str, port: int = 0, timeout: float = 20.0):
        self.kind, self.port, self.lines = kind, port, []
        self._ready = threading.Event()
        self.proc = subprocess.Popen([sys.executable, "-m", f"firmware_stubs.{kind}", "--port", str(port), *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, cwd=REPO)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"{kind} stub not ready:\n{''.join(self.lines)}")

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            m = READY.search(line)
            if m:
                self.port = int(m.group(2))
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
