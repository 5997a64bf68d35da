"""Scenario -> mosaik World: start the simulators in-process, create entities, connect them, run.

Data flow per step: inputs (loads, DER availability) and events (disruptions) -> grid (power
flow) -> measurement channel (noise, attacks) -> controller and detector -> command channel
(attacks) -> grid at the next step; the recorder keeps every stage's `signals`. Each stage is
one function that starts its simulator and wires it to what exists; the event, channel and
detector stages add nothing to a scenario that does not need them. mosaik's time unit is one
step (`time_resolution` = the step in seconds), so every simulator advances by 1 and its time is
the step number, whatever the step: 100 ms as well as 15 min.

The scenario's `placement` may put the grid, inputs, controller, detector and bridge in their own
process or on another host (docs/placement.md): those stages then start them with the scenario as
plain data instead of live objects, and a relay writes back the events and metrics they publish.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

import mosaik
from mosaik.exceptions import SimulationError

from cosim.assembly import Assembly, channels
from cosim.bridge_stage import add_bridge, add_bridge_feedback
from cosim.events.schedule import PHYSICAL
from cosim.realtime import WallClock
from cosim.recording import Recording
from cosim.scenario.placement import CONNECT, Placement
from cosim.sims.controller import build_controller
from cosim.sims.remote import scenario_spec

SIM_CONFIG = {
    "Inputs": {"python": "cosim.sims.inputs:InputsSim"},
    "Grid": {"python": "cosim.sims.grid:GridSim"},
    "Recorder": {"python": "cosim.sims.recorder:RecorderSim"},
    "Controller": {"python": "cosim.sims.controller:ControllerSim"},
    "Events": {"python": "cosim.sims.events:EventsSim"},
    "Channel": {"python": "cosim.sims.channel:ChannelSim"},
    "Detector": {"python": "cosim.sims.detector:DetectorSim"},
    "Bridge": {"python": "cosim.sims.bridge:BridgeSim"},
    "Pacer": {"python": "cosim.sims.pacer:PacerSim"},
    "Scada": {"python": "cosim.sims.scada:ScadaSim"},
    "Relay": {"python": "cosim.sims.relay:RelaySim"},
}
# placement key -> simulator name (cosim.sims.<key>)
PLACEABLE = {"grid": "Grid", "inputs": "Inputs", "controller": "Controller", "detector": "Detector", "bridge": "Bridge"}
START_TIMEOUT_S = 120  # a simulator in its own process imports pandapower and rebuilds its part of the run first


class PlacementError(RuntimeError):
    """A simulator placed outside the run's process could not be reached."""


