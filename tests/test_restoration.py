"""Restoration by switching on tie lines (`failures.restoration`) on IEEE 33, through real mosaik runs.

Hand case: IEEE 33 (Baran & Wu 1989) at constant nominal load, one customer per load (32 loads).
Line 27 (bus 27 -> 28) out from 10 to 30 min cuts off buses 28..33: 6 loads of
60 + 120 + 200 + 150 + 210 + 60 = 800 kW. Tie 37 (bus 25 -> 29) reconnects them; tie 36
(bus 18 -> 33) does too, but leaves bus 30 at 0.76 pu. Without restoration the 6 customers are
off for 20 min: SAIFI 6/32, SAIDI 6 x 20 / 32 min, ENS 800 kW x 1/3 h. With a 5-min switching
time they are off 5 min: SAIFI 6/32 (5 min is sustained), SAIDI 6 x 5 / 32, ENS 800 kW x 5/60 h.
With a 2-min switching time the interruption is momentary: SAIFI 0, MAIFI 6/32.
"""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import networkx as nx
import numpy as np
import pandapower as pp
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cosim.cli import app
from cosim.events.restoration import Outage, Restoration, plan
from cosim.grid.feeders import load_feeder
from cosim.grid.model import Disruptions, GridModel
from cosim.grid.restoration import Configuration, Limits, dead_islands, graph, normally_open, restore

SCENARIO = """\
name: restore
seed: 3
clock: {{start: "2025-06-21T11:00:00", duration: 1h, step: 1min}}
grid: {{feeder: ieee33}}
loads: {{profile: constant}}
impact: {{baseline: false}}
{failures}
events:
  - {{kind: line_outage, at: 10min, duration: 20min, line: {line}}}
"""

CUT_OFF_KW = 60 + 120 + 200 + 150 + 210 + 60  # buses 28..33 (Baran & Wu 1989)
N = 32  # customers: one per load


def _run(tmp_path: Path, failures: str = "", line: int = 27) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """`cosim run`: metrics.json, the time series and events.csv."""
    path = tmp_path / "restore.yaml"
    path.write_text(SCENARIO.format(failures=failures, line=line), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return (json.loads((out / "metrics.json").read_text()), pd.read_parquet(out / "timeseries.parquet"),
            pd.read_csv(out / "events.csv"))


@pytest.fixture(scope="module")
def unrestored(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("off"))


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("on"), "failures: {restoration: true}")


def test_ieee33_ties_are_lines_33_to_37():
    assert normally_open(load_feeder("ieee33")) == (33, 34, 35, 36, 37)


def test_without_restoration_the_lateral_is_off_until_the_repair(unrestored):
    metrics, _, events = unrestored
    assert metrics["saifi"] == pytest.approx(6 / N)
    assert metrics["saidi_min"] == pytest.approx(6 * 20 / N)
    assert metrics["ens_kwh"] == pytest.approx(CUT_OFF_KW * 20 / 60)
    assert "restoration" not in set(events.kind)


def test_restoration_closes_tie_37_after_the_switching_time(restored):
    metrics, ts, events = restored
    assert metrics["saifi"] == pytest.approx(6 / N)
    assert metrics["saidi_min"] == pytest.approx(6 * 5 / N)
    assert metrics["caidi_min"] == pytest.approx(5.0)
    assert metrics["ens_kwh"] == pytest.approx(CUT_OFF_KW * 5 / 60)
    assert metrics["maifi"] == 0.0
    row = events[events.kind == "restoration"]
    assert row.target.tolist() == ["line.37"]
    assert (row.start.iloc[0], row.end.iloc[0]) == ("2025-06-21T11:15:00", "2025-06-21T11:30:00")
    assert "buses 28-33" in row.detail.iloc[0] and "line.27" in row.detail.iloc[0]
    k = np.arange(len(ts))
    cut = [f"bus.{b}.vm_pu" for b in range(28, 34)]
    assert ts.loc[(k >= 10) & (k < 15), cut].isna().all().all()
    assert ts.loc[(k < 10) | (k >= 15), cut].notna().all().all()
    tie = ts["line.37.i_ka"].to_numpy()
    assert (tie[(k >= 15) & (k < 30)] > 0).all() and (tie[(k < 15) | (k >= 30)] == 0).all()


def test_restored_voltages_are_pandapowers_of_the_switched_feeder(restored):
    """During restoration the run's voltages are pandapower's Newton-Raphson of case33bw with 27 open, 37 closed."""
    _, ts, _ = restored
    net = copy.deepcopy(load_feeder("ieee33").net)
    net.line.loc[26, "in_service"], net.line.loc[36, "in_service"] = False, True
    pp.runpp(net)
    got = ts.loc[20, [f"bus.{b}.vm_pu" for b in range(1, 34)]].to_numpy(float)
    assert np.allclose(got, net.res_bus.vm_pu.to_numpy(), atol=1e-6)


