"""The schedule: targets, wildcards, step placement, labels, random expansion."""

from __future__ import annotations

import pytest
import numpy as np
import yaml

from cosim.events.build import build_schedule
from cosim.events.schedule import conflict
from cosim.events.targets import Catalog
from cosim.grid.feeders import load_feeder
from cosim.scenario.schema import Scenario
from events_helpers import scenario_text, simulate

RED_TEAM = """\
events:
  - {at: 5min, duration: 10min, kind: line_outage, line: 30}
  - {at: 7min, duration: 3min, kind: dg_trip, generator: pv1}
  - {at: 12min, duration: 6min, kind: fdi, target: bus.18.vm_pu, bias: -0.04}
  - {at: 20min, duration: 4min, kind: replay, target: "bus.*.vm_pu", window: 4min}
  - {at: 25min, duration: 5min, kind: command_injection, target: pv1.q_mvar, value: -0.2}
  - {at: 31min, duration: 2min, kind: drop, target: commands, rate: 1.0}
  - {at: 40min, duration: 20min, kind: sensor_stuck, target: bus.30.vm_pu}
"""


def _scenario(extra: str, **clock) -> Scenario:
    return Scenario.model_validate(yaml.safe_load(scenario_text(extra, **clock)))


def test_targets_resolve_with_wildcards_and_aliases():
    scn = _scenario("")
    cat = Catalog.of(scn, load_feeder("ieee33"))
    assert cat.match_signals("bus.1?.vm_pu") == tuple(f"bus.{b}.vm_pu" for b in range(10, 20))
    assert cat.match_signals(["pv1.*", "grid.loss_kw"]) == ("grid.loss_kw", "pv1.p_mw", "pv1.q_mvar", "pv1.p_avail_mw")
    assert cat.match_setpoints("pv1.q_mvar") == ("pv1.q_set_mvar",)
    assert cat.match_setpoints("commands.*.p_mw") == ("pv1.p_limit_mw", "wt1.p_limit_mw")
    assert cat.match_setpoints("commands") == ("pv1.p_limit_mw", "pv1.q_set_mvar", "wt1.p_limit_mw", "wt1.q_set_mvar")
    assert cat.match_generators("*") == ("pv1", "wt1")


def test_events_land_on_the_step_grid_with_paths():
    scn = _scenario(RED_TEAM)
    schedule, problems = build_schedule(scn, load_feeder("ieee33"))
    assert problems == []
    got = [(e.id, e.kind, e.path, e.start, e.end) for e in schedule.events]
    assert got == [(1, "line_outage", "physical", 5, 15), (2, "dg_trip", "physical", 7, 10),
                   (3, "fdi", "measurement", 12, 18), (4, "replay", "measurement", 20, 24),
                   (5, "command_injection", "command", 25, 30), (6, "drop", "command", 31, 33),
                   (7, "sensor_stuck", "measurement", 40, 60)]


def test_labels_line_up_with_the_schedule_to_the_step(tmp_path):
    ts = simulate(tmp_path, RED_TEAM)
    k = np.arange(len(ts))
    attack = np.zeros(len(ts), bool)
    disruption = np.zeros(len(ts), bool)
    for first, last in ((12, 18), (20, 24), (25, 30), (31, 33), (40, 60)):  # from at / duration / 1 min steps
        attack[first:last] = True
    disruption[5:15] = True
    assert (ts["label.attack"].to_numpy() == attack).all()
    assert (ts["label.disruption"].to_numpy() == disruption).all()
    kinds = ts["label.kind"].tolist()
    assert kinds[4] == "" and kinds[5] == "line_outage" and kinds[7] == "dg_trip+line_outage"
    assert kinds[12] == "fdi+line_outage" and kinds[15] == "fdi" and kinds[59] == "sensor_stuck"
    assert ts["label.event"].iloc[8] == "1+2"
    assert ((ts["label.kind"] != "") == (attack | disruption)).all()
    assert ts.loc[k == 30, "label.kind"].item() == ""


