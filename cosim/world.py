"""Scenario -> mosaik World: start the simulators in-process, create entities, connect them, run.

Data flow per step: inputs (loads, DER availability) -> grid (power flow) -> recorder.
Later stages (channel, controller, detector, bridges) plug in between grid and recorder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import mosaik

from cosim.grid.model import DER, GridModel
from cosim.inputs import Inputs, build_inputs
from cosim.recording import Recording
from cosim.scenario.loader import LoadedScenario

SIM_CONFIG = {
    "Inputs": {"python": "cosim.sims.inputs:InputsSim"},
    "Grid": {"python": "cosim.sims.grid:GridSim"},
    "Recorder": {"python": "cosim.sims.recorder:RecorderSim"},
}


@dataclass
class Assembly:
    """Everything a run needs, built from a scenario before mosaik starts."""

    model: GridModel
    inputs: Inputs
    step_s: int
    n_steps: int


def assemble(loaded: LoadedScenario) -> Assembly:
    """Grid model and input series for a scenario (no mosaik involved)."""
    scn = loaded.scenario
    ders = [DER(g.name, g.kind, g.bus, g.p_mw, g.rating_mva) for g in scn.generators]
    model = GridModel(loaded.feeder, ders, scn.grid.engine, scn.grid.line_max_i_ka)
    inputs = build_inputs(scn, len(model.load_p_nom), loaded.base_dir)
    return Assembly(model, inputs, int(scn.clock.step), scn.clock.n_steps)


def run_world(asm: Assembly, recording: Recording, on_step: Callable[[int], None] | None = None) -> None:
    """Build a fresh mosaik World for one run and run it to the horizon (World.run works once)."""
    world = mosaik.World(SIM_CONFIG, skip_greetings=True, configure_logging=False)
    step_s = asm.step_s
    inputs_sim = world.start("Inputs", inputs=asm.inputs, step_s=step_s)
    grid_sim = world.start("Grid", model=asm.model, step_s=step_s)
    recorder_sim = world.start("Recorder", recording=recording, step_s=step_s, on_step=on_step)
    loads = inputs_sim.Loads()
    ders = [inputs_sim.DER(name=d.name, index=i) for i, d in enumerate(asm.model.ders)]
    grid = grid_sim.Grid()
    recorder = recorder_sim.Recorder()
    world.connect(loads, grid, "load_scale", "native_pv_pu", "native_wind_pu")
    for der in ders:
        world.connect(der, grid, "p_avail_mw")
    world.connect(grid, recorder, "signals")
    world.run(until=asm.n_steps * step_s, print_progress=False)
