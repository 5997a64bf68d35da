"""IEEE 1547-2018 behaviour of the inverter stub: curves with an open-loop response time, trips and enter service.

Pure logic, no registers: :func:`curve` (a piecewise-linear volt-var / volt-watt curve),
:func:`lag` (the first-order response whose open-loop response time is the standard's: 90 %
of a step after ``t_ol`` seconds), :data:`TRIPS` (fixed trip settings, abnormal-performance
Category II voltage and the frequency defaults, frequency scaled to the nominal one) and
:class:`Protection` (trip timers, event bits, enter-service delay and ramp). The inverter stub
(:mod:`firmware_stubs.inverter`) reads the settings from its models 705/706 and applies them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

#: SunSpec event bits (model 103 Evt1 and model 701 Alrm share them)
EVT_OVER_FREQUENCY, EVT_UNDER_FREQUENCY, EVT_AC_OVER_VOLT, EVT_AC_UNDER_VOLT = 1 << 8, 1 << 9, 1 << 10, 1 << 11

#: below this terminal voltage (pu) the DER ceases to energize at once (momentary cessation)
CESSATION_PU = 0.5


@dataclass(frozen=True)
class Trip:
    """One fixed trip setting: level in pu of the nominal voltage or frequency, clearing time in s."""

    name: str
    quantity: str  # "v" or "f"
    over: bool
    level: float
    clear_s: float
    bit: int


#: IEEE 1547-2018 default trip settings: voltage Table 11 (Category II), frequency Table 15
#: (60 Hz values as a fraction of nominal, so they scale to a 50 Hz system)
TRIPS: tuple[Trip, ...] = (
    Trip("OV2", "v", True, 1.20, 0.16, EVT_AC_OVER_VOLT),
    Trip("OV1", "v", True, 1.10, 2.0, EVT_AC_OVER_VOLT),
    Trip("UV1", "v", False, 0.70, 10.0, EVT_AC_UNDER_VOLT),
    Trip("UV2", "v", False, 0.45, 0.16, EVT_AC_UNDER_VOLT),
    Trip("OF2", "f", True, 62.0 / 60.0, 0.16, EVT_OVER_FREQUENCY),
    Trip("OF1", "f", True, 61.2 / 60.0, 300.0, EVT_OVER_FREQUENCY),
    Trip("UF1", "f", False, 58.5 / 60.0, 300.0, EVT_UNDER_FREQUENCY),
    Trip("UF2", "f", False, 56.5 / 60.0, 0.16, EVT_UNDER_FREQUENCY),
)

#: enter-service window (IEEE 1547-2018 Table 4 defaults): voltage 0.917..1.05 pu, 59.5..60.1 Hz
ES_V = (0.917, 1.05)
ES_F = (59.5 / 60.0, 60.1 / 60.0)


def curve(points: Sequence[tuple[float, float]], x: float) -> float:
    """The piecewise-linear curve through ``points`` (sorted by x) at ``x``, flat beyond its ends."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in pairwise(points):
        if x <= x1:
            return y1 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def lag(y: float, target: float, dt: float, t_ol: float) -> float:
    """One step of a first-order response reaching 90 % of a step after the open-loop response time ``t_ol``."""
    if t_ol <= 0:
        return target
    return target + (y - target) * math.exp(-dt * math.log(10.0) / t_ol)


class Protection:
    """Trip timers, event bits and the enter-service delay and ramp of one DER."""

    def __init__(self, es_delay: float, es_ramp: float):
        self.es_delay, self.es_ramp = es_delay, es_ramp
        self.timers = {t.name: 0.0 for t in TRIPS}
        self.events = 0
        self.tripped = False
        self.ok_s = 0.0  # time within the enter-service window while out of service
        self.level = 1.0  # enter-service ramp: fraction of WMax allowed (starts in service)
        self.ramping = False

    def stop(self) -> None:
        """Out of service (disconnected or tripped): the next entry waits for the delay and ramps."""
        self.level, self.ok_s, self.ramping = 0.0, 0.0, False

    def update(self, v_pu: float, f_pu: float, connected: bool, dt: float) -> None:
        """Advance the trip timers and the enter-service state by ``dt`` seconds."""
        for t in TRIPS:
            x = v_pu if t.quantity == "v" else f_pu
            beyond = x > t.level if t.over else x < t.level
            self.timers[t.name] = self.timers[t.name] + dt if beyond else 0.0
            if beyond and self.timers[t.name] >= t.clear_s - 1e-9 and not self.tripped:
                self.tripped, self.events = True, self.events | t.bit
                self.stop()
        if not connected:
            self.stop()
            return
        if self.level >= 1.0 and not self.tripped:
            return
        in_window = ES_V[0] <= v_pu <= ES_V[1] and ES_F[0] <= f_pu <= ES_F[1]
        if not self.ramping:
            self.ok_s = self.ok_s + dt if in_window else 0.0
            if self.ok_s >= self.es_delay - 1e-9:
                self.tripped, self.events, self.ramping = False, 0, True
            return
        self.level = 1.0 if self.es_ramp <= 0 else min(1.0, self.level + dt / self.es_ramp)
        self.ramping = self.level < 1.0

    @property
    def faulted(self) -> bool:
        """Tripped, with voltage or frequency still outside the enter-service window."""
        return self.tripped and self.ok_s == 0.0

    @property
    def starting(self) -> bool:
        """Waiting for the enter-service delay (output held at 0)."""
        return self.level <= 0.0 and not self.ramping
