"""Reliability indices (SAIFI, SAIDI, CAIDI, ENS) and the `failures:` models on IEEE 33 runs through mosaik.

Hand case: IEEE 33 (Baran & Wu 1989) at constant nominal load, one customer per load: 32 loads
(buses 2..33). Line 25 (bus 6 -> 26) out for 20 min cuts off buses 26..33, 8 loads of
60 + 60 + 60 + 120 + 200 + 150 + 210 + 60 = 920 kW. So SAIFI = 8/32, SAIDI = 8 x 20 / 32 min,
CAIDI = 20 min and ENS = 920 kW x 1/3 h.
"""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import pandapower.topology as top
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cosim.assembly import assemble
from cosim.cli import app
from cosim.events.failures import failure_outages
from cosim.events.targets import Catalog
from cosim.grid.feeders import load_feeder
from cosim.metrics import METRICS, customers_of, reliability_indices
from cosim.recording import Recording
from cosim.scenario.limits import MAX_EVENTS
from cosim.scenario.loader import load_scenario
from cosim.scenario.schema import Scenario
from cosim.world import run_world

SCENARIO = """\
name: rel
seed: 3
clock: {{start: "2025-06-21T11:00:00", duration: 1h, step: 1min}}
grid: {{feeder: ieee33}}
loads: {{profile: constant}}
impact: {{baseline: false}}
events:
{events}
"""

CUT_OFF_KW = 60 + 60 + 60 + 120 + 200 + 150 + 210 + 60  # buses 26..33 (Baran & Wu 1989)


def _text(events: str) -> str:
    return SCENARIO.format(events=textwrap.indent(textwrap.dedent(events), "  "))


def _simulate(tmp_path: Path, text: str) -> pd.DataFrame:
    """Run a scenario through a real mosaik world (no report) and return its recorded time series."""
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    asm = assemble(load_scenario(path))
    recording = Recording(tmp_path / "s.parquet", asm.inputs.times[0], asm.step_s)
    run_world(asm, recording)
    recording.close()
    return pd.read_parquet(tmp_path / "s.parquet")


def _run(tmp_path: Path, events: str) -> tuple[dict, pd.DataFrame]:
    """`cosim run` of the scenario with `events`: its metrics.json and time series."""
    path = tmp_path / "rel.yaml"
    path.write_text(_text(events), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text()), pd.read_parquet(out / "timeseries.parquet")


@pytest.fixture(scope="module")
def one_outage(tmp_path_factory) -> tuple[dict, pd.DataFrame]:
    return _run(tmp_path_factory.mktemp("rel"), "- {kind: line_outage, at: 10min, duration: 20min, line: 25}\n")


def test_ieee33_has_one_customer_per_load_bus():
    customers = customers_of(load_feeder("ieee33"))
    assert customers == {b: 1.0 for b in range(2, 34)}


def test_one_line_outage_matches_the_hand_computation(one_outage):
    metrics, _ = one_outage
    assert metrics["saifi"] == pytest.approx(8 / 32)
    assert metrics["saidi_min"] == pytest.approx(8 * 20 / 32)
    assert metrics["caidi_min"] == pytest.approx(20.0)
    assert metrics["ens_kwh"] == pytest.approx(CUT_OFF_KW * 20 / 60, rel=1e-9)
    assert metrics["ens_kwh"] == pytest.approx(metrics["unserved_energy_kwh"])


def test_customers_per_kw_weight_the_cut_off_load(one_outage):
    """With one customer per kW, SAIFI is the cut-off share of the feeder's 3715 kW (Baran & Wu)."""
    _, ts = one_outage
    kpis = reliability_indices(ts, 60.0, customers_of(load_feeder("ieee33"), kw_per_customer=1.0))
    assert kpis["saifi"] == pytest.approx(CUT_OFF_KW / 3715.0)
    assert kpis["saidi_min"] == pytest.approx(20 * CUT_OFF_KW / 3715.0)


def test_two_interruptions_of_one_branch_count_twice(tmp_path):
    ts = _simulate(tmp_path, _text("""\
        - {kind: line_outage, at: 5min, duration: 10min, line: 25}
        - {kind: line_outage, at: 40min, duration: 5min, line: 25}
        """))
    metrics = reliability_indices(ts, 60.0, customers_of(load_feeder("ieee33")))
    assert metrics["saifi"] == pytest.approx(2 * 8 / 32)
    assert metrics["saidi_min"] == pytest.approx(8 * 15 / 32)
    assert metrics["caidi_min"] == pytest.approx(7.5)


def test_a_run_without_outages_has_zero_indices_and_no_caidi(tmp_path):
    ts = _simulate(tmp_path, _text("- {kind: load_step, at: 10min, duration: 5min, bus: 18, factor: 1.2}\n"))
    metrics = reliability_indices(ts, 60.0, customers_of(load_feeder("ieee33")))
    assert (metrics["saifi"], metrics["saidi_min"], metrics["ens_kwh"]) == (0.0, 0.0, 0.0)
    assert metrics["caidi_min"] is None  # null in metrics.json: no interruption to average over


