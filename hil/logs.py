"""Logs of the servers (firmware stubs, grid server) that a hostile client cannot flood: a rate limit per logger.

A `RateLimit` filter passes a burst of records, then at most `rate` per second; the first record
over the limit says so, and what it drops is counted in the next record that passes, so a fuzzer
sending thousands of malformed frames costs a few lines a second, not ~700 bytes a frame.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path


class RateLimit(logging.Filter):
    """Token bucket over the records of one logger: `burst` at once, `rate` per second after that."""

    def __init__(self, rate: float = 20.0, burst: int = 100):
        super().__init__()
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.last, self.dropped, self.limited = float(burst), time.monotonic(), 0, False

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            if self.dropped:
                _append(record, f"({self.dropped} messages dropped by the rate limit before this one)")
            self.dropped, self.limited = 0, False
            return True
        if not self.limited:  # say once that the limit set in, so a flood is never silent
            self.limited = True
            _append(record, f"(rate limit of {self.rate:g} messages/s reached: further ones are dropped and counted)")
            return True
        self.dropped += 1
        return False


def _append(record: logging.LogRecord, text: str) -> None:
    record.msg, record.args = f"{record.getMessage()} {text}", None


def rate_limited(log: logging.Logger) -> logging.Logger:
    """`log` with one `RateLimit` filter (added once, however many servers share the logger)."""
    if not any(isinstance(f, RateLimit) for f in log.filters):
        log.addFilter(RateLimit())
    return log


@contextlib.contextmanager
def to_file(name: str, path: Path) -> Iterator[logging.Logger]:
    """Logger `name` writes to `path` (not to the terminal) for the duration: a server inside the run's process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(name)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield log
    finally:
        log.removeHandler(handler)
        handler.close()
        log.propagate = True
