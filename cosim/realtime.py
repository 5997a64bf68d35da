"""The wall-clock schedule of a real-time run, how late each step was against it, and where the time went.

With `--realtime F` one step of `step_s` simulated seconds takes `period = step_s * F` wall
seconds (the pacer simulator holds each step until its release time). Step k is released at
t0 + k * period and is due by
the end of its slot, t0 + (k + 1) * period. Its lateness is its completion time (when the
recorder has stored it) minus that deadline: negative is slack, positive is a deadline miss
(the textbook definition of lateness). metrics.json gets p50, p99 and max in ms and the count
of misses.

Garbage collection: a full (generation 2) collection of CPython scans every tracked object of
the process, and a co-simulation process holds millions (pandapower, scipy, mosaik, the
scenario): 150-430 ms measured on the 2-core test machine, three times the slack of a 100 ms
step. So `start` collects once and freezes the heap (`gc.freeze()`) before step 0: what exists
then is never scanned again, and a full collection during the run scans only what the run
allocated since. `stop` unfreezes it. Every collection during the run is timed (`gc.callbacks`),
and the pacer notes how late it woke; metrics.json gets `rt_gc_pause_max_ms`,
`rt_gc_full_collections`, `rt_wake_lag_max_ms` and, for the latest step, `rt_worst_step` with its
`rt_worst_step_gc_ms` and `rt_worst_step_wake_lag_ms` (the time series has each step's
`bridge.step_ms`, the device I/O).
"""

from __future__ import annotations

import gc
import math
import time

import numpy as np


class WallClock:
    """Release times, lateness and GC pauses of the steps of one real-time run."""

    def __init__(self, step_s: float, rt_factor: float):
        self.period = float(step_s) * float(rt_factor)
        self.t0 = time.perf_counter()
        self.lateness: list[float] = []
        self.gc_s: list[float] = []  # time in garbage collection per step
        self.wake_lag: dict[int, float] = {}  # step -> how late the pacer released it
        self.gc_max_s = 0.0
        self.gc_full = 0
        self._gc_step = 0.0
        self._gc_at = 0.0
        self._frozen = False

    def start(self) -> None:
        """Collect and freeze the heap set up so far (see the module docstring); step 0 is released now."""
        if not self._frozen:
            gc.collect()
            gc.freeze()
            gc.callbacks.append(self._gc)
            self._frozen = True
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        """The run is over: the heap is collectable again, collections no longer timed."""
        if self._frozen:
            gc.callbacks.remove(self._gc)
            gc.unfreeze()
            self._frozen = False

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_at = time.perf_counter()
            return
        pause = time.perf_counter() - self._gc_at
        self._gc_step += pause
        self.gc_max_s = max(self.gc_max_s, pause)
        self.gc_full += info.get("generation") == 2

    def release(self, k: int) -> float:
        """When step k may start (perf_counter seconds)."""
        return self.t0 + k * self.period

    def woke(self, k: int) -> None:
        """The pacer released step k now (its lag behind the release time is noted)."""
        self.wake_lag[k] = time.perf_counter() - self.release(k)

    def finished(self, k: int) -> None:
        """Step k is complete: note its lateness and the GC time since the step before."""
        self.lateness.append(time.perf_counter() - (self.t0 + (k + 1) * self.period))
        self.gc_s.append(self._gc_step)
        self._gc_step = 0.0

    def metrics(self) -> dict[str, float]:
        """rt_lateness_p50_ms / _p99_ms / _max_ms, rt_deadline_misses, and the GC and wake-up figures."""
        late = np.asarray(self.lateness) * 1000.0
        if not late.size:
            return {}
        worst = int(late.argmax())
        return {"rt_period_ms": self.period * 1000.0, "rt_lateness_p50_ms": float(np.percentile(late, 50)),
                "rt_lateness_p99_ms": float(np.percentile(late, 99)), "rt_lateness_max_ms": float(late.max()),
                "rt_deadline_misses": int((late > 0).sum()),
                "rt_gc_pause_max_ms": self.gc_max_s * 1000.0, "rt_gc_full_collections": self.gc_full,
                "rt_wake_lag_max_ms": max(self.wake_lag.values(), default=math.nan) * 1000.0,
                "rt_worst_step": worst, "rt_worst_step_gc_ms": self.gc_s[worst] * 1000.0,
                "rt_worst_step_wake_lag_ms": self.wake_lag.get(worst, math.nan) * 1000.0}