def test_every_reliability_key_has_metadata(one_outage):
    metrics, _ = one_outage
    for key in ("saifi", "saidi_min", "caidi_min", "ens_kwh"):
        assert key in metrics and METRICS[key].group == "reliability"


FAILURES = """\
name: fail
seed: 4
clock: {start: "2025-06-21T00:00:00", duration: 6h, step: 5min}
grid: {feeder: ieee33}
impact: {baseline: false}
failures:
  lines: {rate_per_year: 200, repair: 1h}
"""


def _scenario(text: str, **update) -> Scenario:
    scn = Scenario.model_validate(yaml.safe_load(text))
    return scn.model_copy(update=update)


def _line_outages(scn: Scenario) -> list:
    return failure_outages(scn.failures, Catalog.of(scn, load_feeder("ieee33")), scn.clock.step, scn.clock.n_steps,
                           scn.seed, MAX_EVENTS)


def test_failure_draws_are_seeded_and_follow_the_rate():
    """A year of hourly steps, 100 failures per line and year, 1 h repair: the 32 in-service lines of IEEE 33
    fail about 32 x 8766 h / (87.66 h up + 1 h repair) times (a renewal process), within 4 standard deviations."""
    scn = _scenario(FAILURES.replace("duration: 6h, step: 5min", "duration: 365.25d, step: 1h")
                    .replace("rate_per_year: 200", "rate_per_year: 100"))
    outages = _line_outages(scn)
    assert outages == _line_outages(scn)
    other = _scenario(FAILURES, seed=5)
    assert _line_outages(other) != _line_outages(_scenario(FAILURES))
    expected = 32 * 8766.0 / (8766.0 / 100 + 1.0)
    assert abs(len(outages) - expected) < 4 * expected ** 0.5
    assert {o.kind for o in outages} == {"line_outage"} and {o.duration for o in outages} == {3600.0}
    by_line: dict[int, list] = {}
    for o in outages:
        by_line.setdefault(o.line, []).append(o)
    assert len(by_line) == 32  # every in-service line fails, no tie line does
    for seq in by_line.values():  # one line is never out twice at once
        assert all(a.at + a.duration <= b.at for a, b in zip(seq, seq[1:]))


def test_failures_seed_overrides_the_scenario_seed():
    scn = _scenario(FAILURES)
    pinned = scn.model_copy(update={"failures": scn.failures.model_copy(update={"seed": 4})})
    assert _line_outages(pinned.model_copy(update={"seed": 99})) == _line_outages(scn)


def test_drawn_outages_give_the_indices_pandapower_topology_gives(tmp_path):
    """SAIFI and SAIDI of a run with drawn failures against the buses pandapower's topology finds unsupplied."""
    ts = _simulate(tmp_path, FAILURES)
    feeder = load_feeder("ieee33")
    net, label = feeder.net, dict(zip(feeder.net.bus.index, feeder.bus_labels.tolist()))
    load_buses = {label[b] for b in net.load.bus}
    events = _line_outages(_scenario(FAILURES))
    assert len(events) >= 2
    ci = cmi = 0.0
    dead_before: set[int] = set()
    for k in range(len(ts)):
        out = [e.line for e in events if e.at <= k * 300.0 < e.at + e.duration]
        cut = copy.deepcopy(net)
        cut.line.loc[[feeder.line_index(n) for n in out], "in_service"] = False
        dead = {label[b] for b in top.unsupplied_buses(cut)} & load_buses
        ci += len(dead - dead_before)
        cmi += len(dead) * 5.0
        dead_before = dead
    kpis = reliability_indices(ts, 300.0, customers_of(feeder))
    assert ci > 0
    assert kpis["saifi"] == pytest.approx(ci / 32)
    assert kpis["saidi_min"] == pytest.approx(cmi / 32)


def test_a_repair_time_off_the_step_grid_is_one_paragraph_and_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(FAILURES.replace("repair: 1h", "repair: 7min"), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "failures.lines.repair" in result.output and "not a whole number of steps" in result.output
    assert "Traceback" not in result.output


def test_failure_rates_that_draw_too_many_outages_are_refused(tmp_path):
    """200 per line and year on 32 lines over 6 h is ~4 outages; 10,000 over 365 days is ~320,000 > MAX_EVENTS."""
    path = tmp_path / "many.yaml"
    text = FAILURES.replace("rate_per_year: 200", "rate_per_year: 10000").replace("6h, step: 5min", "365d, step: 1h")
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "failures.lines.rate_per_year" in result.output and "MAX_EVENTS" in result.output