def test_a_switching_time_under_5_min_is_a_momentary_interruption(tmp_path):
    metrics, _, _ = _run(tmp_path, "failures: {restoration: {switching_time: 2min}}")
    assert metrics["saifi"] == 0.0 and metrics["saidi_min"] == 0.0 and metrics["caidi_min"] is None
    assert metrics["maifi"] == pytest.approx(6 / N)
    assert metrics["ens_kwh"] == pytest.approx(CUT_OFF_KW * 2 / 60)


def test_a_fault_no_tie_reaches_stays_unrestored_until_repair(tmp_path):
    """Line 1 (substation -> bus 2) cuts off every load; every tie has both ends in the dead island."""
    metrics, _, events = _run(tmp_path, "failures: {restoration: true}", line=1)
    assert metrics["saidi_min"] == pytest.approx(20.0)
    refused = events[events.kind == "restoration_refused"]
    assert refused.target.tolist() == ["line.1"] and "no open tie line reaches" in refused.detail.iloc[0]
    assert "restoration" not in set(events.kind)


def _nominal(feeder):
    return GridModel(feeder, [], "pandapower").operating_point(np.ones(len(feeder.net.load)), np.zeros(0))


def test_a_tie_that_would_leave_voltages_below_the_limit_is_not_closed():
    """Line 23 (bus 23 -> 24) out: tie 37 feeds buses 24, 25 from bus 29 at 0.882 pu (pandapower)."""
    feeder = load_feeder("ieee33")
    net = _nominal(feeder)
    config = Configuration(lines_out=frozenset({23}))
    [island] = dead_islands(feeder, config)
    assert island == {24, 25}
    tie, checks = restore(feeder, net, config, island, Limits(min_vm_pu=0.90))
    assert tie is None and [c.tie for c in checks] == [37] and checks[0].min_vm_pu < 0.90
    tie, _ = restore(feeder, net, config, island, Limits(min_vm_pu=0.85))
    assert tie == 37


def test_every_restored_single_fault_configuration_is_radial_and_converges():
    """For each of the 32 lines: the restored feeder is a spanning tree (33 buses, 32 closed lines, connected)."""
    feeder = load_feeder("ieee33")
    net = _nominal(feeder)
    restored = 0
    for line in range(1, 33):
        config = Configuration(lines_out=frozenset({line}))
        for island in dead_islands(feeder, config):
            tie, checks = restore(feeder, net, config, island, Limits())
            if tie is None:
                continue
            config = config.closing(tie)
            assert next(c for c in checks if c.tie == tie).converged
            restored += 1
        g = nx.Graph(graph(feeder, config))
        if not dead_islands(feeder, config):
            assert nx.is_tree(g) and g.number_of_edges() == len(feeder.bus_labels) - 1
    assert restored >= 20


def test_a_repair_while_a_second_outage_holds_keeps_the_tie_closed():
    """Line 30 out (buses 31-33 fed over tie 36), then line 29: repairing 30 first must not cut 31-33 again (tie 36
    would not close a loop), so 36 stays closed until 29 is back."""
    feeder = load_feeder("ieee33")
    net = _nominal(feeder)
    outages = [Outage("line", 30, 10, 40), Outage("line", 29, 20, 60)]
    switchings, refusals = plan(feeder, outages, 80, 60.0, Restoration(min_vm_pu=0.7), lambda k: net)
    by_tie = {s.tie: (s.start, s.end) for s in switchings}
    assert by_tie[36] == (15, 60)


def test_a_switching_time_off_the_step_grid_is_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.format(failures="failures: {restoration: {switching_time: 90s}}", line=27),
                    encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "failures.restoration.switching_time" in result.output and "not a whole number of steps" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("block, field", [("{min_vm_pu: 2}", "min_vm_pu"), ("{switch_time: 5min}", "switch_time")])
def test_bad_restoration_keys_are_exit_2(tmp_path, block, field):
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.format(failures=f"failures: {{restoration: {block}}}", line=27), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"failures.restoration.{field}" in result.output and "Traceback" not in result.output


def test_restoration_with_a_detector_is_refused(tmp_path):
    path = tmp_path / "det.yaml"
    text = SCENARIO.format(failures="failures: {restoration: true}", line=27) + "detector: {significance: 0.01}\n"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "failures.restoration" in result.output and "detector" in result.output


@pytest.mark.parametrize("engine", ["pandapower", "lightsim2grid", "sweep"])
def test_every_engine_solves_the_switched_feeder_as_pandapower_does(engine):
    feeder = load_feeder("ieee33")
    model = GridModel(feeder, [], engine)
    model.apply_disruptions(Disruptions(lines_out=frozenset({27}), lines_closed=frozenset({37})))
    r = model.step(np.ones(len(model.load_p_nom)), np.zeros(0))
    net = copy.deepcopy(feeder.net)
    net.line.loc[26, "in_service"], net.line.loc[36, "in_service"] = False, True
    pp.runpp(net)
    assert model.engine.name == engine and r.pf.converged
    assert np.allclose(r.pf.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-6)
    assert r.unserved_p_mw == 0.0


