"""WLS state estimation: exact on clean data, catches gross false data, blind to a = H c."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from cosim.detection.network import Network, meter_plan
from cosim.detection.wls import WLS
from cosim.grid.feeders import load_feeder
from cosim.grid.model import DER, Disruptions, GridModel
from events_helpers import simulate

FAMILIES = {"vm_pu": (0.002, None), "p_mw": (0.005, None), "q_mvar": (0.005, None),
            "line_p_mw": (0.005, None), "line_q_mvar": (0.005, None)}


@pytest.fixture(scope="module")
def setup():
    feeder = load_feeder("ieee33")
    model = GridModel(load_feeder("ieee33"), [DER("pv1", "pv", 18, 1.0, 1.1)], metering=True)
    network = Network(feeder)
    meters = network.meters(meter_plan(FAMILIES, feeder.bus_labels.tolist(), feeder.line_labels.tolist()))
    signals = model.signals(model.step(np.ones(32), np.array([0.6])))
    z = np.array([signals[n] for n in meters.names])
    return network, meters, WLS(network, meters, significance=0.01), z, signals


def test_clean_measurements_are_fitted_exactly(setup):
    network, meters, wls, z, signals = setup
    est = wls.estimate(z, network.topology())
    assert est.converged and est.J < 1e-8
    # the five normally-open tie lines carry no flow: 10 meters unused, 65 states
    assert est.dof == len(meters.names) - 2 * 5 - 65 and est.threshold == pytest.approx(chi2.ppf(0.99, est.dof))
    vm = np.abs(est.V)[[network.bus_row[b] for b in range(1, 34)]]
    assert np.allclose(vm, [signals[f"bus.{b}.vm_pu"] for b in range(1, 34)], atol=1e-9)


def test_gross_bias_fails_both_tests_and_names_the_meter(setup):
    network, meters, wls, z, _ = setup
    noisy = z + np.random.default_rng(2).normal(0, 1, len(z)) * meters.sigma
    i = meters.names.index("bus.18.vm_pu")
    clean, biased = wls.estimate(noisy, network.topology()), wls.estimate(noisy - 0.04 * (np.arange(len(z)) == i),
                                                                          network.topology())
    assert clean.J < clean.threshold and not wls.alarm(clean)
    assert biased.J > biased.threshold and wls.alarm(biased)
    assert meters.names[biased.suspect] == "bus.18.vm_pu" and biased.lnr > wls.lnr_threshold


def test_stealthy_attack_leaves_the_statistic_unchanged(setup):
    network, meters, wls, z, _ = setup
    topo = network.topology()
    delta = np.zeros(len(network.bus))
    delta[[network.bus_row[17], network.bus_row[18]]] = 0.3
    # noiseless: the attacked measurements are those of another valid state, fitted exactly too
    x = wls.estimate(z, topo)
    a = network.measure(topo, network.shifted_state(topo, x.V, delta, 0 * delta), meters)[0] - \
        network.measure(topo, x.V, meters)[0]
    attacked = wls.estimate(z + a, topo)
    assert attacked.J < 1e-8
    i = meters.names.index("bus.18.vm_pu")
    assert a[i] > 10 * meters.sigma[i]  # a real change: 0.6 MW more at the feeder end raises its voltage
    assert np.abs(attacked.V - x.V).max() > 0.01  # and the estimate follows the fake state
    # noisy: J moves by a numerical trace only, far inside the chi-square spread
    noisy = z + np.random.default_rng(3).normal(0, 1, len(z)) * meters.sigma
    x = wls.estimate(noisy, topo)
    a = network.measure(topo, network.shifted_state(topo, x.V, delta, 0 * delta), meters)[0] - \
        network.measure(topo, x.V, meters)[0]
    attacked = wls.estimate(noisy + a, topo)
    assert attacked.J <= x.J + 1e-9 and abs(attacked.J - x.J) < 1e-4 * x.J
    bias = wls.estimate(noisy + 0.5 * a / np.abs(a).max() * (np.arange(len(z)) == i), topo)
    assert bias.J > x.J + 10  # the same order of change on one meter alone is glaring


def test_outage_topology_removes_the_cut_off_part(setup):
    network, meters, wls, _, _ = setup
    model = GridModel(load_feeder("ieee33"), [DER("pv1", "pv", 18, 1.0, 1.1)], metering=True)
    model.apply_disruptions(Disruptions(lines_out=frozenset({7})))
    signals = model.signals(model.step(np.ones(32), np.array([0.6])))
    z = np.array([signals[n] for n in meters.names])
    topo = network.topology(frozenset({7}))
    assert topo.live_bus.sum() == 33 - 11
    est = wls.estimate(z, topo)
    assert est.converged and est.J < 1e-8 and est.dof == int(network.usable(topo, meters).sum()) - topo.n_states


def test_a_stealthy_shift_with_only_the_substation_energised_changes_nothing(setup):
    network, _, _, _, _ = setup
    topo = network.topology(frozenset({1}))  # line 1 out: every bus beyond the substation is dead
    assert topo.live_bus.sum() == 1
    V = np.ones(len(network.bus), complex)
    delta = np.full(len(network.bus), 0.3)
    np.testing.assert_array_equal(network.shifted_state(topo, V, delta, 0 * delta), V)


@pytest.mark.slow  # a whole day or a real process; CI runs it in the slow step
def test_false_alarm_rate_on_a_clean_day_is_the_significance(tmp_path):
    ts = simulate(tmp_path, "detector: {significance: 0.05}\n", duration="24h", step="5min")
    alarms = ts["detector.alarm"].to_numpy()
    n, alpha = len(alarms), 0.05
    assert abs(alarms.sum() - n * alpha) <= 3 * np.sqrt(n * alpha * (1 - alpha))
    dof = 33 * 3 + 32 * 2 - 65  # the five normally-open tie lines carry no flow meter
    assert ts["detector.chi2"].mean() == pytest.approx(dof, rel=0.05)


@pytest.mark.slow  # a whole day or a real process; CI runs it in the slow step
def test_gross_fdi_is_caught_within_steps_and_stealthy_is_not(tmp_path):
    ts = simulate(tmp_path, """\
        detector: {significance: 0.01}
        events:
          - {at: 10min, duration: 20min, kind: fdi, target: bus.18.vm_pu, bias: -0.04}
          - {at: 60min, duration: 40min, kind: fdi_stealthy, buses: [17, 18], delta_p_mw: 0.3}
        """, duration="2h")
    alarm = ts["detector.alarm"].to_numpy() >= 0.5
    gross = slice(10, 30)
    assert np.flatnonzero(alarm[gross])[0] <= 2
    assert alarm[gross].mean() >= 0.8
    assert (ts["detector.suspect"].iloc[gross][alarm[gross]] == "bus.18.vm_pu").mean() >= 0.8
    stealthy = slice(60, 100)
    assert alarm[stealthy].sum() <= 3  # alarms at about the significance level, as on clean steps
    lift = ts["seen.bus.18.vm_pu"].iloc[stealthy] - ts["bus.18.vm_pu"].iloc[stealthy]
    assert lift.mean() > 0.02  # ten sigma: a large, consistent lie about the feeder end
