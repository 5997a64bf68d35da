"""Volt-watt: each inverter curtails its active power as its own bus voltage rises (IEEE 1547-2018)."""

from __future__ import annotations

from typing import Sequence

from controllers.base import DERInfo
from controllers.baselines._local import LocalCurveController


class VoltWatt(LocalCurveController):
    """P limit = curve(V) x nameplate P.

    Default points, IEEE 1547-2018: 100 % up to 1.06 pu, falling linearly to 20 % at 1.10 pu
    (Category B allows down to 0 %). Params `v`, `p` (fractions of nameplate), `gain`.
    """

    action = "p_limit_mw"
    default_v = (1.06, 1.10)
    default_y = (1.0, 0.2)
    neutral = 1.0

    def __init__(self, v: Sequence[float] | None = None, p: Sequence[float] | None = None,
                 gain: float | None = None):
        super().__init__(v, p, gain)

    def base(self, der: DERInfo) -> float:
        return der.p_mw


CONTROLLER = VoltWatt
