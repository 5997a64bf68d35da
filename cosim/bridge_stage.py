"""World stages of hardware in the loop: the Modbus bridge between controller and grid, and its feedback.

`add_bridge` (after the grid, before the channels) puts the bridge on the actuation path:
controller -> (command channel) -> bridge -> devices -> bridge -> grid, the edge into the grid
time-shifted like any setpoint path; with a grid server, a `scada` stage sits between the
bridge and the grid and adds the SCADA's commands at the grid's next step (`cosim.sims.scada`). The bridge also gets the grid's true signals, the
physics of emulated devices. `add_bridge_feedback` (after the controller) lets the controller
see the devices' readings and flags (`inv1.stale`, ...) from the previous step. `build_bridge` is
the run's bridge, in-process or rebuilt in the bridge's own process (`cosim.sims.bridge`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosim.assembly import Assembly
from hil.bridge import Bridge
from hil.capture import Capture
from hil.devices import couplings

if TYPE_CHECKING:
    from cosim.world import Wiring


def build_bridge(asm: Assembly) -> Bridge:
    """The run's bridge over the scenario's devices (and grid server), coupled to the assembly's grid model."""
    scn, model, feeder = asm.loaded.scenario, asm.model, asm.loaded.feeder
    lines = tuple(feeder.line_labels.tolist())

    def closed_lines() -> list[bool]:
        out = model.disruptions.lines_out | model.lines_opened
        return [bool(base) and label not in out for base, label in zip(model.topology.line_base, lines)]

    devices = couplings(scn, asm.loaded.base_dir)
    for c in devices:
        c.attach(model)
    if asm.options.capture_modbus:  # the runner writes it beside the results, however the run ends
        asm.capture = Capture(asm.inputs.times[0], asm.step_s)
    return Bridge(scn, devices, asm.step_s, asm.options.read_only, buses=tuple(feeder.bus_labels.tolist()),
                  lines=lines, closed_lines=closed_lines, realtime=asm.options.realtime, clock=asm.clock,
                  schedule=asm.schedule, capture=asm.capture)


def add_bridge(w: "Wiring") -> None:
    """The bridge (only with devices or a grid server); it becomes the target of setpoints. Placed in its own
    process (`placement.bridge`), it builds the bridge there and opens the Modbus connections from there."""
    asm, scn = w.asm, w.asm.loaded.scenario
    if not scn.devices and scn.grid_server is None:
        return
    bridge, live = None, {}
    if not w.remote("bridge"):
        bridge = build_bridge(asm)
        live = dict(bridge=bridge, n_steps=asm.n_steps, events=asm.events, metrics=asm.run_metrics)
    entity = w.start_placed("bridge", dict(read_only=asm.options.read_only, realtime=asm.options.realtime),
                            **live).Bridge()
    if w.remote("bridge"):
        w.relay_from(entity, "log", "metrics")
    grid = w.entities["grid"]
    w.world.connect(grid, entity, ("signals", "grid"))
    if scn.grid_server is not None:  # SCADA commands no device acts for join the bridge's setpoints at the grid
        scada = w.world.start("Scada", bridge=bridge, clock=asm.clock).Scada()
        w.world.connect(scada, grid, "setpoints")
        w.actuate = (scada, "delivered", True)
    w.splice_command_stage(entity)
    w.entities["bridge"] = entity
    w.recorded.append(entity)


def add_bridge_feedback(w: "Wiring") -> None:
    """The controller also observes the bridge's signals of the previous step."""
    if "bridge" in w.entities and "controller" in w.entities:
        w.world.connect(w.entities["bridge"], w.entities["controller"], ("signals", "observation"),
                        time_shifted=True, initial_data={"signals": {}})
