"""Scenario -> mosaik World: start the simulators in-process, create entities, connect them, run.

Data flow per step: inputs (loads, DER availability) -> grid (power flow) -> recorder.
Each stage is one function that starts its simulator and wires it to what exists; stages
that sit between grid and controller (channel, controller, detector, bridges) slot in
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

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

    loaded: LoadedScenario
    model: GridModel
    inputs: Inputs
    step_s: int
    n_steps: int


@dataclass
class Wiring:
    """The world being built and the entities the stages have created so far."""

    world: mosaik.World
    asm: Assembly
    entities: dict[str, Any] = field(default_factory=dict)
    recorded: list[Any] = field(default_factory=list)  # entities whose `signals` the recorder keeps
    # What a controller (or detector) sees: (entity, attribute). The grid stage sets it to the
    # grid's signals; a measurement channel replaces it with its attacked copy.
    observe: tuple[Any, str] | None = None
    # Where setpoints go: (entity, attribute, time_shifted). The edge that enters the grid is
    # time-shifted, so setpoints computed at step k act at step k+1.
    actuate: tuple[Any, str, bool] | None = None


def assemble(loaded: LoadedScenario) -> Assembly:
    """Grid model and input series for a scenario (no mosaik involved)."""
    scn = loaded.scenario
    ders = [DER(g.name, g.kind, g.bus, g.p_mw, g.rating_mva) for g in scn.generators]
    model = GridModel(loaded.feeder, ders, scn.grid.engine, scn.grid.line_max_i_ka)
    inputs = build_inputs(scn, len(model.load_p_nom), loaded.base_dir)
    return Assembly(loaded, model, inputs, int(scn.clock.step), scn.clock.n_steps)


def add_inputs(w: Wiring) -> None:
    """Load multipliers and DER availability."""
    sim = w.world.start("Inputs", inputs=w.asm.inputs, step_s=w.asm.step_s)
    w.entities["loads"] = sim.Loads()
    w.entities["ders"] = [sim.DER(name=d.name, index=i) for i, d in enumerate(w.asm.model.ders)]


def add_grid(w: Wiring) -> None:
    """The power-flow simulator, fed by the inputs."""
    grid = w.world.start("Grid", model=w.asm.model, step_s=w.asm.step_s).Grid()
    w.world.connect(w.entities["loads"], grid, "load_scale", "native_pv_pu", "native_wind_pu")
    for der in w.entities["ders"]:
        w.world.connect(der, grid, "p_avail_mw")
    w.entities["grid"] = grid
    w.recorded.append(grid)
    w.observe = (grid, "signals")
    w.actuate = (grid, "setpoints", True)


def add_recorder(w: Wiring, recording: Recording, on_step: Callable[[int], None] | None) -> None:
    """The recorder, last: it keeps the `signals` of every recorded entity."""
    rec = w.world.start("Recorder", recording=recording, step_s=w.asm.step_s, on_step=on_step).Recorder()
    for entity in w.recorded:
        w.world.connect(entity, rec, "signals")


STAGES: list[Callable[[Wiring], None]] = [add_inputs, add_grid]


def run_world(asm: Assembly, recording: Recording, on_step: Callable[[int], None] | None = None) -> None:
    """Build a fresh mosaik World for one run and run it to the horizon (World.run works once)."""
    world = mosaik.World(SIM_CONFIG, skip_greetings=True, configure_logging=False)
    wiring = Wiring(world, asm)
    for stage in STAGES:
        stage(wiring)
    add_recorder(wiring, recording, on_step)
    try:
        world.run(until=asm.n_steps * asm.step_s, print_progress=False)
    except BaseException:
        world.shutdown()  # World.run shuts down only when it completes
        raise
