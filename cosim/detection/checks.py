"""Loader checks of a run's metering: placements on the feeder, one place to give the meters, observability,
and stealthy attacks whose access admits no false data at all."""

from __future__ import annotations

import numpy as np

from cosim.detection.models import detector_specs
from cosim.detection.network import Network, plan_for
from cosim.detection.stealthy import best_false_data
from cosim.detection.wls import unobservable_buses
from cosim.events.kinds.fdi_stealthy import injection_shift, writable_meters
from cosim.grid.feeders import Feeder
from cosim.scenario.schema import Detector, Scenario


def _placement_problems(scn: Scenario, feeder: Feeder) -> list[tuple[tuple, str]]:
    problems = []
    if any(key in d.model_fields_set for d in detector_specs(scn) for key in ("measurements", "noise")):
        problems.append((("metering",), "give the meters either in metering: or in a detector's measurements / "
                                        "noise, not both"))
    known = {"bus": set(feeder.bus_labels.tolist()), "line": set(feeder.line_labels.tolist())}
    for key, what in (("voltage", "bus"), ("injections", "bus"), ("flows", "line")):
        where = getattr(scn.metering, key)
        missing = [p for p in (where if isinstance(where, list) else []) if isinstance(p, int) and p not in known[what]]
        if missing:
            problems.append((("metering", key), f"{what} {missing[0]} does not exist on feeder {scn.grid.feeder} "
                                                f"({feeder.describe(what)})"))
    return problems


def fused_bus_problems(scn: Scenario, network: Network) -> list[tuple[tuple, str]]:
    """Generators and batteries on a bus whose injection no meter reads alone (closed bus-bus switches join it
    to the bus that meters their sum), as problems."""
    unmetered = network.unmetered_injections()
    problems = []
    for key in ("generators", "storage"):
        for i, unit in enumerate(getattr(scn, key)):
            if unit.bus in unmetered:
                at = unmetered[unit.bus]
                where = f"place it at bus {at}" if at is not None else "place it at a bus of its own"
                problems.append(((key, i, "bus"), f"bus {unit.bus} is joined to other buses by closed bus-bus "
                                 "switches; the detector meters their joint injection at "
                                 f"{'bus ' + str(at) if at is not None else 'none of them'} only: {where}"))
    return problems


def metering_problems(scn: Scenario, feeder: Feeder, model: Detector) -> list[tuple[tuple, str]]:
    """(path in the scenario, message) for metering that cannot run: bad placements, a generator or battery on a
    bus whose injection no meter reads alone, an unobservable feeder, a
    stealthy attack whose access can write no false data that fakes its injections."""
    if scn.metering is not None:
        problems = _placement_problems(scn, feeder)
        if problems:
            return problems
    network = Network(feeder)
    fused = fused_bus_problems(scn, network)
    if fused:
        return fused
    meters = network.meters(plan_for(model, feeder))
    topo = network.topology()
    loose = unobservable_buses(network, meters, topo)
    if loose:
        where = ("metering",) if scn.metering is not None else ("detector", "measurements")
        shown = ", ".join(map(str, loose[:8])) + (f", ... ({len(loose)} in all)" if len(loose) > 8 else "")
        return [(where, f"the {len(meters.names)} meters leave the feeder unobservable: state estimation cannot "
                        f"determine the voltage at bus {shown}; meter those buses or add load pseudo-measurements "
                        "(metering: {pseudo_loads: {error: 0.3}})")]
    return [problem for i, e in enumerate(scn.events)
            if (problem := _stealthy_problem(i, e, feeder, network, meters, topo))]


def _stealthy_problem(i: int, event, feeder: Feeder, network: Network, meters, topo) -> tuple[tuple, str] | None:
    """A stealthy event whose access admits no false data at flat start (not even one that leaves a residual),
    as a problem."""
    if getattr(event, "kind", None) != "fdi_stealthy" or (event.meters is None and event.access is None):
        return None
    writable = np.isin(meters.names, writable_meters(event, feeder, meters.names))
    if not writable.any() or any(b not in network.bus_row for b in event.buses):
        return None  # the event's target check names what is missing
    delta = injection_shift(event, network)
    if best_false_data(network, topo, network.flat_start(topo), meters, writable, *delta) is not None:
        return None
    return (("events", i, "access" if event.access is not None else "meters"),
            f"no false data the attacker can write with access to these {int(writable.sum())} meters makes bus "
            f"{', '.join(map(str, event.buses))} seem to inject more: the meters it cannot write pin the estimate "
            "there (faking it would move the estimate beyond the linear model); give access to more meters (the "
            "injections and flows around those buses) or use kind fdi")
