"""Durations written as `24h`, `1min`, `30s`, `100ms`, `2d` (or plain seconds) to seconds."""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|min|h|d)\s*$")


def parse_duration(value: object) -> float:
    """Return seconds for a number (seconds) or a string with a unit ms, s, min, h or d."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15min, 24h, 30s or 2d")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * UNITS[match.group(2)]
        sign = value.strip().startswith("-")
        hint = " (durations cannot be negative)" if sign else ""
        raise ValueError(
            f"expected a duration such as 15min, 24h, 30s or 100ms (units ms, s, min, h, d), got {value!r}{hint}"
        )
    raise ValueError(f"expected a duration such as 15min, 24h, 30s or 2d, got {type(value).__name__}")


def format_duration(seconds: float) -> str:
    """Shortest exact spelling of a duration in seconds, for messages and reports."""
    for unit in ("d", "h", "min"):
        size = UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    ms = seconds * 1000.0
    if seconds < 1.0 and ms == round(ms):
        return f"{round(ms)}ms"
    return f"{seconds:g}s"


def milliseconds(seconds: float) -> int | None:
    """`seconds` as a whole number of milliseconds, None if it is not one (to float rounding)."""
    ms = round(seconds * 1000.0)
    return ms if abs(seconds * 1000.0 - ms) < 1e-6 * max(1.0, abs(ms)) else None


def steps_in(seconds: float, step: float) -> int:
    """Whole steps of `step` seconds in `seconds` (rounded down), exact in milliseconds: 0.3 s of 0.1 s is 3."""
    a, b = milliseconds(seconds), milliseconds(step)
    if a is not None and b:
        return a // b
    return int(seconds / step + 1e-9)


def is_whole_steps(seconds: float, step: float) -> bool:
    """Whether `seconds` is a whole number of steps of `step` seconds (exact in milliseconds)."""
    a, b = milliseconds(seconds), milliseconds(step)
    return a is not None and bool(b) and a % b == 0
