"""Durations written as `24h`, `1min`, `30s`, `2d` (or plain seconds) to seconds."""

from __future__ import annotations

import re

UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|min|h|d)\s*$")


def parse_duration(value: object) -> float:
    """Return seconds for a number (seconds) or a string with a unit s, min, h or d."""
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
            f"expected a duration such as 15min, 24h, 30s or 2d (units s, min, h, d), got {value!r}{hint}"
        )
    raise ValueError(f"expected a duration such as 15min, 24h, 30s or 2d, got {type(value).__name__}")


def format_duration(seconds: float) -> str:
    """Shortest exact spelling of a duration in seconds, for messages and reports."""
    for unit in ("d", "h", "min"):
        size = UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
