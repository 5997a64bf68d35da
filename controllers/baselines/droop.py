"""Volt-var droop: reactive power from each inverter's own bus voltage (IEEE 1547-2018 Category B)."""

from __future__ import annotations

from typing import Sequence

from controllers.base import DERInfo
from controllers.baselines._local import LocalCurveController


class VoltVar(LocalCurveController):
    """Q = curve(V) x S rating; positive injects (raises voltage), negative absorbs.

    Default points, IEEE 1547-2018 Category B: V = 0.92 / 0.98 / 1.02 / 1.08 pu,
    Q = +44 % / 0 / 0 / -44 % of the nameplate apparent power. Params `v`, `q`, `gain`.
    """

    action = "q_set_mvar"
    default_v = (0.92, 0.98, 1.02, 1.08)
    default_y = (0.44, 0.0, 0.0, -0.44)
    neutral = 0.0

    def __init__(self, v: Sequence[float] | None = None, q: Sequence[float] | None = None,
                 gain: float | None = None):
        super().__init__(v, q, gain)

    def base(self, der: DERInfo) -> float:
        return der.s_mva


CONTROLLER = VoltVar
