"""The wall-clock schedule of a real-time run, and how late each step was against it.

With `--realtime F` one step of `step_s` simulated seconds takes `period = step_s * F` wall
seconds (the pacer simulator holds each step until its release time). Step k is released at
t0 + k * period and is due by
the end of its slot, t0 + (k + 1) * period. Its lateness is its completion time (when the
recorder has stored it) minus that deadline: negative is slack, positive is a deadline miss
(the textbook definition of lateness). metrics.json gets p50, p99 and max in ms and the count
of misses.
"""

from __future__ import annotations

import time

import numpy as np


class WallClock:
    """Release times and lateness of the steps of one real-time run."""

    def __init__(self, step_s: float, rt_factor: float):
        self.period = float(step_s) * float(rt_factor)
        self.t0 = time.perf_counter()
        self.lateness: list[float] = []

    def start(self) -> None:
        """Step 0 is released now."""
        self.t0 = time.perf_counter()

    def release(self, k: int) -> float:
        """When step k may start (perf_counter seconds)."""
        return self.t0 + k * self.period

    def finished(self, k: int) -> None:
        """Step k is complete: note its lateness."""
        self.lateness.append(time.perf_counter() - (self.t0 + (k + 1) * self.period))

    def metrics(self) -> dict[str, float]:
        """rt_lateness_p50_ms / _p99_ms / _max_ms and rt_deadline_misses."""
        late = np.asarray(self.lateness) * 1000.0
        if not late.size:
            return {}
        return {"rt_period_ms": self.period * 1000.0, "rt_lateness_p50_ms": float(np.percentile(late, 50)),
                "rt_lateness_p99_ms": float(np.percentile(late, 99)), "rt_lateness_max_ms": float(late.max()),
                "rt_deadline_misses": int((late > 0).sum())}
