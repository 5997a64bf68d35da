"""Local curve control shared by volt-var and volt-watt: each DER reacts to its own bus voltage only.

A piecewise-linear characteristic maps the DER's bus voltage to a fraction of its rating, and
each setpoint follows it as a first-order lag. A kind with an open-loop response time in IEEE
1547-2018 (volt-var: 5 s, adjustable 1-90 s) reaches 90 % of a step change within that time at
whatever step the scenario uses: per step it moves `1 - 10**(-step / response_time)` of the way,
the exact sample of the continuous lag with time constant `response_time / ln 10`.

`gain` caps that share per step (default 0.5). Setpoints act one step later, so at steps much
longer than the response time a full jump each step is a sampled loop that can oscillate where
the real, continuous loop settles (IEEE 33 at 5-min steps under high PV: Q alternating between
-0.97 and 0 Mvar, violations 240 -> 420 bus-min); the cap damps it, like OpenDSS InvControl's
deltaQ_factor. With 100 ms steps and 5 s the lag itself is slower than the cap (4.5 % per step).
Before the response time the share was `gain` at every step; `gain: 1` gives the pure lag.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar, Mapping, Sequence

import numpy as np

from controllers.base import Controller, ControllerInfo, DERInfo
from cosim import signals as sig
from cosim.scenario.units import format_duration, parse_duration


def step_gain(response_s: float, step_s: float) -> float:
    """Share of the way to the curve one step of `step_s` covers when 90 % takes `response_s` (first-order lag)."""
    return 1.0 - 10.0 ** (-step_s / response_s)


class Curve:
    """A piecewise-linear characteristic y(v), flat beyond its first and last points."""

    def __init__(self, v: Sequence[float], y: Sequence[float]):
        self.v, self.y = np.asarray(v, float), np.asarray(y, float)
        if self.v.ndim != 1 or len(self.v) < 2 or self.v.shape != self.y.shape:
            raise ValueError(f"a curve needs two lists of the same length >= 2, got {len(self.v)} voltages and "
                             f"{len(self.y)} values")
        if not np.all(np.isfinite(self.v)) or not np.all(np.isfinite(self.y)):
            raise ValueError("curve points must be finite numbers")
        if not np.all(np.diff(self.v) > 0):
            raise ValueError(f"curve voltages must increase strictly, got {self.v.tolist()}")

    def __call__(self, v: float) -> float:
        return float(np.interp(v, self.v, self.y))


class LocalCurveController(Controller):
    """Per DER: setpoint = curve(own bus voltage) x the DER's base, approached as a first-order lag."""

    action: ClassVar[str]  # the setpoint attribute this controller drives, e.g. "q_set_mvar"
    default_v: ClassVar[tuple[float, ...]]
    default_y: ClassVar[tuple[float, ...]]
    neutral: ClassVar[float]  # the curve value that means "no action", the starting point
    default_gain: ClassVar[float] = 0.5  # the most one step may move (the share per step without a response time)
    # the standard's open-loop response time (s) and its adjustable range; None: `default_gain` per step
    default_response_s: ClassVar[float | None] = None
    response_range_s: ClassVar[tuple[float, float]] = (0.0, math.inf)

    def __init__(self, v: Sequence[float] | None = None, y: Sequence[float] | None = None,
                 gain: float | None = None, response_time: object = None):
        self.curve = Curve(self.default_v if v is None else v, self.default_y if y is None else y)
        self.gain = self.default_gain if gain is None else float(gain)
        if not 0.0 < self.gain <= 1.0:
            raise ValueError(f"gain must be in (0, 1], got {gain}")
        self.response_s = self.default_response_s if response_time is None else parse_duration(response_time)
        lo, hi = self.response_range_s
        if response_time is not None and not lo <= self.response_s <= hi:
            raise ValueError(f"response_time must be within {format_duration(lo)}..{format_duration(hi)} "
                             f"(IEEE 1547-2018), got {format_duration(self.response_s)}")

    @abstractmethod
    def base(self, der: DERInfo) -> float:
        """What a curve value of 1.0 means for this DER in MW or Mvar."""

    def setup(self, info: ControllerInfo) -> None:
        super().setup(info)
        self.state = {d.name: self.neutral for d in info.ders}
        lag = 1.0 if self.response_s is None else step_gain(self.response_s, info.step_s)
        self.alpha = min(lag, self.gain)

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        out = {}
        for der in self.info.ders:
            vm = observation.get(sig.bus(der.bus), math.nan)
            if not math.isfinite(vm):
                continue  # no measurement this step: the last setpoint stays in force
            last = self.state[der.name]
            self.state[der.name] = last + self.alpha * (self.curve(vm) - last)
            out[f"{der.name}.{self.action}"] = self.state[der.name] * self.base(der)
        return out
