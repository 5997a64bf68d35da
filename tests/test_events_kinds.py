"""The catalogue, kind by kind: each module registers its model, path, targets and transform.

One row per kind (two for delay and drop, which act on either path). The expected paths,
targets and target texts are written out from the scenario reference (docs/events.md), not
computed by the code under test. Adding a kind adds a row here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
import yaml
from pydantic import TypeAdapter

from cosim.detection.network import Network, plan_for
from cosim.detection.wls import WLS
from cosim.events.build import build_schedule
from cosim.events.commands import CommandAttack, make_command_attack
from cosim.events.measurement import Attack, make_attack
from cosim.events.physical import disruptions_at
from cosim.events.randomize import random_params
from cosim.events.registry import all_kinds, kind_of
from cosim.events.schedule import resolve
from cosim.events.targets import Catalog
from cosim.grid.feeders import load_feeder
from cosim.events import models as schema  # the kind lists generated from the registry
from cosim.scenario.schema import Event, Scenario
from events_helpers import scenario_text

DOCS = Path(__file__).resolve().parents[1] / "docs" / "events.md"
SETPOINTS = ("pv1.p_limit_mw", "pv1.q_set_mvar", "wt1.p_limit_mw", "wt1.q_set_mvar")

# kind, entry keys (besides at / duration), path, targets on the noon IEEE 33 scenario, target text
ROWS = [
    ("line_outage", {"line": 7}, "physical", ("line.7",), "line.7"),
    ("dg_trip", {"generator": "*"}, "physical", ("pv1", "wt1"), "*"),
    ("load_step", {"bus": [18, 33], "factor": 1.5}, "physical", ("bus.18", "bus.33"), "bus.18 bus.33"),
    ("cloud_transient", {}, "physical", ("pv1",), "*"),  # PV only
    ("fdi", {"target": "bus.1?.vm_pu", "bias": 0.1}, "measurement",
     tuple(f"bus.{b}.vm_pu" for b in range(10, 20)), "bus.1?.vm_pu"),
    ("fdi_stealthy", {"buses": [17, 18], "delta_p_mw": 0.3}, "measurement", "meters", "buses 17,18"),
    ("replay", {"target": ["bus.3.vm_pu", "bus.4.vm_pu"], "window": "5min"}, "measurement",
     ("bus.3.vm_pu", "bus.4.vm_pu"), "bus.3.vm_pu bus.4.vm_pu"),
    ("delay", {"target": "bus.3.vm_pu", "steps": 2}, "measurement", ("bus.3.vm_pu",), "bus.3.vm_pu"),
    ("delay", {"target": "commands", "steps": 2}, "command", SETPOINTS, "commands"),
    ("drop", {"target": "grid.loss_kw", "fill": "nan"}, "measurement", ("grid.loss_kw",), "grid.loss_kw"),
    ("drop", {"target": "commands.*.p_mw", "rate": 0.5}, "command", ("pv1.p_limit_mw", "wt1.p_limit_mw"),
     "commands.*.p_mw"),
    ("sensor_stuck", {"target": "pv1.p_mw"}, "measurement", ("pv1.p_mw",), "pv1.p_mw"),
    ("timestamp_skew", {"target": "bus.3?.vm_pu", "skew": "2min"}, "measurement",
     tuple(f"bus.{b}.vm_pu" for b in range(30, 34)), "bus.3?.vm_pu"),
    ("command_injection", {"target": "pv1.q_mvar", "value": -0.5}, "command", ("pv1.q_set_mvar",), "pv1.q_mvar"),
    ("command_tamper", {"target": "pv*.p_mw", "scale": 0.3}, "command", ("pv1.p_limit_mw",), "pv*.p_mw"),
    ("flood", {"target": "grid_server", "rate_per_s": 100}, "wire", ("grid_server",), "grid_server"),
]
EXTRA = {"fdi_stealthy": "detector: {}\n", "flood": "grid_server: {port: 15020}\n"}  # what the kind needs to act on
# IEEE 33 has no transformer: trafo_outage is checked on pandapower's four-bus system
TRAFO_ROW = ("trafo_outage", {"trafo": 0}, "physical", ("trafo.0",), "trafo.0")
# IEEE 33's default measurement set: V, P and Q at the 33 buses, P and Q on all 37 lines (the open ones read 0)
N_METERS = 3 * 33 + 2 * 37


def _schedule(kind: str, keys: dict, extra: str = ""):
    entry = {"at": "10min", "duration": "5min", "kind": kind, **keys}
    text = scenario_text(extra + "events:\n  - " + yaml.safe_dump(entry, default_flow_style=True))
    scn = Scenario.model_validate(yaml.safe_load(text))
    return scn, build_schedule(scn, load_feeder("ieee33"))


def _four_bus(tmp_path: Path) -> Path:
    path = tmp_path / "four.json"
    pp.to_json(pn.simple_four_bus_system(), str(path))
    return path


def test_every_kind_has_a_row_a_module_and_a_doc_section():
    names = [k.name for k in all_kinds()]
    assert set(names) == {r[0] for r in ROWS} | {TRAFO_ROW[0]}
    modules = sorted(p.stem for p in (Path(schema.__file__).parent / "kinds").glob("[!_]*.py"))
    assert modules == sorted(names)
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(encoding="utf-8"), re.M))
    assert documented >= set(names)
    for k in all_kinds():
        assert k.model.__module__ == f"cosim.events.kinds.{k.name}"
        assert kind_of(k.name) is k


def test_kind_lists_and_the_union_are_the_documented_catalogue():
    assert schema.PHYSICAL_KINDS == ("line_outage", "trafo_outage", "dg_trip", "load_step", "cloud_transient")
    assert schema.MEASUREMENT_KINDS == ("fdi", "fdi_stealthy", "replay", "delay", "drop", "sensor_stuck",
                                        "timestamp_skew")
    assert schema.COMMAND_KINDS == ("command_injection", "command_tamper", "delay", "drop")
    assert schema.EVENT_KINDS == schema.PHYSICAL_KINDS + schema.MEASUREMENT_KINDS[:3] + ("delay", "drop") + (
        "sensor_stuck", "timestamp_skew", "command_injection", "command_tamper", "flood")
    assert schema.RANDOM_KINDS == schema.EVENT_KINDS[:-1]  # all but flood (it needs a device) can be drawn at random


@pytest.mark.parametrize("kind,keys,path,targets,text", ROWS, ids=[f"{r[0]}-{r[2]}" for r in ROWS])
def test_kind_round_trips_and_resolves(kind, keys, path, targets, text):
    scn, (schedule, problems) = _schedule(kind, keys, EXTRA.get(kind, ""))
    assert problems == []
    (event,) = schedule.events
    spec = event.spec
    assert type(spec) is kind_of(kind).model and spec.kind == kind
    assert TypeAdapter(Event).validate_python(spec.model_dump()) == spec  # the schema round-trip
    assert (event.path, event.start, event.end, event.target_text) == (path, 10, 15, text)
    if targets == "meters":
        assert len(event.targets) == N_METERS and "bus.18.vm_pu" in event.targets
    else:
        assert event.targets == targets
    rng = np.random.default_rng(0)
    if path == "measurement":
        network = Network(load_feeder("ieee33"))
        wls = WLS(network, network.meters(plan_for(scn.detector, load_feeder("ieee33"))), significance=0.01) \
            if scn.detector else None
        assert isinstance(make_attack(event, rng, 60.0, wls, lambda k: network.topology()), Attack)
    elif path == "command":
        assert isinstance(make_command_attack(event, rng), CommandAttack)
    else:
        with pytest.raises(ValueError, match="is not a measurement-path attack"):
            make_attack(event, rng, 60.0)


def test_trafo_outage_round_trips_and_resolves(tmp_path):
    kind, keys, path, targets, text = TRAFO_ROW
    scn = Scenario.model_validate({"name": "t", "clock": {"duration": "1h", "step": "1min"},
                                   "grid": {"feeder": str(_four_bus(tmp_path))},
                                   "events": [{"at": "10min", "duration": "5min", "kind": kind, **keys}]})
    schedule, problems = build_schedule(scn, load_feeder(scn.grid.feeder))
    assert problems == []
    (event,) = schedule.events
    assert (event.path, event.targets, event.target_text) == (path, targets, text)
    assert disruptions_at(schedule.events, 10).trafos_out == frozenset({0})
    assert disruptions_at(schedule.events, 15).trafos_out == frozenset()


def test_physical_kinds_contribute_their_share_of_the_disruptions():
    entries = [("line_outage", {"line": 7}), ("dg_trip", {"generator": "wt1"}),
               ("load_step", {"bus": [18, 33], "factor": 1.5}), ("cloud_transient", {"depth": 0.75})]
    events = [_schedule(kind, keys)[1][0].events[0] for kind, keys in entries]
    d = disruptions_at(events, 12)
    assert d.lines_out == frozenset({7}) and d.trafos_out == frozenset() and d.ders_tripped == frozenset({"wt1"})
    assert d.load_factor == ((18, 1.5), (33, 1.5)) and d.der_availability == (("pv1", 0.25),)
    assert disruptions_at(events, 9) == disruptions_at(events, 15) == type(d)()  # outside the events: nothing
    assert disruptions_at([_schedule("fdi", {"target": "bus.3.vm_pu", "bias": 1})[1][0].events[0]], 12) == type(d)()


@pytest.mark.parametrize("kind", schema.RANDOM_KINDS)
def test_random_parameters_make_a_valid_event(kind):
    scn = Scenario.model_validate(yaml.safe_load(scenario_text("detector: {}\n")))
    cat = Catalog.of(scn, load_feeder("ieee33"))
    if kind_of(kind).unusable(cat):
        pytest.skip(f"{kind} cannot be drawn on IEEE 33")
    rng = np.random.default_rng(4)
    for _ in range(20):
        at = 600.0
        entry = {"kind": kind, "at": at, "duration": 300.0, **random_params(kind, rng, cat, 60.0, at, 300.0)}
        event = resolve(TypeAdapter(Event).validate_python(entry), cat, scn.clock, ("bus.3.vm_pu",))
        assert event.kind == kind and event.targets
