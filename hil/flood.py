"""A bounded Modbus-TCP request flood (denial of service) against a loopback target, in a thread of its own.

One connection; at the start of every second a burst of that second's `rate_per_s` read requests
(capped at `FLOOD_MAX_RATE`), pipelined (sent at once, then their answers read), which keeps a
single-threaded server busy for a while, as a flooding client does. Stopped after `max_s`
seconds at the latest (capped at `FLOOD_MAX_S`) even if nobody calls `stop`. Only loopback hosts: anything else raises ValueError before a byte is sent.
It reads only, so it writes nothing to any device. The thread keeps the bridge's event loop free:
what the bridge notices (round trips, timeouts, stale steps) comes from the target being busy.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from cosim.scenario.devices import FLOOD_MAX_RATE, FLOOD_MAX_S
from hil.checks import is_loopback


class Flooder:
    """Sends FC3 / FC4 reads of `count` registers at `address` to host:port; see the module docstring."""

    def __init__(self, host: str, port: int, rate_per_s: float, max_s: float, unit: int = 1, fc: int = 3,
                 address: int = 0, count: int = 1, timeout: float = 0.5):
        if not is_loopback(host):
            raise ValueError(f"a flood is only sent to loopback targets (127.0.0.1, ::1, localhost), not {host}")
        self.host, self.port, self.unit, self.timeout = host, port, unit, timeout
        self.rate = min(rate_per_s, FLOOD_MAX_RATE)
        self.max_s = min(max_s, FLOOD_MAX_S)
        self.request = struct.pack(">BHH", fc, address, count)
        self.burst = max(1, round(self.rate))  # requests per second, sent at once
        self.sent = self.answered = self.timeouts = 0
        self.started_at = self.stopped_at = float("nan")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the flood thread is sending."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start sending (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"flood-{self.port}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop sending and wait for the thread (at most one request timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1.0)

    def _run(self) -> None:
        self.started_at = t0 = time.monotonic()
        deadline, gap = t0 + self.max_s, 1.0 / self.rate
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.settimeout(self.timeout)
                due, tid = t0, 0
                while not self._stop.is_set() and (now := time.monotonic()) < deadline:
                    if due > now:
                        self._stop.wait(due - now)
                        continue
                    due += gap * self.burst
                    frames = []
                    for _ in range(self.burst):
                        tid = (tid + 1) & 0xFFFF
                        frames.append(struct.pack(">HHHB", tid, 0, len(self.request) + 1, self.unit) + self.request)
                    sock.sendall(b"".join(frames))
                    self.sent += self.burst
                    for _ in range(self.burst):
                        if not self._answer(sock):
                            break
                        self.answered += 1
        except OSError:
            pass  # the target went away or refused: the flood ends, the bridge notices the rest
        finally:
            self.stopped_at = time.monotonic()

    def _answer(self, sock: socket.socket) -> bool:
        try:
            head = _exactly(sock, 7)
            _exactly(sock, struct.unpack(">H", head[4:6])[0] - 1)
            return True
        except socket.timeout:
            self.timeouts += 1
            return False


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
