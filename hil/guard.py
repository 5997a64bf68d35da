"""Safety guard between any controller and any device: allow-list, clamp, rate limit, read-only.

Pure logic, no I/O: the bridge asks `Guard.check` before every write and gets a `Decision` —
pass, clamped (the value to write differs from the one asked for) or blocked (nothing may be
written). The guard counts clamped and blocked requests and keeps, per point, the value the
device last held (`settle`), which is the base of the rate limit.

Rate limits have a budget that cannot accumulate: a decision may move a point at most
rate x dt from what the device holds, where dt is the time since the guard last decided on
that point or learnt what the device holds, and never more than `max_dt` (one step). Idle
time therefore buys no bigger jump. Times are seconds on the caller's clock: the bridge uses
simulated seconds in a run that is not paced and wall seconds in a real-time run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """Bounds of one writable point: [lo, hi] in engineering units and a maximum rate in units per second."""

    lo: float = -math.inf
    hi: float = math.inf
    rate: float | None = None


@dataclass(frozen=True)
class Decision:
    """What the guard allows for one requested write; `value` is None when the write is blocked."""

    device: str
    point: str
    asked: float
    value: float | None
    reason: str = ""

    @property
    def blocked(self) -> bool:
        return self.value is None

    @property
    def clamped(self) -> bool:
        return self.value is not None and self.value != self.asked

    @property
    def target(self) -> str:
        """`<device>.<point>`, the name events use."""
        return f"{self.device}.{self.point}"


class Guard:
    """The write policy of one device: only allow-listed points, within their rules, never in read-only mode."""

    def __init__(self, device: str, writable: Iterable[str], rules: Mapping[str, Rule] | None = None,
                 read_only: bool = False, max_dt: float = 1.0):
        self.device = device
        self.writable = frozenset(writable)
        self.rules = dict(rules or {})
        unknown = set(self.rules) - self.writable
        if unknown:
            raise ValueError(f"{device}: rules for points outside the allow-list: {sorted(unknown)}")
        self.read_only = read_only
        self.max_dt = max_dt  # the most time one decision may spend of a rate budget: one step of the caller
        self.blocked = 0
        self.clamped = 0
        self._held: dict[str, float] = {}  # point -> value the device holds
        self._seen: dict[str, float] = {}  # point -> when the guard last decided on it or settled it
        self.on_decision: Callable[[Decision], None] | None = None  # e.g. the run's audit record

    def check(self, point: str, value: float, now: float) -> Decision:
        """The decision on writing `value` to `point` at time `now` (counted when clamped or blocked)."""
        decision = self._decide(point, value, now)
        if decision.value is not None:
            self._seen[point] = max(now, self._seen.get(point, now))
        if decision.blocked:
            self.blocked += 1
        elif decision.clamped:
            self.clamped += 1
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision

    def check_input(self, point: str, value: float) -> Decision:
        """A physics input the co-simulation feeds an emulated device: blocked only in read-only mode."""
        if self.read_only:
            self.blocked += 1
            return Decision(self.device, point, value, None, "read-only mode")
        return Decision(self.device, point, value, value)

    def settle(self, point: str, value: float, now: float) -> None:
        """Note that the device holds `value` at `now` (after a verified write, or as read at start)."""
        self._held[point] = float(value)
        self._seen[point] = max(now, self._seen.get(point, now))

    def held(self, point: str) -> float | None:
        """The value the device last held for `point`, if known."""
        return self._held.get(point)

    def _decide(self, point: str, value: float, now: float) -> Decision:
        asked = float(value)
        if self.read_only:
            return Decision(self.device, point, asked, None, "read-only mode")
        if point not in self.writable:
            allowed = ", ".join(sorted(self.writable)) or "nothing"
            return Decision(self.device, point, asked, None, f"not in the allow-list (writable: {allowed})")
        if not math.isfinite(asked):
            return Decision(self.device, point, asked, None, f"{asked} is not a finite number")
        rule = self.rules.get(point)
        if rule is None:
            return Decision(self.device, point, asked, asked)
        out, reasons = asked, []
        if out < rule.lo or out > rule.hi:
            out = min(max(out, rule.lo), rule.hi)
            reasons.append(f"limits [{rule.lo:g}, {rule.hi:g}]")
        last = self._held.get(point)
        if rule.rate is not None and last is not None:
            step = rule.rate * min(max(0.0, now - self._seen[point]), self.max_dt)
            # never outside the limits, even when the device holds a value beyond them
            limited = min(max(min(max(out, last - step), last + step), rule.lo), rule.hi)
            if limited != out:
                out = limited
                reasons.append(f"rate {rule.rate:g}/s")
        return Decision(self.device, point, asked, out, " and ".join(reasons))
