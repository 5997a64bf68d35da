"""Local curve control shared by volt-var and volt-watt: each DER reacts to its own bus voltage only.

A piecewise-linear characteristic maps the DER's bus voltage to a fraction of its rating.
Setpoints act one step later, so a steep curve with a full jump each step can overshoot and
oscillate; `gain` moves each setpoint only part of the way towards the curve per step
(a discrete first-order response, like the open-loop response time of IEEE 1547).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar, Mapping, Sequence

import numpy as np

from controllers.base import Controller, ControllerInfo, DERInfo
from cosim import signals as sig


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
    """Per DER: setpoint = curve(own bus voltage) x the DER's base, approached with `gain` per step."""

    action: ClassVar[str]  # the setpoint attribute this controller drives, e.g. "q_set_mvar"
    default_v: ClassVar[tuple[float, ...]]
    default_y: ClassVar[tuple[float, ...]]
    neutral: ClassVar[float]  # the curve value that means "no action", the starting point
    default_gain: ClassVar[float] = 0.5

    def __init__(self, v: Sequence[float] | None = None, y: Sequence[float] | None = None,
                 gain: float | None = None):
        self.curve = Curve(self.default_v if v is None else v, self.default_y if y is None else y)
        self.gain = self.default_gain if gain is None else float(gain)
        if not 0.0 < self.gain <= 1.0:
            raise ValueError(f"gain must be in (0, 1], got {gain}")

    @abstractmethod
    def base(self, der: DERInfo) -> float:
        """What a curve value of 1.0 means for this DER in MW or Mvar."""

    def setup(self, info: ControllerInfo) -> None:
        super().setup(info)
        self.state = {d.name: self.neutral for d in info.ders}

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        out = {}
        for der in self.info.ders:
            vm = observation.get(sig.bus(der.bus), math.nan)
            if not math.isfinite(vm):
                continue  # no measurement this step: the last setpoint stays in force
            last = self.state[der.name]
            self.state[der.name] = last + self.gain * (self.curve(vm) - last)
            out[f"{der.name}.{self.action}"] = self.state[der.name] * self.base(der)
        return out
