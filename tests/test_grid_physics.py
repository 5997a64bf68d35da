"""Power flow against published reference figures and engine agreement.

IEEE 33 (Baran & Wu 1989) and IEEE 69 (Baran & Wu 1989b, as tabulated in
`cosim/grid/data/ieee69/README.md`): losses and minimum voltage at nominal load, and the
3-DG unity-power-factor loss optimum, all re-computed with pandapower's Newton-Raphson.
"""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest

from cosim.grid.engines import EngineUnsupported, compare
from cosim.grid.engines.lightsim import LightSimEngine
from cosim.grid.engines.pandapower_engine import PandapowerEngine
from cosim.grid.engines.sweep import SweepEngine
from cosim.grid.feeders import load_feeder
from cosim.grid.model import DER, Disruptions, GridModel

# (feeder, losses kW, Vmin pu, bus of Vmin, 3-DG optimum buses, sizes MW, optimal losses kW)
REFERENCE = {
    "ieee33": (202.68, 0.9131, 18, (14, 24, 30), (0.754, 1.099, 1.071), 71.457),
    "ieee69": (224.99, 0.9092, 65, (11, 18, 61), (0.527, 0.380, 1.719), 69.426),
}


def _nominal(model: GridModel) -> np.ndarray:
    return np.ones(len(model.load_p_nom))


@pytest.mark.parametrize("engine", ["lightsim2grid", "sweep", "pandapower"])
@pytest.mark.parametrize("feeder", ["ieee33", "ieee69"])
def test_nominal_load_reproduces_reference(feeder, engine):
    loss, vmin, bus, *_ = REFERENCE[feeder]
    model = GridModel(load_feeder(feeder), [], engine=engine)
    assert model.engine.name == engine
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


@pytest.mark.parametrize("engine", [LightSimEngine, SweepEngine])
@pytest.mark.parametrize("feeder", ["ieee33", "ieee69"])
def test_fast_engines_agree_with_pandapower(feeder, engine):
    rng = np.random.default_rng(0)
    net = load_feeder(feeder).net
    net.line["max_i_ka"] = 0.4
    pp.create_sgen(net, 17, p_mw=0.0)
    pp.create_sgen(net, 24, p_mw=0.0)
    fast, ref = engine(net), PandapowerEngine(net)
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
        np.testing.assert_allclose(a.line_loading_pct, b.line_loading_pct, atol=1e-4)
        np.testing.assert_allclose(a.line_p_mw, b.line_p_mw, atol=1e-6)
        np.testing.assert_allclose(a.line_q_mvar, b.line_q_mvar, atol=1e-6)


def _mv_feeder() -> pp.pandapowerNet:
    """A radial 20 kV feeder behind a 110/20 kV transformer at nominal ratio, with a capacitor bank."""
    net = pp.create_empty_network()
    hv, *mv = (pp.create_bus(net, 110.0)), *[pp.create_bus(net, 20.0) for _ in range(6)]
    pp.create_ext_grid(net, hv, vm_pu=1.02)
    pp.create_transformer(net, hv, mv[0], "25 MVA 110/20 kV")
    net.trafo["shift_degree"] = 0.0
    net.trafo["tap_step_percent"] = 0.0  # no tap changer: a fixed, nominal ratio
    for a, b, km in ((0, 1, 2.0), (1, 2, 3.0), (2, 3, 1.5), (1, 4, 4.0), (4, 5, 2.5)):
        pp.create_line(net, mv[a], mv[b], km, "NA2XS2Y 1x185 RM/25 12/20 kV")
    for bus in mv[1:]:
        pp.create_load(net, bus, p_mw=1.2, q_mvar=0.4)
    pp.create_sgen(net, mv[3], p_mw=0.0)
    pp.create_shunt(net, mv[5], q_mvar=-0.6, max_step=2, step=1)
    return net


def test_sweep_matches_pandapower_with_a_trafo_shunts_and_outages():
    """Every result of the sweep against plain pandapower runpp on a copy of the net, base case and after
    an outage that de-energises a branch of the feeder."""
    feeder_net = _mv_feeder()
    model = GridModel(_as_feeder(feeder_net), [DER("pv1", "pv", 3, 2.0, 2.2)], engine="sweep")
    assert model.engine.name == "sweep" and set(model.discrete) == {"cap.0.step"}
    for lines_out in ((), (3,)):
        model.apply_disruptions(Disruptions(lines_out=frozenset(lines_out)))
        r = model.step(np.ones(5), np.array([1.5]), None, np.array([-0.3]))
        net = _reference(model, lines_out)
        np.testing.assert_allclose(r.pf.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-8)
        np.testing.assert_allclose(r.pf.line_i_ka, np.nan_to_num(net.res_line.i_ka.to_numpy()), atol=1e-8)
        np.testing.assert_allclose(r.pf.trafo_loading_pct, net.res_trafo.loading_percent.to_numpy(), atol=1e-6)
        assert r.pf.loss_mw == pytest.approx(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum(), abs=1e-8)
        assert r.pf.ext_q_mvar == pytest.approx(net.res_ext_grid.q_mvar.sum(), abs=1e-8)
    assert np.isnan(r.pf.vm_pu[[5, 6]]).all() and r.unserved_p_mw == pytest.approx(2.4)  # behind line 3
    model.set_discrete("cap.0.step", 2)  # the bank's second step: pandapower's shunt model, re-read
    r = model.step(np.ones(5), np.array([1.5]), None, np.array([-0.3]))
    net = _reference(model, (3,))
    assert r.pf.ext_q_mvar == pytest.approx(net.res_ext_grid.q_mvar.sum(), abs=1e-8)