LONG = """\
name: long
seed: 11
clock: {start: "2025-01-01T00:00:00", duration: 30d, step: 15min}
grid: {feeder: ieee33}
loads: {profile: residential}
impact: {baseline: false}
failures:
  lines: {rate_per_year: 20, repair: 4h}
"""


@pytest.mark.slow
def test_a_month_of_failures_has_lower_saidi_with_restoration_and_is_seeded(tmp_path):
    """30 days, 20 failures per line and year (about 53 outages), 4-h repairs, 30-min switching."""
    results = []
    for i, extra in enumerate(("", "  restoration: {switching_time: 30min}\n",
                               "  restoration: {switching_time: 30min}\n")):
        path = tmp_path / f"long{i}.yaml"
        path.write_text(LONG + extra, encoding="utf-8")
        out = tmp_path / f"out{i}"
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        results.append(json.loads((out / "metrics.json").read_text()))
    off, on, again = results
    keys = ("saifi", "saidi_min", "caidi_min", "ens_kwh", "maifi")
    assert {k: on[k] for k in keys} == {k: again[k] for k in keys}
    assert on["saidi_min"] < 0.5 * off["saidi_min"] and on["ens_kwh"] < 0.5 * off["ens_kwh"]
    assert on["ens_kwh"] == pytest.approx(on["unserved_energy_kwh"])


SHIPPED = Path(__file__).resolve().parents[1] / "scenarios" / "reliability"


def test_the_shipped_failure_years_differ_only_in_restoration():
    off, on = (yaml.safe_load((SHIPPED / f"ieee33-failures-year{s}.yaml").read_text()) for s in ("", "-restored"))
    assert on["failures"].pop("restoration") == {"switching_time": "1h", "min_vm_pu": 0.90}
    for key in ("name", "description"):
        off.pop(key), on.pop(key)
    assert off == on
    for name in ("ieee33-failures-year.yaml", "ieee33-failures-year-restored.yaml"):
        result = CliRunner().invoke(app, ["validate", str(SHIPPED / name)])
        assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_the_shipped_year_restores_every_outage_after_one_of_its_four_hours(tmp_path):
    """docs/events.md: every outage of the shipped year has a passing tie, so each 4-h interruption lasts the 1-h
    switching time: SAIFI unchanged, SAIDI and CAIDI a quarter."""
    metrics, events = [], []
    for name in ("ieee33-failures-year.yaml", "ieee33-failures-year-restored.yaml"):
        out = tmp_path / name
        result = CliRunner().invoke(app, ["run", str(SHIPPED / name), "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        metrics.append(json.loads((out / "metrics.json").read_text()))
        events.append(pd.read_csv(out / "events.csv"))
    off, on = metrics
    assert on["saifi"] == pytest.approx(off["saifi"]) and off["saifi"] > 0
    assert on["saidi_min"] == pytest.approx(off["saidi_min"] / 4)
    assert on["caidi_min"] == pytest.approx(60.0) and off["caidi_min"] == pytest.approx(240.0)
    kinds = events[1].kind.value_counts()
    assert kinds["restoration"] == kinds["line_outage"] and "restoration_refused" not in kinds


def test_a_transformer_outage_is_restored_over_a_tie_to_the_other_transformer(tmp_path):
    """Two 20/0.4 kV transformers each feed a 0.4 kV bus with a 50 kW load, a normally-open line between the
    two: trafo 0 out cuts off its bus (bus 1 in pandapower numbering), the tie feeds it from trafo 1's side after
    the one-step switching time and reopens at the repair."""
    net = pp.create_empty_network()
    hv = pp.create_bus(net, 20.0)
    lv = [pp.create_bus(net, 0.4) for _ in range(2)]
    pp.create_ext_grid(net, hv)
    for b in lv:
        pp.create_transformer(net, hv, b, "0.4 MVA 20/0.4 kV")
        pp.create_load(net, b, p_mw=0.05, q_mvar=0.01)
    pp.create_line(net, lv[0], lv[1], 0.2, "NAYY 4x150 SE", in_service=False)
    path = tmp_path / "two_trafos.json"
    pp.to_json(net, str(path))
    feeder = load_feeder(str(path))
    assert normally_open(feeder) == (0,)
    op = GridModel(feeder, [], "pandapower").operating_point(np.ones(2), np.zeros(0))
    switchings, refusals = plan(feeder, [Outage("trafo", 0, 2, 6)], 10, 60.0, Restoration(switching_time=60), lambda k: op)
    assert [(s.tie, s.start, s.end, s.buses) for s in switchings] == [(0, 3, 6, (1,))] and not refusals
