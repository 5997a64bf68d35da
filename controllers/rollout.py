"""Score a controller on a scenario without mosaik: the co-simulation's loop on the step kernel.

Same physics, events, channels and timing as `cosim run` (setpoints chosen at step k act at
k+1; the controller sees the grid's signals through the measurement channel plus the time
features and the scenario's forecasts; invalid actions are `controller_error` events and the last valid setpoint holds)
and the same KPI code (`cosim.metrics`), but a day takes a fraction of a second, so held-out
evaluations over many days stay cheap. Devices (hardware in the loop) are not part of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from controllers.base import Controller, Truth, time_features
from controllers.registry import controller_info
from cosim.assembly import Assembly, assemble, control_loop
from cosim.forecast.build import observed_names
from cosim.kernel import check_actions
from cosim.metrics import metrics_from_array
from cosim.scenario.loader import LoadedScenario


@dataclass
class Rollout:
    """What a rollout produced: the grid's signals per step (named by `names`), events and KPIs."""

    names: tuple[str, ...]
    rows: np.ndarray
    kpis: dict[str, float]
    events: list[tuple[int, str, str]] = field(default_factory=list)  # (step, kind, target)


def rollout(asm: Assembly, controller: Controller | None) -> Rollout:
    """Run `asm` to its horizon with `controller` (None: no controller) and score it."""
    model, inputs, scn = asm.model, asm.inputs, asm.loaded.scenario
    loop = control_loop(asm)
    names = tuple(model.signal_names)
    rows = np.empty((asm.n_steps, len(names)))
    events: list[tuple[int, str, str]] = []
    allowed: frozenset[str] = frozenset()
    k = 0
    forecast = asm.forecasts.at if asm.forecasts is not None else lambda k: {}
    if controller is not None:
        truth = Truth(model, inputs) if controller.oracle else None
        discrete = [(d.name, d.low, d.high) for d in model.discrete.values()]
        info = controller_info(scn, observed_names(names, asm.forecasts), truth, discrete,
                               asm.loaded if controller.uses_scenario else None)
        controller._event_sink = lambda kind, target: events.append((k, kind, target))
        controller.setup(info)
        allowed = frozenset(info.action_names)
    for k in range(asm.n_steps):
        model.signal_values(loop.solve(k), rows[k])
        valid: dict[str, float] = {}
        if controller is not None:
            seen = loop.observe(k, dict(zip(names, rows[k].tolist())))
            try:
                actions = controller.act({**seen, **time_features(inputs.times[k], k), **forecast(k)})
            except Exception as exc:  # a faulty controller must not stop the loop, as in a run
                actions, rejected = {}, {"act": f"raised {type(exc).__name__}: {exc}"}
            else:
                valid, rejected = check_actions(actions, allowed)
            events += [(k, "controller_error", target) for target in rejected]
        loop.submit(k, valid)
    kpis = metrics_from_array(rows, names, scn.clock.step, scn.grid.voltage_limits, [g.name for g in scn.generators])
    return Rollout(names, rows, kpis, events)


def run_day(loaded: LoadedScenario, controller: Controller, day: int) -> dict[str, float]:
    """KPIs (`cosim.metrics`) of `controller` on the scenario with seed `day` (inputs and random events)."""
    scn = loaded.scenario.model_copy(update={"seed": int(day)})
    return rollout(assemble(dataclasses.replace(loaded, scenario=scn)), controller).kpis