def _reference(model: GridModel, lines_out: tuple[int, ...]) -> pp.pandapowerNet:
    """Plain pandapower on a copy of the model's net: nominal loads, the DER at 1.5 MW / -0.3 Mvar, lines out."""
    net = copy.deepcopy(model.feeder.net)
    net.sgen.loc[net.sgen.name == "pv1", ["p_mw", "q_mvar"]] = [1.5, -0.3]
    net.line.loc[list(lines_out), "in_service"] = False
    pp.runpp(net)
    return net


def _as_feeder(net: pp.pandapowerNet):
    from cosim.grid.feeders import Feeder

    idx = lambda table: np.asarray(net[table].index, dtype=int)  # noqa: E731
    return Feeder("mv.json", net, idx("bus"), idx("line"), idx("trafo"))


@pytest.mark.parametrize("change, why", [
    (lambda net: pp.create_line(net, 3, 6, 1.0, "NA2XS2Y 1x185 RM/25 12/20 kV"), "radial"),
    (lambda net: net.trafo.__setitem__("shift_degree", 150.0), "phase-shifting"),
    (lambda net: pp.create_gen(net, 4, p_mw=1.0, vm_pu=1.0), "gen elements"),
])
def test_sweep_refuses_what_it_cannot_model(change, why):
    net = _mv_feeder()
    change(net)
    with pytest.raises(EngineUnsupported, match=why):
        GridModel(_as_feeder(net), [], engine="sweep")


def test_an_unsupported_sweep_is_bad_input(write_scenario, cli):
    pp.to_json(_mv_feeder_with_tap_changer(), str(write_scenario("", "x.yaml").parent / "mv.json"))
    path = write_scenario("""\
        name: s
        clock: {duration: 1h, step: 15min}
        grid: {feeder: mv.json, engine: sweep}
        """)
    code, output, _ = cli("validate", path)
    assert code == 2 and "field grid.engine" in output and "tap changers" in output and "Traceback" not in output


def _mv_feeder_with_tap_changer() -> pp.pandapowerNet:
    net = _mv_feeder()
    net.trafo["tap_step_percent"] = 1.5  # an on-load tap changer: ratios off nominal
    return net


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


def test_simbench_solves_like_plain_pandapower():
    """lightsim2grid runs the SimBench net (Dyn5 transformers, bus-bus and open line switches) without falling
    back, and reproduces runpp on the net as loaded, also after a line outage."""
    feeder = load_feeder("simbench:1-MV-rural--0-sw")
    sw = feeder.net.switch
    assert ((sw.et == "b") & sw.closed).any() and ((sw.et == "l") & ~sw.closed).any()  # what the importer ignores
    assert (feeder.net.trafo.shift_degree != 0).all()
    reference = copy.deepcopy(feeder.net)
    model = GridModel(feeder, [])
    assert model.engine.name == "lightsim2grid", model.engine_note
    r = model.step(_nominal(model), np.zeros(0))
    pp.runpp(reference)
    assert r.pf.converged
    np.testing.assert_allclose(r.pf.vm_pu, reference.res_bus.vm_pu.to_numpy(), atol=1e-6)
    assert r.pf.loss_mw == pytest.approx(reference.res_line.pl_mw.sum() + reference.res_trafo.pl_mw.sum(), abs=1e-6)


def test_pandapower_json_feeder_loads_as_is(tmp_path):
    net = load_feeder("ieee33").net
    pp.to_json(net, str(tmp_path / "feeder.json"))
    feeder = load_feeder("feeder.json", tmp_path)
    assert list(feeder.bus_labels[:2]) == [0, 1]  # JSON feeders keep pandapower's indices
    r = GridModel(feeder, []).step(np.ones(len(net.load)), np.zeros(0))
    assert r.pf.loss_mw * 1000 == pytest.approx(202.68, abs=0.01)
