"""mosaik simulator around a `Controller`: one entity `ctrl`, observation in, checked setpoints out.

Each step it merges the observation it receives with the time features, calls `act`, and
passes on only valid setpoints: a known action name with a finite number. Anything else
(an unknown name, NaN, a non-number, `act` raising anything, SystemExit and KeyboardInterrupt
included, or a return value that fails when read) is dropped and recorded as a
`controller_error` event; the last valid setpoint stays in force and the run goes on.
`act` runs in a worker thread with a time budget per step (`timeout`, default 10 s): a step
over budget is a `controller_timeout` event, the last valid setpoints hold, and while the late
call is still running the controller is not called again (each further step is another
`controller_timeout`). `signals` carries the setpoints in force as `ctrl.<action>` for the recorder.
With a `forecast:` block the observation also holds that step's forecasts (`cosim.forecast.build`).
In its own process or on another host (`python -m cosim.sims.controller`, docs/placement.md) it
builds the controller from the scenario and publishes its events as the output `log`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable

import mosaik_api_v3
import numpy as np

from controllers.base import Controller, ControllerInfo, Truth, time_features
from cosim.assembly import Assembly
from cosim.eventlog import EventLog
from cosim.forecast.build import Forecasts, observed_names
from cosim.kernel import check_actions
from cosim.sims.remote import Outbox, plain, rebuild

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 10.0  # wall seconds one call of `act` (and reading its return value) may take
MAX_WARNINGS = 20  # targets whose controller errors are printed; events.csv has (or summarises) the rest

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Controller": {"public": True, "params": [], "attrs": ["observation", "setpoints", "signals", "log"]}},
}


class Worker:
    """One daemon thread that runs calls in order and hands back futures: a call that never returns
    neither blocks the run (it waits with a timeout) nor the interpreter's exit (daemon)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="controller", daemon=True).start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue `fn(*args)`; its result or whatever it raised (any BaseException) ends up in the future."""
        future: Future = Future()
        self._jobs.put((future, fn, args))
        return future

    def stop(self) -> None:
        """End the thread after the calls already queued."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001 - SystemExit / KeyboardInterrupt of a plug-in too
                    future.set_exception(exc)


class ControllerSim(mosaik_api_v3.Simulator):
    """Steps a controller; see the module docstring for what happens to bad actions."""

    def __init__(self) -> None:
        super().__init__(META)

    def init(self, sid, time_resolution=1.0, controller: Controller | None = None, info: ControllerInfo | None = None,
             start: np.datetime64 | None = None, events: EventLog | None = None,
             timeout: float = DEFAULT_TIMEOUT_S, scenario: dict | None = None, forecasts: Forecasts | None = None):
        """In-process: the run's live controller, `events` and `forecasts`. Elsewhere: `scenario` (plain data,
        `cosim.sims.remote.scenario_spec`), from which it builds the controller and forecasts as the run would."""
        self.remote = scenario is not None
        if self.remote:
            controller, info, start, timeout, forecasts = _build(scenario)
            events = Outbox()
        self.controller, self.info, self.events, self.forecasts = controller, info, events, forecasts
        self.timeout = timeout
        self._worker = Worker()
        self._late: Future | None = None  # a call of `act` that overran its budget and has not returned yet
        self.start = np.datetime64(start, "ms")
        self.step_dt = np.timedelta64(round(info.step_s * 1000), "ms")
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
        self.k = k = time
        observation: dict[str, float] = {}
        for values in inputs.get("ctrl", {}).get("observation", {}).values():
            observation.update(values)
        observation.update(time_features(self.start + k * self.step_dt, k))
        if self.forecasts is not None:
            observation.update(self.forecasts.at(k))
        self.issued, rejected, kind = self._decide(observation)
        self._reject(k, rejected, kind)
        self.held.update(self.issued)
        if self.issued:
            self.events.note("command", k, setpoints=self.issued)
        return time + 1

    def _act(self, observation: dict[str, float]) -> tuple[dict[str, float], dict[str, str]]:
        """The plug-in's call and the reading of its return value (both in the worker thread)."""
        return check_actions(self.controller.act(observation), self.allowed)

    def _decide(self, observation: dict[str, float]) -> tuple[dict[str, float], dict[str, str], str]:
        """(valid setpoints, rejected targets with reasons, event kind) of one step, the plug-in contained."""
        if self._late is not None and not self._late.done():
            return {}, {"act": f"still running a call that overran controller.timeout ({self.timeout:g} s)"}, \
                "controller_timeout"
        self._late = None
        future = self._worker.submit(self._act, observation)
        try:  # `exception()` hands over what the plug-in raised (SystemExit too) instead of raising it here
            exc = future.exception(timeout=self.timeout)
        except TimeoutError:
            self._late = future
            return {}, {"act": f"took longer than controller.timeout ({self.timeout:g} s)"}, "controller_timeout"
        if exc is not None:
            return {}, {"act": f"raised {type(exc).__name__}: {exc}"}, "controller_error"
        valid, rejected = future.result()
        return valid, rejected, "controller_error"

    def _reject(self, k: int, rejected: dict[str, str], kind: str = "controller_error") -> None:
        for target, reason in rejected.items():
            self.events.add(k, kind, target)
            if target not in self._warned and len(self._warned) < MAX_WARNINGS:  # once per target, capped
                self._warned.add(target)
                log.warning("controller error at step %d: %s %s; the last valid setpoint stays in force",
                            k, target, reason)
                if len(self._warned) == MAX_WARNINGS:
                    log.warning("controller errors on %d targets: further targets are not printed "
                                "(events.csv lists or counts them)", MAX_WARNINGS)

    def finalize(self) -> None:
        """Let go of the worker thread (a call still over budget is abandoned, not waited for)."""
        self._worker.stop()

    def get_data(self, outputs):
        data = {"setpoints": self.issued, "signals": {f"ctrl.{n}": v for n, v in self.held.items()}}
        if self.remote:
            data = {"setpoints": plain(data["setpoints"]), "signals": plain(data["signals"]),
                    **({"log": self.events.drain()} if "log" in outputs.get("ctrl", []) else {})}
        return {"ctrl": data}


def build_controller(asm: Assembly) -> tuple[Controller, ControllerInfo]:
    """The run's controller, set up with its info (an oracle is handed the assembly's grid model and inputs)."""
    from controllers.registry import prepare

    return prepare(asm.loaded.scenario, asm.loaded.base_dir, observed_names(asm.model.signal_names, asm.forecasts),
                   Truth(asm.model, asm.inputs))


def _build(spec: dict) -> tuple[Controller, ControllerInfo, np.datetime64, float, Forecasts | None]:
    """Controller, info, first time, timeout and forecasts of the run `spec` describes, built as in-process."""
    asm = rebuild(spec)
    scn = asm.loaded.scenario
    controller, info = build_controller(asm)
    if controller.oracle:
        raise ValueError(f"{type(controller).__name__} is an oracle (it reads the run's grid model): it cannot run "
                         "outside the run's process; set placement.controller: in-process")
    return controller, info, asm.inputs.times[0], scn.controller.timeout, asm.forecasts


if __name__ == "__main__":
    from cosim.sims.remote import serve

    serve(ControllerSim(), "The cosim controller simulator (mosaik remote API).")
