"""mosaik simulator over `GridModel`: one entity `grid` that solves a power flow every step."""

from __future__ import annotations

import mosaik_api_v3
import numpy as np

from cosim.grid.model import GridModel

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {
        "Grid": {
            "public": True,
            "params": [],
            "attrs": ["p_avail_mw", "load_scale", "native_pv_pu", "native_wind_pu", "setpoints", "disruptions",
                      "signals"],
        },
    },
}


def _one(values: dict):
    """The single value of an input that has one source."""
    return next(iter(values.values()))


class GridSim(mosaik_api_v3.Simulator):
    """Receives load multipliers, DER availability, setpoints and disruptions; publishes all grid signals."""

    def __init__(self) -> None:
        super().__init__(META)
        self.model: GridModel | None = None
        self.step_s = 1
        self._signals: dict[str, float] = {}

    def init(self, sid, time_resolution=1.0, model: GridModel | None = None, step_s: int = 1):
        self.model, self.step_s = model, int(step_s)
        self._der_index = {d.name: i for i, d in enumerate(model.ders)}
        n = len(model.ders)
        self.p_limit = np.full(n, np.inf)
        self.q_set = np.zeros(n)
        return self.meta

    def create(self, num, model, **params):
        if num != 1:
            raise ValueError("one Grid entity per simulator")
        return [{"eid": "grid", "type": model}]

    def step(self, time, inputs, max_advance):
        m = self.model
        inp = inputs["grid"]
        p_avail = np.zeros(len(m.ders))
        for src, value in inp.get("p_avail_mw", {}).items():
            p_avail[self._der_index[src.rsplit(".", 1)[-1]]] = value
        for setpoints in inp.get("setpoints", {}).values():
            self.apply_setpoints(setpoints)
        for disruptions in inp.get("disruptions", {}).values():
            m.apply_disruptions(disruptions)
        result = m.step(_one(inp["load_scale"]), p_avail, self.p_limit, self.q_set,
                        _one(inp["native_pv_pu"]), _one(inp["native_wind_pu"]))
        self._signals = m.signals(result)
        return time + self.step_s

    def apply_setpoints(self, setpoints: dict[str, float]) -> None:
        """Hold the latest `<der>.p_limit_mw` / `<der>.q_set_mvar` setpoints until replaced; move taps and
        capacitor steps (`trafo.<n>.tap`, `cap.<n>.step`)."""
        for name, value in setpoints.items():
            if name in self.model.discrete:
                self.model.set_discrete(name, value)
                continue
            der, _, attr = name.partition(".")
            i = self._der_index[der]
            if attr == "p_limit_mw":
                self.p_limit[i] = value
            elif attr == "q_set_mvar":
                self.q_set[i] = value

    def get_data(self, outputs):
        return {"grid": {"signals": self._signals}}
