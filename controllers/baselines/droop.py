"""Volt-var droop: reactive power from each inverter's own bus voltage (IEEE 1547-2018 Category B)."""

from __future__ import annotations

from typing import Sequence

from controllers.base import DERInfo
from controllers.baselines._local import LocalCurveController


class VoltVar(LocalCurveController):
    """Q = curve(V) x S rating; positive injects (raises voltage), negative absorbs.

    Default points, IEEE 1547-2018 Category B: V = 0.92 / 0.98 / 1.02 / 1.08 pu,
    Q = +44 % / 0 / 0 / -44 % of the nameplate apparent power. Q follows the curve with the
    standard's open-loop response time (90 % of a step change; default 5 s, adjustable 1-90 s),
    moving at most `gain` of the way per step (see `_local`). Params `v`, `q`, `response_time`
    (e.g. `5s`), `gain`.
    """

    action = "q_set_mvar"
    default_v = (0.92, 0.98, 1.02, 1.08)
    default_y = (0.44, 0.0, 0.0, -0.44)
    neutral = 0.0
    default_response_s = 5.0
    response_range_s = (1.0, 90.0)

    def __init__(self, v: Sequence[float] | None = None, q: Sequence[float] | None = None,
                 gain: float | None = None, response_time: object = None):
        super().__init__(v, q, gain, response_time)

    def base(self, der: DERInfo) -> float:
        return der.s_mva


CONTROLLER = VoltVar