def sim_config(placement: Placement) -> dict[str, dict[str, str]]:
    """SIM_CONFIG with the placed simulators started as `python -m cosim.sims.<key>` (mosaik `cmd`) or
    reached at their address (mosaik `connect`)."""
    config = dict(SIM_CONFIG)
    for key, name in PLACEABLE.items():
        where = placement.of(key)
        if where.how == CONNECT:
            config[name] = {"connect": f"{where.host}:{where.port}"}
        elif where.remote:
            config[name] = {"cmd": f"%(python)s -m cosim.sims.{key} %(addr)s"}
    return config


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

    def observe_into(self, entity: Any, attr: str) -> None:
        """Feed what a controller sees (`observe`) into `entity`'s input `attr`."""
        source, source_attr = self.observe
        self.world.connect(source, entity, (source_attr, attr))

    def actuate_from(self, entity: Any, attr: str) -> None:
        """Send `entity`'s output `attr` where setpoints go (`actuate`), time-shifted if that edge is."""
        target, target_attr, shifted = self.actuate
        delay = {"time_shifted": True, "initial_data": {attr: {}}} if shifted else {}
        self.world.connect(entity, target, (attr, target_attr), **delay)

    def start_placed(self, key: str, plain: dict[str, Any] | None = None, **live: Any) -> Any:
        """Start the simulator of placement `key`: with the `live` objects in-process, else with the scenario as
        plain data and the `plain` parameters (an address nothing answers at is a PlacementError saying how to
        serve it there)."""
        where = self.asm.loaded.scenario.placement.of(key)
        if not where.remote:
            return self.world.start(PLACEABLE[key], **live)
        try:
            return self.world.start(PLACEABLE[key], scenario=scenario_spec(self.asm.loaded), **(plain or {}))
        except SimulationError as exc:
            hint = (f"nothing answers at {where.host}:{where.port}; start it there first with "
                    f"`python -m cosim.sims.{key} --remote {where.host}:{where.port}`") if where.how == CONNECT else exc
            raise PlacementError(f"placement.{key}: the {key} simulator could not be started: {hint}") from None

    def relay_from(self, entity: Any, *attrs: str) -> None:
        """Replay what a remote `entity` publishes in `attrs` (log, metrics) into the run's EventLog and metrics."""
        if "relay" not in self.entities:
            self.entities["relay"] = self.world.start("Relay", events=self.asm.events,
                                                      metrics=self.asm.run_metrics).Relay()
        self.world.connect(entity, self.entities["relay"], *attrs)

    def remote(self, key: str) -> bool:
        """Whether placement `key` runs outside the run's process."""
        return self.asm.loaded.scenario.placement.of(key).remote

    def splice_command_stage(self, entity: Any) -> None:
        """Put `entity` in front of the current actuator: its `delivered` output goes where setpoints went,
        and it receives the setpoints from now on (`commands`)."""
        self.actuate_from(entity, "delivered")
        self.actuate = (entity, "commands", False)


def add_inputs(w: Wiring) -> None:
    """Load multipliers and DER availability."""
    sim = w.start_placed("inputs", inputs=w.asm.inputs)
    w.entities["loads"] = sim.Loads()
    generators = w.asm.model.ders[: len(w.asm.loaded.scenario.generators)]  # devices' elements have no series
    w.entities["ders"] = [sim.DER(name=d.name, index=i) for i, d in enumerate(generators)]


def add_grid(w: Wiring) -> None:
    """The power-flow simulator, fed by the inputs."""
    grid = w.start_placed("grid", model=w.asm.model, events=w.asm.events, metrics=w.asm.run_metrics).Grid()
    if w.remote("grid"):
        w.relay_from(grid, "log", "metrics")
    w.world.connect(w.entities["loads"], grid, "load_scale", "native_pv_pu", "native_wind_pu")
    for der in w.entities["ders"]:
        w.world.connect(der, grid, "p_avail_mw")
    w.entities["grid"] = grid
    w.recorded.append(grid)
    w.observe = (grid, "signals")
    w.actuate = (grid, "setpoints", True)


def add_pacer(w: Wiring) -> None:
    """In a real-time run, the grid's step k waits for its wall-clock release time."""
    if w.asm.clock is None:
        return
    pacer = w.world.start("Pacer", clock=w.asm.clock).Pacer()
    w.world.connect(pacer, w.entities["grid"], "setpoints")


def add_events(w: Wiring) -> None:
    """The event schedule (only with events): disruptions into the grid, labels to the recorder."""
    schedule = w.asm.schedule
    if not schedule.events:
        return
    events = w.world.start("Events", schedule=schedule, switchings=w.asm.switchings).Events()
    if schedule.on(PHYSICAL):
        w.world.connect(events, w.entities["grid"], "disruptions")
    w.entities["events"] = events
    w.recorded.append(events)


def add_channels(w: Wiring) -> None:
    """Measurement channel (noise, attacks) after the grid; command channel before it. Each only if needed."""
    asm = w.asm
    mpath, cpath = channels(asm)
    if mpath is not None:
        mchan = w.world.start("Channel", path=mpath).MeasurementChannel()
        w.observe_into(mchan, "measurements")
        w.observe = (mchan, "seen")
        w.entities["mchan"] = mchan
        w.recorded.append(mchan)
    if cpath is not None:
        cchan = w.world.start("Channel", path=cpath).CommandChannel()
        w.splice_command_stage(cchan)
        w.entities["cchan"] = cchan
        w.recorded.append(cchan)


