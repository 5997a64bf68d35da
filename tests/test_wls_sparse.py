"""The WLS detector and the stealthy-attack builder on sparse matrices.

References from outside the code under test: the dense formula computed here with numpy (Gauss-Newton
with numpy solves, Omega = R - H G^-1 H^T from a dense G^-1 H^T), finite differences of h(x), numpy's
inverse and SVD, pandapower's power flow as the true state, and the defining property of false data
a = H c (the residual does not move).
"""

from __future__ import annotations

import copy
import textwrap
import warnings

import numpy as np
import pandapower as pp
import pytest
import scipy.sparse as sp

from cosim.detection.network import VM, P, PF, Q, QF, Network, metering_plan, plan_for, slack_label
from cosim.detection.sparse import factorise, null_space_reach, quadratic_diagonal, selected_inverse
from cosim.detection.stealthy import stealthy_false_data
from cosim.detection.wls import WLS, unobservable_buses
from cosim.grid.feeders import load_feeder
from cosim.scenario.errors import ScenarioError
from cosim.scenario.loader import load_scenario
from cosim.scenario.metering import Metering, RunMetering
from cosim.scenario.schema import Detector

SIMBENCH = "simbench:1-MVLV-urban-all-0-sw"


def _truth(feeder, net, meters) -> np.ndarray:
    """Each meter's true value from a solved pandapower net (injections generation-positive)."""
    bus = dict(zip(feeder.bus_labels.tolist(), net.bus.index))
    line = dict(zip(feeder.line_labels.tolist(), net.line.index))
    read = {VM: lambda b: net.res_bus.vm_pu[bus[b]], P: lambda b: -net.res_bus.p_mw[bus[b]],
            Q: lambda b: -net.res_bus.q_mvar[bus[b]], PF: lambda k: net.res_line.p_from_mw[line[k]],
            QF: lambda k: net.res_line.q_from_mvar[line[k]]}
    return np.array([read[k](int(name.split(".")[1])) for k, name in zip(meters.kind, meters.names)])


def _solved(name: str):
    feeder = load_feeder(name)
    net = copy.deepcopy(feeder.net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net)
    return feeder, net, Network(feeder)


@pytest.fixture(scope="module")
def ieee33():
    return _solved("ieee33")


def _dense_estimate(network, meters, z, topo, max_iter=15, tol=1e-8):
    """The dense formula: V, J and the normalised residuals."""
    use = np.isfinite(z) & network.usable(topo, meters)
    w, zu = 1.0 / meters.sigma[use] ** 2, z[use]
    V = network.flat_start(topo)
    for _ in range(max_iter):
        h, H = network.measure(topo, V, meters)
        h, H = h[use], H[use].toarray()
        dx = np.linalg.solve(H.T @ (w[:, None] * H), H.T @ (w * (zu - h)))
        V = network.with_states(topo, V, dx)
        if np.max(np.abs(dx)) < tol:
            break
    h, H = network.measure(topo, V, meters)
    h, H = h[use], H[use].toarray()
    omega = meters.sigma[use] ** 2 - np.einsum("ij,ji->i", H, np.linalg.solve(H.T @ (w[:, None] * H), H.T))
    r = zu - h
    return V, float(np.sum(w * r**2)), np.abs(r) / np.sqrt(omega)


@pytest.mark.parametrize("metering", ["full", "sparse"])
@pytest.mark.parametrize("lines_out", [frozenset(), frozenset({7})])
def test_sparse_estimate_equals_the_dense_formula_on_ieee33(ieee33, metering, lines_out):
    feeder, net, network = ieee33
    plan = plan_for(Detector(), feeder) if metering == "full" else \
        metering_plan(RunMetering(Metering(preset="sparse").resolved(), 1.0, ()), feeder)
    meters = network.meters(plan)
    topo = network.topology(lines_out)
    z = _truth(feeder, net, meters) + np.random.default_rng(4).normal(0, 1, len(meters.names)) * meters.noise
    est = WLS(network, meters).estimate(z, topo)
    V, J, normalised = _dense_estimate(network, meters, z, topo)
    assert est.converged
    assert np.abs(est.V - V).max() < 1e-10
    assert est.J == pytest.approx(J, rel=1e-10)
    used = np.isfinite(est.normalised)
    assert np.abs(est.normalised[used] - normalised).max() < 1e-8


