"""The channel contents of a run: its measurement and command paths built from the schedule."""

from __future__ import annotations

from typing import Callable

from cosim.detection.models import metering_of
from cosim.detection.network import Topology
from cosim.detection.wls import WLS
from cosim.events.commands import CommandPath, make_command_attack
from cosim.events.measurement import MeasurementPath, SensorNoise, make_attack
from cosim.events.schedule import COMMAND, MEASUREMENT, Schedule
from cosim.events.targets import Catalog
from cosim.grid.feeders import Feeder
from cosim.scenario.metering import noise_memory
from cosim.scenario.schema import Scenario
from cosim.seeding import rng_for


def measurement_path(scn: Scenario, schedule: Schedule, estimator: WLS | None,
                     topology_at: Callable[[int], Topology] | None, feeder: Feeder) -> MeasurementPath | None:
    """Sensor noise (when the detector asks for it) and the measurement attacks; None if neither."""
    # the others travel on a device's wire, or between the controller's agents (`message_path`)
    events = [e for e in schedule.on(MEASUREMENT) if not e.wire and not e.on_messages]
    metering = metering_of(scn)
    noisy = metering is not None and metering.noise
    if not events and not noisy:
        return None
    attacks = [make_attack(e, rng_for(scn.seed, "attack", str(e.id)), schedule.step_s, estimator, topology_at)
               for e in events]
    noise = None
    if noisy:
        memory = noise_memory(metering.run_metering, feeder, estimator.meters.names, schedule.step_s)
        noise = SensorNoise(estimator.meters.names, estimator.meters.noise, rng_for(scn.seed, "sensors"), memory)
    return MeasurementPath(attacks, noise)


def message_path(scn: Scenario, schedule: Schedule) -> MeasurementPath:
    """The channel between a controller's DER agents: the measurement attacks on `msg.*` signals, seeded as in
    `measurement_path` (the same event gets the same draws whichever path carries it)."""
    events = [e for e in schedule.on(MEASUREMENT) if e.on_messages]
    return MeasurementPath([make_attack(e, rng_for(scn.seed, "attack", str(e.id)), schedule.step_s) for e in events])


def command_path(scn: Scenario, schedule: Schedule, feeder: Feeder) -> CommandPath | None:
    """The command attacks over the scenario's setpoints; None without any."""
    events = [e for e in schedule.on(COMMAND) if not e.wire]
    if not events:
        return None
    attacks = [make_command_attack(e, rng_for(scn.seed, "attack", str(e.id))) for e in events]
    return CommandPath(attacks, Catalog.of(scn, feeder).setpoints)