RANDOM = """\
events:
  - {at: 1h, duration: 30min, kind: fdi, target: bus.18.vm_pu, bias: 0.05}
  - random: {kinds: [line_outage, dg_trip, fdi, replay, delay, drop, command_tamper, fdi_stealthy], rate_per_day: 40, seed: 11}
"""


def test_random_schedule_is_reproducible_and_clash_free():
    feeder = load_feeder("ieee33")
    a, problems = build_schedule(_scenario(RANDOM, duration="24h", step="5min"), feeder)
    b, _ = build_schedule(_scenario(RANDOM, duration="24h", step="5min"), feeder)
    c, _ = build_schedule(_scenario(RANDOM.replace("seed: 11", "seed: 12"), duration="24h", step="5min"), feeder)
    assert problems == []
    describe = lambda s: [(e.kind, e.start, e.end, e.targets, e.spec.model_dump()) for e in s.events]  # noqa: E731
    assert describe(a) == describe(b) and describe(a) != describe(c)
    assert len(a.events) >= 20 and {e.kind for e in a.events} >= {"line_outage", "fdi", "replay"}
    for i, e in enumerate(a.events):
        assert 0 <= e.start < e.end <= 288
        assert all(conflict(f, e) is None for f in a.events[:i])
    assert [e.start for e in a.events] == sorted(e.start for e in a.events)


def test_random_buses_narrow_the_targets_of_kinds_that_pick_a_bus():
    """`random.buses`: stealthy shifts, voltage biases, stuck sensors and load steps land only there; other kinds
    keep their own targets."""
    feeder = load_feeder("ieee33")
    text = """\
events:
  - random: {kinds: [fdi_stealthy, fdi, sensor_stuck, load_step, dg_trip], rate_per_day: 60, seed: 3, buses: [18, 25]}
"""
    schedule, problems = build_schedule(_scenario(text, duration="24h", step="5min"), feeder)
    assert problems == []
    picked: dict[str, set[int]] = {}
    for e in schedule.events:
        spec = e.spec.model_dump()
        buses = {"fdi_stealthy": lambda: set(spec["buses"]), "load_step": lambda: {spec["bus"]},
                 "dg_trip": set}.get(e.kind, lambda: {int(spec["target"].split(".")[1])})()
        picked.setdefault(e.kind, set()).update(buses)
    assert set(picked) == {"fdi_stealthy", "fdi", "sensor_stuck", "load_step", "dg_trip"}
    for kind in ("fdi_stealthy", "fdi", "sensor_stuck", "load_step"):
        assert picked[kind] and picked[kind] <= {18, 25}, (kind, picked[kind])


@pytest.mark.parametrize("buses, words", [([1], "bus 1 is the slack bus"), ([99], "bus 99 is not a bus of the grid")])
def test_random_buses_that_cannot_be_targets_are_refused(write_scenario, cli, buses, words):
    from events_helpers import scenario_text

    path = write_scenario(scenario_text(f"events:\n  - random: {{kinds: [fdi_stealthy], rate_per_day: 3, buses: {buses}}}\n"))
    code, output, _ = cli("validate", path)
    text = " ".join(output.split())
    assert code == 2 and "events[0].random.buses" in text and words in text and "Traceback" not in text


@pytest.mark.slow  # a whole day or a real process; CI runs it in the slow step
def test_same_scenario_and_seed_give_identical_runs(tmp_path):
    extra = RANDOM.replace("rate_per_day: 40", "rate_per_day: 8") + "detector: {}\n"
    one = simulate(tmp_path, extra, duration="6h", step="5min", name="one")
    two = simulate(tmp_path, extra, duration="6h", step="5min", name="two")
    assert one.equals(two)
    assert one["label.attack"].sum() > 0 and one.filter(like="seen.").shape[1] > 0