def add_detector(w: Wiring) -> None:
    """The detectors (only with detector blocks) on what the controller sees."""
    if not w.asm.detectors:
        return
    det = w.start_placed("detector", detectors=w.asm.detectors).Detector()
    if w.remote("detector"):
        w.relay_from(det, "log")
    w.observe_into(det, "measurements")
    w.entities["detector"] = det
    w.recorded.append(det)


def add_controller(w: Wiring) -> None:
    """The controller (skipped for kind none): observes `w.observe`, its setpoints reach `w.actuate` next step."""
    loaded = w.asm.loaded
    if loaded.scenario.controller.kind == "none":
        return
    live = {}
    if not w.remote("controller"):
        controller, info = build_controller(w.asm)
        if controller.oracle and w.remote("grid"):
            raise PlacementError(f"{type(controller).__name__} is an oracle (it reads the run's grid model): "
                                 "placement.grid must be in-process")
        live = dict(controller=controller, info=info, start=w.asm.inputs.times[0], events=w.asm.events,
                    timeout=loaded.scenario.controller.timeout, forecasts=w.asm.forecasts)
    ctrl = w.start_placed("controller", **live).Controller()
    if w.remote("controller"):
        w.relay_from(ctrl, "log")
    w.observe_into(ctrl, "observation")
    w.actuate_from(ctrl, "setpoints")
    w.entities["controller"] = ctrl
    w.recorded.append(ctrl)


def add_recorder(w: Wiring, recording: Recording, on_step: Callable[[int], None] | None) -> None:
    """The recorder, last: it keeps the `signals` of every recorded entity."""
    rec = w.world.start("Recorder", recording=recording, on_step=on_step).Recorder()
    for entity in w.recorded:
        w.world.connect(entity, rec, "signals")


STAGES: list[Callable[[Wiring], None]] = [add_inputs, add_grid, add_pacer, add_bridge, add_events, add_channels,
                                          add_controller, add_bridge_feedback, add_detector]


def _timed(clock: WallClock, on_step: Callable[[int], None] | None) -> Callable[[int], None]:
    """`on_step` that also notes when each step was complete (the recorder calls it with steps done)."""

    def done(n: int) -> None:
        clock.finished(n - 1)
        if on_step is not None:
            on_step(n)

    return done


def _cancel_pending(world: mosaik.World) -> None:
    """Cancel the simulators' tasks a failed or interrupted run leaves behind (else asyncio prints
    "Task was destroyed but it is pending!" for each of them when the loop closes)."""
    pending = [t for t in asyncio.all_tasks(world.loop) if not t.done()]
    for task in pending:
        task.cancel()
    world.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def run_world(asm: Assembly, recording: Recording, on_step: Callable[[int], None] | None = None) -> None:
    """Build a fresh mosaik World for one run and run it to the horizon (World.run works once)."""
    world = mosaik.World(sim_config(asm.loaded.scenario.placement), mosaik_config={"start_timeout": START_TIMEOUT_S},
                         time_resolution=asm.step_s, skip_greetings=True, configure_logging=False)
    rt = asm.options.realtime
    asm.clock = WallClock(asm.step_s, rt) if rt else None
    if asm.clock is not None:
        on_step = _timed(asm.clock, on_step)
    wiring = Wiring(world, asm)
    try:
        for stage in STAGES:
            stage(wiring)
        add_recorder(wiring, recording, on_step)
        if asm.clock is not None:
            asm.clock.start()
        world.run(until=asm.n_steps, print_progress=False)
    except BaseException:
        _cancel_pending(world)
        world.shutdown()  # World.run shuts down only when it completes
        raise
    finally:
        if asm.clock is not None:
            asm.run_metrics.update(asm.clock.metrics())
