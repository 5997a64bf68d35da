"""Power flow against the reference figures of DESIGN.md and engine agreement."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from cosim.grid.engines import compare
from cosim.grid.engines.lightsim import LightSimEngine
from cosim.grid.engines.pandapower_engine import PandapowerEngine
from cosim.grid.feeders import load_feeder
from cosim.grid.model import DER, GridModel

# (feeder, losses kW, Vmin pu, bus of Vmin, 3-DG optimum buses, sizes MW, optimal losses kW)
REFERENCE = {
    "ieee33": (202.68, 0.9131, 18, (14, 24, 30), (0.754, 1.099, 1.071), 71.457),
    "ieee69": (224.99, 0.9092, 65, (11, 18, 61), (0.527, 0.380, 1.719), 69.426),
}


def _nominal(model: GridModel) -> np.ndarray:
    return np.ones(len(model.load_p_nom))


@pytest.mark.parametrize("feeder", ["ieee33", "ieee69"])
def test_nominal_load_reproduces_reference(feeder):
    loss, vmin, bus, *_ = REFERENCE[feeder]
    model = GridModel(load_feeder(feeder), [])
    assert model.engine.name == "lightsim2grid"
    r = model.step(_nominal(model), np.zeros(0))
    assert r.pf.converged
    assert r.pf.loss_mw * 1000 == pytest.approx(loss, abs=0.01)
    assert np.nanmin(r.pf.vm_pu) == pytest.approx(vmin, abs=5e-5)
    assert model.feeder.bus_labels[np.nanargmin(r.pf.vm_pu)] == bus
    signals = model.signals(r)
    assert signals[f"bus.{bus}.vm_pu"] == pytest.approx(vmin, abs=5e-5)
    assert signals["bus.1.vm_pu"] == 1.0


@pytest.mark.parametrize("feeder", ["ieee33", "ieee69"])
def test_three_optimal_dgs_reach_published_optimum(feeder):
    *_, buses, sizes, optimum = REFERENCE[feeder]
    ders = [DER(f"dg{b}", "pv", b, p, p) for b, p in zip(buses, sizes)]
    model = GridModel(load_feeder(feeder), ders)
    r = model.step(_nominal(model), np.array(sizes))
    assert r.pf.loss_mw * 1000 == pytest.approx(optimum, abs=0.05)


@pytest.mark.parametrize("feeder", ["ieee33", "ieee69"])
def test_lightsim2grid_agrees_with_pandapower(feeder):
    rng = np.random.default_rng(0)
    net = load_feeder(feeder).net
    pp.create_sgen(net, 17, p_mw=0.0)
    pp.create_sgen(net, 24, p_mw=0.0)
    fast, ref = LightSimEngine(net), PandapowerEngine(net)
    p_nom, q_nom = net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy()
    for _ in range(5):
        scale = rng.uniform(0.3, 1.3, len(p_nom))
        sgen_p, sgen_q = rng.uniform(0, 1.5, 2), rng.uniform(-0.4, 0.4, 2)
        args = (p_nom * scale, q_nom * scale, sgen_p, sgen_q)
        a, b = fast.solve(*args), ref.solve(*args)
        dv, dloss = compare(a, b)
        assert dv < 1e-6 and dloss < 1e-3
        assert a.ext_p_mw == pytest.approx(b.ext_p_mw, abs=1e-6)
        assert a.ext_q_mvar == pytest.approx(b.ext_q_mvar, abs=1e-6)
        np.testing.assert_allclose(a.line_i_ka, b.line_i_ka, atol=1e-7)


def test_nonconvergence_gives_nan_and_flag_then_recovers():
    model = GridModel(load_feeder("ieee33"), [])
    bad = model.step(_nominal(model) * 12, np.zeros(0))
    assert not bad.pf.converged
    s = model.signals(bad)
    assert s["grid.converged"] == 0.0 and np.isnan(s["grid.loss_kw"]) and np.isnan(s["bus.18.vm_pu"])
    good = model.step(_nominal(model), np.zeros(0))
    assert good.pf.converged and good.pf.loss_mw * 1000 == pytest.approx(202.68, abs=0.01)


def test_capability_clips_to_available_power_and_rating():
    model = GridModel(load_feeder("ieee33"), [DER("pv1", "pv", 18, 1.0, 1.1)])
    p, q = model.capability(np.array([0.8]), np.array([np.inf]), np.array([-2.0]))
    assert p[0] == pytest.approx(0.8)
    assert q[0] == pytest.approx(-np.sqrt(1.1**2 - 0.8**2))
    p, q = model.capability(np.array([0.8]), np.array([0.3]), np.array([0.1]))
    assert p[0] == pytest.approx(0.3) and q[0] == pytest.approx(0.1)


def test_simbench_falls_back_to_pandapower_and_solves():
    model = GridModel(load_feeder("simbench:1-MV-rural--0-sw"), [])
    assert model.engine.name == "pandapower" and "lightsim2grid" in model.engine_note
    r = model.step(_nominal(model), np.zeros(0))
    assert r.pf.converged and 0.9 < np.nanmin(r.pf.vm_pu) <= np.nanmax(r.pf.vm_pu) < 1.1


def test_pandapower_json_feeder_loads_as_is(tmp_path):
    net = load_feeder("ieee33").net
    pp.to_json(net, str(tmp_path / "feeder.json"))
    feeder = load_feeder("feeder.json", tmp_path)
    assert list(feeder.bus_labels[:2]) == [0, 1]  # JSON feeders keep pandapower's indices
    r = GridModel(feeder, []).step(np.ones(len(net.load)), np.zeros(0))
    assert r.pf.loss_mw * 1000 == pytest.approx(202.68, abs=0.01)
