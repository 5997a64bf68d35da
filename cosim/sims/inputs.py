"""mosaik simulator serving the precomputed input series: one entity per DER, one for the loads.

Values are plain floats and lists (JSON), so the grid may run in another process. In its own
process or on another host (`python -m cosim.sims.inputs`, docs/placement.md) it builds the
series from the scenario, as the run does."""

from __future__ import annotations

import mosaik_api_v3

from cosim.inputs import Inputs
from cosim.sims.remote import rebuild

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {
        "DER": {"public": True, "params": ["name", "index"], "attrs": ["p_avail_mw"]},
        "Loads": {"public": True, "params": [], "attrs": ["load_scale", "native_pv_pu", "native_wind_pu"]},
    },
}


class InputsSim(mosaik_api_v3.Simulator):
    """Steps through `Inputs` arrays; each step publishes row k of every series."""

    def __init__(self) -> None:
        super().__init__(META)
        self.inputs: Inputs | None = None
        self.k = 0
        self.entities: dict[str, tuple[str, int]] = {}

    def init(self, sid, time_resolution=1.0, inputs: Inputs | None = None, scenario: dict | None = None):
        """In-process: the run's `inputs`. Elsewhere: `scenario` (plain data, `cosim.sims.remote.scenario_spec`)."""
        self.inputs = rebuild(scenario).inputs if scenario is not None else inputs
        return self.meta

    def create(self, num, model, **params):
        out = []
        for _ in range(num):
            eid = params.get("name") or f"{model}-{len(self.entities)}"
            self.entities[eid] = (model, params.get("index", 0))
            out.append({"eid": eid, "type": model})
        return out

    def step(self, time, inputs, max_advance):
        self.k = time
        return time + 1

    def get_data(self, outputs):
        k, inp = self.k, self.inputs
        data = {}
        for eid, attrs in outputs.items():
            model, index = self.entities[eid]
            if model == "DER":
                data[eid] = {"p_avail_mw": float(inp.der_p_avail_mw[k, index])}
            else:
                data[eid] = {"load_scale": inp.load_scale[k].tolist(), "native_pv_pu": float(inp.native_pv_pu[k]),
                             "native_wind_pu": float(inp.native_wind_pu[k])}
        return data


if __name__ == "__main__":
    from cosim.sims.remote import serve

    serve(InputsSim(), "The cosim inputs simulator (mosaik remote API).")
