"""Score any controller on one day of a scenario: the co-simulation's loop on `GridModel`, without mosaik.

Same physics and timing as a run (setpoints chosen at step k act at k+1; the controller sees
every grid signal plus the time features) and the same KPI code (`cosim.metrics`), but a
day takes a fraction of a second, so held-out evaluations over many days stay cheap.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from controllers.base import Controller, ControllerInfo, Truth, time_features
from controllers.drl.env import day_inputs, der_infos
from cosim.grid.feeders import load_feeder
from cosim.metrics import compute_metrics
from cosim.scenario.loader import LoadedScenario
from cosim.world import assemble


def run_day(loaded: LoadedScenario, controller: Controller, day: int) -> dict[str, float]:
    """KPIs (`cosim.metrics` plus `reactive_energy_kvarh`) of `controller` on the scenario with seed `day`."""
    scn = loaded.scenario
    asm = assemble(dataclasses.replace(loaded, feeder=load_feeder(scn.grid.feeder, loaded.base_dir)))
    model = asm.model
    inputs = day_inputs(loaded, day, len(model.load_p_nom))
    ders = der_infos(loaded)
    index = {d.name: i for i, d in enumerate(ders)}
    info = ControllerInfo(scn.grid.feeder, scn.clock.step, tuple(scn.grid.voltage_limits), ders,
                          tuple(model.signal_names), truth=Truth(model, inputs) if controller.oracle else None)
    controller.setup(info)
    held = {"p_limit_mw": np.full(len(ders), np.inf), "q_set_mvar": np.zeros(len(ders))}  # last setpoints
    rows = []
    for k in range(scn.clock.n_steps):
        r = model.step(inputs.load_scale[k], inputs.der_p_avail_mw[k], held["p_limit_mw"], held["q_set_mvar"],
                       inputs.native_pv_pu[k], inputs.native_wind_pu[k])
        signals = model.signals(r)
        rows.append(signals)
        for name, value in controller.act({**signals, **time_features(inputs.times[k], k)}).items():
            der, _, attr = name.partition(".")
            held[attr][index[der]] = value
    ts = pd.DataFrame(rows)
    kpis = compute_metrics(ts, scn.clock.step, scn.grid.voltage_limits, [d.name for d in ders])
    q = ts[[f"{d.name}.q_mvar" for d in ders]].abs().to_numpy().sum()
    kpis["reactive_energy_kvarh"] = float(q * 1000.0 * scn.clock.step / 3600.0)
    return kpis
