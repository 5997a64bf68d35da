"""mosaik simulator around a `Controller`: one entity `ctrl`, observation in, checked setpoints out.

Each step it merges the observation it receives with the time features, calls `act`, and
passes on only valid setpoints: a known action name with a finite number. Anything else
(an unknown name, NaN, a non-number, or `act` raising) is dropped and recorded as a
`controller_error` event; the last valid setpoint stays in force and the run goes on.
`signals` carries the setpoints in force as `ctrl.<action>` for the recorder.
"""

from __future__ import annotations

import logging
import math

import mosaik_api_v3
import numpy as np

from controllers.base import Controller, ControllerInfo, time_features
from cosim.eventlog import EventLog
from cosim.kernel import check_actions

log = logging.getLogger(__name__)

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Controller": {"public": True, "params": [], "attrs": ["observation", "setpoints", "signals"]}},
}


class ControllerSim(mosaik_api_v3.Simulator):
    """Steps a controller; see the module docstring for what happens to bad actions."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, controller: Controller | None = None, info: ControllerInfo | None = None,
             start: np.datetime64 | None = None, step_s: int = 1, events: EventLog | None = None):
        self.controller, self.info, self.step_s, self.events = controller, info, int(step_s), events
        self.start = np.datetime64(start, "s")
        self.allowed = set(info.action_names)
        self.held = {name: math.nan for name in info.action_names}
        self.k, self.issued = 0, {}
        self._warned: set[str] = set()
        controller._event_sink = lambda kind, target: events.add(self.k, kind, target)
        return self.meta

    def create(self, num, model, **params):
        if num != 1:
            raise ValueError("one Controller entity per simulator")
        return [{"eid": "ctrl", "type": model}]

    def step(self, time, inputs, max_advance):
        self.k = k = time // self.step_s
        observation: dict[str, float] = {}
        for values in inputs.get("ctrl", {}).get("observation", {}).values():
            observation.update(values)
        observation.update(time_features(self.start + np.timedelta64(int(time), "s"), k))
        try:
            actions = self.controller.act(observation)
        except Exception as exc:  # a faulty controller must not stop the co-simulation
            actions = {}
            self._reject(k, {"act": f"raised {type(exc).__name__}: {exc}"})
        self.issued, rejected = check_actions(actions, self.allowed)
        self._reject(k, rejected)
        self.held.update(self.issued)
        return time + self.step_s

    def _reject(self, k: int, rejected: dict[str, str]) -> None:
        for target, reason in rejected.items():
            self.events.add(k, "controller_error", target)
            if target not in self._warned:  # say why once per target; events.csv has every step
                self._warned.add(target)
                log.warning("controller error at step %d: %s %s; the last valid setpoint stays in force",
                            k, target, reason)

    def get_data(self, outputs):
        return {"ctrl": {"setpoints": self.issued, "signals": {f"ctrl.{n}": v for n, v in self.held.items()}}}
