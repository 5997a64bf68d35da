"""Scenario -> everything a run needs, built once before any simulator starts: the grid model, the
input series, the event schedule, the estimator. No mosaik here: the co-simulation, the RL
environment and the evaluation rollout all start from an `Assembly`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from cosim.detection.network import Topology
from cosim.detection.runtime import Running, build_detectors
from cosim.detection.wls import WLS, estimator_for
from cosim.eventlog import EventLog
from cosim.events.build import build_schedule
from cosim.events.commands import CommandPath
from cosim.events.measurement import MeasurementPath
from cosim.events.paths import command_path, measurement_path
from cosim.events.physical import topology_timeline
from cosim.events.restoration import Refusal, Restoration, Switching, outages_of, plan
from cosim.events.schedule import PHYSICAL, Schedule
from cosim.events.targets import measurement_model
from cosim.forecast.build import Forecasts, build_forecasts
from cosim.grid.model import DER, GridModel
from cosim.inputs import Inputs, build_inputs
from cosim.kernel import ControlLoop
from cosim.realtime import WallClock
from cosim.scenario.loader import LoadedScenario
from cosim.scenario.storage import storage_units


@dataclass(frozen=True)
class RunOptions:
    """How to run, not what: real-time pacing (wall s per simulated s), devices read-only, start without missing
    devices, `on_row`, called on the run's thread with each recorded step and its row (the live view), and
    `capture_modbus`: record the devices' Modbus traffic with attack labels (`hil.capture`)."""

    realtime: float | None = None
    read_only: bool = False
    degraded: bool = False
    on_row: Callable[[int, dict[str, float]], None] | None = None
    capture_modbus: bool = False


@dataclass
class Assembly:
    """Everything a run needs, built from a scenario before mosaik starts."""

    loaded: LoadedScenario
    model: GridModel
    inputs: Inputs
    step_s: float  # seconds (a whole number of milliseconds)
    n_steps: int
    events: EventLog = field(default_factory=EventLog)  # simulators add events; the runner writes them
    schedule: Schedule = field(default_factory=Schedule)  # scheduled disruptions and attacks
    estimator: WLS | None = None  # state estimation of the detector (and of a stealthy attacker)
    options: RunOptions = field(default_factory=RunOptions)
    clock: WallClock | None = None  # the wall-clock schedule of a real-time run
    run_metrics: dict[str, float] = field(default_factory=dict)  # measured by simulators, not from the series
    detectors: list[Running] = field(default_factory=list)  # the scenario's detector blocks, built
    switchings: tuple[Switching, ...] = ()  # tie lines closed by restoration (`failures.restoration`)
    refusals: tuple[Refusal, ...] = ()  # dead islands restoration could not re-energise
    forecasts: Forecasts | None = None  # what controllers observe of the future (`forecast:`, cosim/forecast)
    # the run's WLS estimate sources by network and meters, shared by its estimators (`cosim.detection.kinds.wls`)
    estimate_sources: dict[tuple, Any] = field(default_factory=dict)
    capture: Any = None  # the bridge's Modbus capture with `capture_modbus` (`hil.capture.Capture`); the runner writes it


def assemble(loaded: LoadedScenario, events: EventLog | None = None) -> Assembly:
    """Grid model, input series, schedule, estimator and detectors of a scenario; the model works on its own copy of the net.

    `events` is where the run's simulators and detectors add events (default a new `EventLog`; a remote
    simulator passes its `cosim.sims.remote.Outbox`)."""
    scn = loaded.scenario
    ders = [DER(g.name, g.kind, g.bus, g.p_mw, g.rating_mva) for g in scn.generators]
    shunts = []
    if scn.devices:  # elements devices add: capacitor banks, as switched shunts
        from hil.devices import device_shunts

        shunts = device_shunts(scn, loaded.base_dir)
    schedule, _ = build_schedule(scn, loaded.feeder, loaded.base_dir)  # the loader has reported its problems
    metering = measurement_model(scn)
    estimator = estimator_for(metering, loaded.feeder) if metering is not None else None
    metered = metering is not None or scn.grid_server is not None  # the grid server publishes line flows
    model = GridModel(loaded.feeder, ders, scn.grid.engine, scn.grid.line_max_i_ka, metering=metered,
                      shunts=shunts, storage=storage_units(scn), step_s=scn.clock.step)
    inputs = build_inputs(scn, len(model.load_p_nom), loaded.base_dir)
    asm = Assembly(loaded, model, inputs, scn.clock.step, scn.clock.n_steps, schedule=schedule,
                   estimator=estimator, events=events if events is not None else EventLog())
    asm.detectors = build_detectors(asm)
    asm.forecasts = build_forecasts(loaded, inputs, model.load_p_nom)
    if scn.failures is not None and scn.failures.restoration is not None:
        _restore(asm, scn.failures.restoration)
    return asm


def _restore(asm: Assembly, spec: Restoration) -> None:
    """Plan the run's restoration switching at each step's operating point (the runner logs it with the events)."""
    inp, m = asm.inputs, asm.model

    def operating_point(k: int):
        return m.operating_point(inp.load_scale[k], inp.der_p_avail_mw[k], inp.native_pv_pu[k], inp.native_wind_pu[k])

    switchings, refusals = plan(asm.loaded.feeder, outages_of(asm.schedule.on(PHYSICAL)), asm.n_steps, asm.step_s,
                                spec, operating_point)
    asm.switchings, asm.refusals = tuple(switchings), tuple(refusals)


def topology_at(asm: Assembly) -> Callable[[int], Topology] | None:
    """Step -> the estimator's topology with that step's outages (None without an estimator)."""
    return topology_timeline(asm.estimator.network, asm.schedule.on(PHYSICAL)) if asm.estimator else None


def channels(asm: Assembly) -> tuple[MeasurementPath | None, CommandPath | None]:
    """The measurement and command channels of a run (None where the scenario needs none)."""
    scn = asm.loaded.scenario
    return (measurement_path(scn, asm.schedule, asm.estimator, topology_at(asm), asm.loaded.feeder),
            command_path(scn, asm.schedule, asm.loaded.feeder))


def control_loop(asm: Assembly) -> ControlLoop:
    """The co-simulation's loop without mosaik over an assembly: its inputs, schedule and both channels."""
    return ControlLoop(asm.model, asm.inputs, asm.schedule, *channels(asm), switchings=asm.switchings)
