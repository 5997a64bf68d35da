"""mosaik simulator over the step kernel: one entity `grid` that solves a power flow every step.

In-process it steps the run's own `GridModel`; in its own process or on another host
(`python -m cosim.sims.grid`, see docs/placement.md) it rebuilds the model from the scenario.
"""

from __future__ import annotations

import mosaik_api_v3
import numpy as np

from cosim.eventlog import EventLog
from cosim.grid.model import GridModel
from cosim.kernel import StepKernel
from cosim.sims.events import disruptions_from
from cosim.sims.remote import Outbox, plain, rebuild

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {
        "Grid": {
            "public": True,
            "params": [],
            "attrs": ["p_avail_mw", "load_scale", "native_pv_pu", "native_wind_pu", "setpoints", "disruptions",
                      "signals", "log", "metrics"],
        },
    },
}


def _one(values: dict):
    """The single value of an input that has one source."""
    return next(iter(values.values()))


class GridSim(mosaik_api_v3.Simulator):
    """Receives load multipliers, DER availability, setpoints and disruptions; publishes all grid signals.

    The setpoint input is time-shifted in the world, so what arrives at step k was chosen at k-1. Setpoints
    that DER capability cuts are events `setpoint_clipped` (one per setpoint and run of steps) and counted in
    the run metric `setpoints_clipped` (setpoint-steps)."""

    def __init__(self) -> None:
        super().__init__(META)
        self.kernel: StepKernel | None = None
        self._signals: dict[str, float] = {}

    def init(self, sid, time_resolution=1.0, model: GridModel | None = None,
             events: EventLog | None = None, metrics: dict | None = None, scenario: dict | None = None):
        """In-process: the run's live `model`, `events` and `metrics`. Elsewhere: `scenario` (plain data,
        `cosim.sims.remote.scenario_spec`); events and metrics then leave as the outputs `log` and `metrics`."""
        self.remote = scenario is not None
        if self.remote:
            model, events, metrics = rebuild(scenario).model, Outbox(), {}
        self.kernel = StepKernel(model)
        self.events, self.metrics = events, metrics if metrics is not None else {}
        self.metrics["setpoints_clipped"] = 0
        return self.meta

    def create(self, num, model, **params):
        if num != 1:
            raise ValueError("one Grid entity per simulator")
        return [{"eid": "grid", "type": model}]

    def step(self, time, inputs, max_advance):
        m = self.kernel.model
        inp = inputs["grid"]
        p_avail = np.zeros(len(m.ders))
        for src, value in inp.get("p_avail_mw", {}).items():  # mosaik ids '<sim>.<entity>'; entities are DER names
            p_avail[m.der_index[src.rsplit(".", 1)[-1]]] = value
        delivered: dict[str, float] = {}
        for setpoints in inp.get("setpoints", {}).values():
            delivered.update(setpoints)
        disruptions = disruptions_from(_one(inp["disruptions"])) if "disruptions" in inp else None
        result = self.kernel.step(np.asarray(_one(inp["load_scale"]), dtype=float), p_avail, _one(inp["native_pv_pu"]),
                                  _one(inp["native_wind_pu"]), delivered, disruptions)
        self._signals = m.signals(result)
        clipped = self.kernel.clipped(result)
        self.metrics["setpoints_clipped"] += len(clipped)
        if self.events is not None:
            for name in clipped:
                self.events.add(time, "setpoint_clipped", name)
        return time + 1

    def get_data(self, outputs):
        if not self.remote:
            return {"grid": {"signals": self._signals}}
        wanted = outputs.get("grid", [])
        return {"grid": {"signals": plain(self._signals), "metrics": dict(self.metrics),
                         **({"log": self.events.drain()} if "log" in wanted else {})}}


if __name__ == "__main__":
    from cosim.sims.remote import serve

    serve(GridSim(), "The cosim grid simulator (mosaik remote API).")