def test_jacobian_is_the_derivative_of_h(ieee33):
    feeder, _, network = ieee33
    meters = network.meters(plan_for(Detector(), feeder))
    topo = network.topology(frozenset({7}))
    rng = np.random.default_rng(1)
    V = network.with_states(topo, network.flat_start(topo), np.r_[rng.normal(0, 0.02, len(topo.theta)),
                                                                  rng.normal(-0.03, 0.01, len(topo.vm))])
    h, H = network.measure(topo, V, meters)
    step = 1e-6
    for j in rng.choice(topo.n_states, 12, replace=False):
        dx = np.zeros(topo.n_states)
        dx[j] = step
        numeric = (network.measure(topo, network.with_states(topo, V, dx), meters)[0]
                   - network.measure(topo, network.with_states(topo, V, -dx), meters)[0]) / (2 * step)
        assert np.abs(H[:, j].toarray().ravel() - numeric).max() < 1e-5 * max(1.0, np.abs(numeric).max())


def test_selected_inverse_is_the_inverse_on_its_pattern_even_where_the_factor_cancels():
    H = sp.random(300, 120, density=0.02, random_state=3, format="csr") + sp.eye(300, 120, format="csr")
    # rows [1 1] [1 -1] on states 0, 1 make G_01 cancel to an exact zero, but both share a meter
    H = sp.vstack([H, sp.csr_matrix(([1.0, 1.0, 1.0, -1.0], ([0, 0, 1, 1], [0, 1, 0, 1])), shape=(2, 120))]).tocsr()
    G = (H.T @ H).tocsc()
    dense = np.linalg.inv(G.toarray())
    Z, q = selected_inverse(factorise(G), abs(H).T @ abs(H))
    coo = Z.tocoo()
    assert np.abs(coo.data - dense[q][:, q][coo.row, coo.col]).max() < 1e-10 * np.abs(dense).max()
    Hd = H.toarray()
    reference = np.einsum("ij,jk,ik->i", Hd, dense, Hd)
    assert np.abs(quadratic_diagonal(factorise(G), H, np.full(H.shape[0], np.inf)) - reference).max() < 1e-10


def test_null_space_reach_is_the_svd_null_space_and_observability_is_unchanged(ieee33):
    feeder, _, network = ieee33
    topo = network.topology()
    for pseudo, loose in ((None, 31), ({"error": 0.3}, 0)):
        meters = network.meters(metering_plan(RunMetering(Metering(preset="sparse", pseudo_loads=pseudo).resolved(),
                                                          1.0, ()), feeder))
        H = network.measure(topo, network.flat_start(topo), meters)[1][network.usable(topo, meters)]
        _, s, vt = np.linalg.svd(H.toarray(), full_matrices=True)
        rank = int((s > s.max() * max(H.shape) * np.finfo(float).eps).sum())
        expected = np.abs(vt[rank:]).max(axis=0) > 1e-8 if rank < topo.n_states else np.zeros(topo.n_states, bool)
        assert np.array_equal(null_space_reach(H), expected)
        assert len(unobservable_buses(network, meters, topo)) == loose


def test_false_data_a_equals_h_c_leaves_the_residual_where_it_was(ieee33):
    feeder, net, network = ieee33
    meters = network.meters(plan_for(Detector(), feeder))
    topo = network.topology()
    wls = WLS(network, meters)
    z = _truth(feeder, net, meters) + np.random.default_rng(6).normal(0, 1, len(meters.names)) * meters.noise
    clean = wls.estimate(z, topo)
    H = network.measure(topo, clean.V, meters)[1]
    c = np.random.default_rng(7).normal(0, 1e-5, topo.n_states)
    a = H @ c
    attacked = wls.estimate(z + a, topo, clean.V)
    used = np.isfinite(clean.residual)
    # the linearised attack moves the residual only by the model's curvature (~|c|^2), far below the noise
    change = np.abs(attacked.residual[used] - clean.residual[used]).max()
    assert change < 1e-3 * meters.sigma.min() and change < 1e-3 * np.abs(a).max()
    assert attacked.J == pytest.approx(clean.J, rel=1e-3)
    # the full builder: a = h(x + c) - h(x) for buses 17, 18 seeming to inject 0.3 MW more
    delta = np.zeros((2, len(network.bus)))
    delta[0, [network.bus_row[17], network.bus_row[18]]] = 0.3
    a = stealthy_false_data(network, topo, clean.V, meters, np.ones(len(meters.names), bool), *delta)
    fooled = wls.estimate(z + a, topo, clean.V)
    assert np.abs(a).max() > 0.1 and fooled.J <= clean.J * (1 + 1e-6) and not wls.alarm(fooled)


