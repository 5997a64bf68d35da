"""Physical disruptions act on the grid model: outages, trips, load steps and clouds, through mosaik."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
import yaml

from cosim.grid.feeders import load_feeder
from cosim.grid.model import DER, Disruptions, GridModel
from cosim.inputs import build_inputs
from cosim.scenario.schema import Scenario
from events_helpers import scenario_text, simulate


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("clean"), name="clean")


def test_line_outage_removes_the_line_and_restores_it(tmp_path, clean):
    ts = simulate(tmp_path, """\
        events:
          - {at: 10min, duration: 20min, kind: line_outage, line: 7}
        """)
    k = np.arange(len(ts))
    out = (k >= 10) & (k < 30)
    i7 = ts["line.7.i_ka"].to_numpy()
    assert (i7[out] == 0).all()
    assert (i7[~out] > 0).all()
    # line 7 (bus 7 -> 8) feeds buses 8..18: de-energised, their load unserved, pv1 (bus 18) off
    cut = [f"bus.{b}.vm_pu" for b in range(8, 19)]
    assert ts.loc[out, cut].isna().all().all()
    assert ts.loc[~out, cut].notna().all().all()
    assert ts.loc[out, "bus.7.vm_pu"].notna().all()
    assert (ts.loc[out, "pv1.p_mw"] == 0).all() and (ts.loc[~out, "pv1.p_mw"] > 0).all()
    served_drop = clean["grid.load_p_mw"] - ts["grid.load_p_mw"]
    assert np.allclose(served_drop[out], ts.loc[out, "grid.unserved_p_mw"], atol=1e-9)
    assert (ts.loc[out, "grid.unserved_p_mw"] > 0.5).all() and (ts.loc[~out, "grid.unserved_p_mw"] == 0).all()
    # after the restoration the grid is exactly where the clean run is
    assert np.allclose(ts.loc[~out, "bus.18.vm_pu"], clean.loc[~out, "bus.18.vm_pu"], atol=1e-9)


def test_dg_trip_and_cloud_transient(tmp_path, clean):
    ts = simulate(tmp_path, """\
        events:
          - {at: 5min, duration: 10min, kind: dg_trip, generator: "wt*"}
          - {at: 20min, duration: 15min, kind: cloud_transient, generator: pv1, depth: 0.75}
        """)
    k = np.arange(len(ts))
    trip, cloud = (k >= 5) & (k < 15), (k >= 20) & (k < 35)
    assert (ts.loc[trip, "wt1.p_mw"] == 0).all() and (ts.loc[trip, "wt1.q_mvar"] == 0).all()
    assert np.allclose(ts.loc[~trip, "wt1.p_mw"], clean.loc[~trip, "wt1.p_mw"])
    assert np.allclose(ts["wt1.p_avail_mw"], clean["wt1.p_avail_mw"])  # the wind still blows
    assert np.allclose(ts.loc[cloud, "pv1.p_avail_mw"], 0.25 * clean.loc[cloud, "pv1.p_avail_mw"])
    assert np.allclose(ts.loc[~cloud, "pv1.p_avail_mw"], clean.loc[~cloud, "pv1.p_avail_mw"])


def test_load_step_multiplies_the_bus_load(tmp_path, clean):
    ts = simulate(tmp_path, """\
        events:
          - {at: 10min, duration: 10min, kind: load_step, bus: 18, factor: 1.5}
        """)
    k = np.arange(len(ts))
    on = (k >= 10) & (k < 20)
    # expected from outside the event code: the feeder's nominal loads times the scenario's per-load
    # multipliers (residential profile with noise), and bus 18's share of them
    feeder = load_feeder("ieee33")
    net = feeder.net
    scale = build_inputs(Scenario.model_validate(yaml.safe_load(scenario_text())), len(net.load), tmp_path).load_scale
    at18 = (net.load.bus == feeder.bus_index(18)).to_numpy()
    p18 = (net.load.p_mw.to_numpy() * scale)[:, at18].sum(axis=1)
    extra = (ts["grid.load_p_mw"] - clean["grid.load_p_mw"]).to_numpy()
    assert np.abs(extra[~on]).max() < 1e-12
    assert np.allclose(extra[on], 0.5 * p18[on], rtol=0, atol=1e-9)
    assert (ts.loc[on, "bus.18.vm_pu"] < clean.loc[on, "bus.18.vm_pu"]).all()
    # the stepped grid is a pandapower power flow of the same injections with bus 18's load x1.5
    vm = [f"bus.{b}.vm_pu" for b in feeder.bus_labels]
    for step in (10, 19):
        stepped = copy.deepcopy(net)
        mult = scale[step] * np.where(at18, 1.5, 1.0)
        stepped.load["p_mw"] = net.load.p_mw.to_numpy() * mult
        stepped.load["q_mvar"] = net.load.q_mvar.to_numpy() * mult
        for name, bus in (("pv1", 18), ("wt1", 25)):
            pp.create_sgen(stepped, feeder.bus_index(bus), p_mw=ts[f"{name}.p_mw"].iloc[step],
                           q_mvar=ts[f"{name}.q_mvar"].iloc[step])
        pp.runpp(stepped)
        expected = stepped.res_bus.vm_pu.loc[[feeder.bus_index(b) for b in feeder.bus_labels]].to_numpy()
        assert np.allclose(ts.loc[step, vm].to_numpy(float), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("engine", ["lightsim2grid", "pandapower"])
def test_trafo_outage_blacks_out_what_it_feeds(tmp_path, engine):
    net = pn.simple_four_bus_system()  # ext grid - trafo - three LV buses
    path = tmp_path / "four.json"
    pp.to_json(net, str(path))
    model = GridModel(load_feeder(str(path)), [DER("pv", "pv", 3, 0.02, 0.022)], engine)
    ones = np.ones(len(model.load_p_nom))
    before = model.signals(model.step(ones, np.array([0.01])))
    model.apply_disruptions(Disruptions(trafos_out=frozenset({0})))
    out = model.signals(model.step(ones, np.array([0.01])))
    assert out["grid.converged"] == 1.0
    assert np.isnan([out[f"bus.{b}.vm_pu"] for b in (1, 2, 3)]).all()
    assert out["trafo.0.loading_pct"] == 0 and out["pv.p_mw"] == 0
    assert out["grid.unserved_p_mw"] == pytest.approx(net.load.p_mw.sum())
    model.apply_disruptions(Disruptions())
    after = model.signals(model.step(ones, np.array([0.01])))
    assert after == pytest.approx(before, nan_ok=True)


def test_engines_agree_during_an_outage():
    results = []
    for engine in ("lightsim2grid", "pandapower"):
        model = GridModel(load_feeder("ieee33"), [DER("pv1", "pv", 18, 1.0, 1.1)], engine, metering=True)
        model.apply_disruptions(Disruptions(lines_out=frozenset({25}), ders_tripped=frozenset({"pv1"})))
        results.append(model.signals(model.step(np.ones(32), np.array([0.5]))))
    a, b = results
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == pytest.approx(b[name], abs=1e-5, nan_ok=True), name
