"""An example user controller: every inverter absorbs reactive power while the feeder's highest voltage is high.

Unlike the local droop, it reads every bus voltage (a central controller) and acts as an
integrator: each step it moves Q by `gain` x (highest voltage - `v_set`) x the DER's rating,
never injecting and never beyond `q_max` of the rating. Use it as
`controller: {kind: python, path: my_ctrl.py:MyController, params: {v_set: 1.04}}`.
"""

from __future__ import annotations

import math
from typing import Mapping

from controllers.base import Controller, ControllerInfo


class MyController(Controller):
    """Central integral volt-var on the highest bus voltage."""

    def __init__(self, v_set: float = 1.04, gain: float = 2.0, q_max: float = 0.44):
        self.v_set, self.gain, self.q_max = v_set, gain, q_max

    def setup(self, info: ControllerInfo) -> None:
        super().setup(info)
        self.buses = [m for m in info.measurements if m.startswith("bus.") and m.endswith(".vm_pu")]
        self.q = {d.name: 0.0 for d in info.ders}  # per-unit of rating, negative = absorbing

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        voltages = [observation[b] for b in self.buses if math.isfinite(observation.get(b, math.nan))]
        if not voltages:
            return {}  # nothing measured this step: keep the last setpoints
        error = max(voltages) - self.v_set
        setpoints = {}
        for d in self.info.ders:
            self.q[d.name] = min(0.0, max(-self.q_max, self.q[d.name] - self.gain * error))
            setpoints[f"{d.name}.q_set_mvar"] = self.q[d.name] * d.s_mva
        return setpoints