def _scenario(tmp_path, extra: str):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: big
        seed: 1
        clock: {{start: "2025-06-21T12:00:00", duration: 30min, step: 15min}}
        grid: {{feeder: "{SIMBENCH}"}}
        detector: {{significance: 0.01}}
        """) + textwrap.dedent(extra), encoding="utf-8")
    return path


def test_the_loader_takes_a_detector_on_the_10458_bus_feeder_but_not_a_generator_it_cannot_meter(tmp_path):
    loaded = load_scenario(_scenario(tmp_path, ""))  # once refused: "handles feeders of up to 2,000 buses"
    assert loaded.scenario.detector is not None and len(loaded.feeder.bus_labels) == 10458
    # 30943 is joined to the substation bus 30942 by a closed bus-bus switch: their injection is metered at 30942
    with pytest.raises(ScenarioError) as exc:
        load_scenario(_scenario(tmp_path, "generators:\n  - {name: pv1, kind: pv, bus: 30943, p_mw: 0.5}\n"))
    assert "generators[0].bus" in str(exc.value) and "place it at bus 30942" in str(exc.value)


@pytest.mark.slow  # the 10,458-bus feeder: about 20 s
def test_wls_and_stealthy_builder_on_the_10458_bus_feeder():
    feeder, net, network = _solved(SIMBENCH)
    meters = network.meters(plan_for(Detector(), feeder))
    topo = network.topology()
    assert slack_label(feeder) == 30942 and network.unmetered_injections()[30943] == 30942
    wls = WLS(network, meters)
    z = _truth(feeder, net, meters) + np.random.default_rng(2).normal(0, 1, len(meters.names)) * meters.noise
    est = wls.estimate(z, topo)
    assert est.converged and est.J < est.threshold
    # the estimate is the truth up to its own noise: every state within 5.5 of its standard deviations
    use = network.usable(topo, meters)
    H = network.measure(topo, est.V, meters)[1][use]
    lu = factorise(H.T @ sp.diags(1.0 / meters.sigma[use] ** 2) @ H)
    Z, q = selected_inverse(lu, abs(H).T @ abs(H))
    std = np.empty(topo.n_states)
    std[q] = np.sqrt(Z.diagonal())
    rows = [network.bus_row[b] for b in feeder.bus_labels.tolist()]
    slack = net.bus.index.get_loc(net.ext_grid.bus.iloc[0])
    true_va = np.deg2rad(net.res_bus.va_degree.to_numpy() - net.res_bus.va_degree.to_numpy()[slack])
    truth = np.zeros(len(network.bus), complex)
    truth[rows] = net.res_bus.vm_pu.to_numpy() * np.exp(1j * true_va)
    states = np.r_[topo.theta, topo.vm]
    published = np.isin(states, rows)  # not the ends of open switches, buses of the model only
    error = np.r_[np.angle(est.V[topo.theta] * np.conj(truth[topo.theta])),
                  np.abs(est.V[topo.vm]) - np.abs(truth[topo.vm])][published]
    magnitude = np.r_[np.zeros(len(topo.theta), bool), np.ones(len(topo.vm), bool)][published]
    assert np.max(np.abs(error) / std[published]) < 5.5 and np.abs(error[magnitude]).max() < 0.002
    # a stealthy attack (0.05 MW more at an LV bus, every meter writable) leaves the chi-square statistic alone
    delta = np.zeros((2, len(network.bus)))
    delta[0, network.bus_row[104]] = 0.05
    a = stealthy_false_data(network, topo, est.V, meters, np.ones(len(meters.names), bool), *delta)
    fooled = wls.estimate(z + a, topo, est.V)
    assert np.abs(a).max() > 0.04 and fooled.J <= est.J * (1 + 1e-6) and not wls.alarm(fooled)
    # ... and with access to the meters around bus 104 only: its neighbours' and two rings of lines
    net_ = feeder.net
    label = dict(zip(net_.bus.index, feeder.bus_labels.tolist()))
    line_label = dict(zip(net_.line.index, feeder.line_labels.tolist()))
    at = net_.bus.index[feeder.bus_labels == 104][0]
    ring = net_.line.index[(net_.line.from_bus == at) | (net_.line.to_bus == at)]
    near = set(net_.line.from_bus[ring]) | set(net_.line.to_bus[ring])
    near |= set(net_.trafo.hv_bus[net_.trafo.lv_bus == at])
    ring2 = net_.line.index[net_.line.from_bus.isin(near) | net_.line.to_bus.isin(near)]
    access = {f"bus.{label[b]}." for b in near} | {f"line.{line_label[k]}." for k in ring2}
    writable = np.array([name[:name.rindex(".") + 1] in access for name in meters.names])
    a = stealthy_false_data(network, topo, est.V, meters, writable, *delta)
    assert a is not None and np.all(a[~writable] == 0) and np.abs(a).max() > 0.04
    fooled = wls.estimate(z + a, topo, est.V)
    assert fooled.J <= est.J + 1e-6 * est.J and not wls.alarm(fooled)
