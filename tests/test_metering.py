"""Realistic metering: sparse meters with load pseudo-measurements, observability, access-limited stealthy attacks.

Expected values come from outside the code under test: pandapower's own state estimation on the same
measurements, pandapower's power flow as the truth, the chi-square distribution (false alarms at alpha)
and the defining property of a stealthy attack (what the attacker cannot write reads the same).
"""

from __future__ import annotations

import copy
import fnmatch
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest
from scipy.stats import binom

from cosim.detection.network import P, PF, Q, QF, VM, Network, metering_plan, plan_for
from cosim.detection.stealthy import stealthy_false_data
from cosim.detection.wls import WLS
from cosim.grid.feeders import load_feeder
from cosim.scenario.errors import ScenarioError
from cosim.scenario.loader import load_scenario
from cosim.scenario.metering import Metering, RunMetering
from cosim.scenario.schema import Detector

ROOT = Path(__file__).resolve().parents[1]
HEAD = """name: m
seed: 3
clock: {start: "2025-06-21T08:00:00", duration: 1h, step: 1min}
grid: {feeder: ieee33}
"""


@pytest.fixture(scope="module")
def grid():
    """IEEE 33 at nominal load solved by pandapower (the truth), and the estimator's network model."""
    feeder = load_feeder("ieee33")
    net = copy.deepcopy(feeder.net)
    pp.runpp(net)
    return feeder, net, Network(feeder)


def _truth(feeder, net, plan) -> np.ndarray:
    """Each planned meter's true value from pandapower's results (injections generation-positive)."""
    bus = dict(zip(feeder.bus_labels.tolist(), net.bus.index))
    line = dict(zip(feeder.line_labels.tolist(), net.line.index))
    read = {VM: lambda m: net.res_bus.vm_pu[bus[m.label]], P: lambda m: -net.res_bus.p_mw[bus[m.label]],
            Q: lambda m: -net.res_bus.q_mvar[bus[m.label]], PF: lambda m: net.res_line.p_from_mw[line[m.label]],
            QF: lambda m: net.res_line.q_from_mvar[line[m.label]]}
    return np.array([read[m.kind](m) for m in plan])


def _sparse(feeder, **keys):
    return metering_plan(RunMetering(Metering(preset="sparse", **keys).resolved(), 1.0, ()), feeder)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + body)
    return path


def test_full_preset_is_todays_measurement_set(grid):
    feeder, _, _ = grid
    full = metering_plan(RunMetering(Metering(preset="full").resolved(), 1.0, ()), feeder)
    today = plan_for(Detector(), feeder)
    assert [(m.name, m.sigma, m.drawn) for m in full] == [(m.name, m.sigma, m.drawn) for m in today]


def test_sparse_preset_meters_the_substation_the_feeder_ends_and_pseudo_loads(grid):
    feeder, net, _ = grid
    plan = _sparse(feeder)
    real = [m.name for m in plan if m.sigma == 0.002 or m.name.startswith("bus.1.")]
    # IEEE 33's laterals end at buses 18, 22, 25 and 33 (Baran & Wu 1989)
    assert real == ["bus.1.vm_pu", "bus.18.vm_pu", "bus.22.vm_pu", "bus.25.vm_pu", "bus.33.vm_pu",
                    "bus.1.p_mw", "bus.1.q_mvar"]
    pseudo = {m.name: m.sigma for m in plan if m.name not in real}
    assert len(pseudo) == 64  # P and Q at the 32 load buses
    load = net.load.set_index(net.load.bus.map(dict(zip(net.bus.index, feeder.bus_labels.tolist()))))
    assert pseudo["bus.18.p_mw"] == pytest.approx(0.3 * load.p_mw[18])  # 30 % of its 90 kW


def test_sparse_wls_with_pseudo_measurements_matches_pandapower_estimation(grid):
    """Same measurements, same sigmas: pandapower.estimation.estimate and our WLS find the same state."""
    from pandapower.estimation import estimate

    feeder, net, network = grid
    plan = _sparse(feeder, pseudo_loads={"error": 0.3})
    meters = network.meters(plan)
    z = _truth(feeder, net, plan) + np.random.default_rng(11).normal(0, 1, len(plan)) * meters.noise
    est = WLS(network, meters).estimate(z, network.topology())
    assert est.converged and est.dof == 71 - 65
    other = copy.deepcopy(feeder.net)
    bus = dict(zip(feeder.bus_labels.tolist(), other.bus.index))
    line = dict(zip(feeder.line_labels.tolist(), other.line.index))
    for m, value in zip(plan, z):
        if m.kind == VM:
            pp.create_measurement(other, "v", "bus", value, m.sigma, bus[m.label])
        elif m.kind in (P, Q):  # pandapower's bus measurements are load-positive
            pp.create_measurement(other, "p" if m.kind == P else "q", "bus", -value, m.sigma, bus[m.label])
        else:
            pp.create_measurement(other, "p" if m.kind == PF else "q", "line", value, m.sigma, line[m.label],
                                  side="from")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert estimate(other, init="flat", tolerance=1e-10, maximum_iterations=50, zero_injection=None)["success"]
    rows = [network.bus_row[b] for b in feeder.bus_labels.tolist()]
    assert np.abs(est.V[rows]) == pytest.approx(other.res_bus_est.vm_pu.to_numpy(), abs=1e-8)
    assert np.degrees(np.angle(est.V[rows])) == pytest.approx(other.res_bus_est.va_degree.to_numpy(), abs=1e-6)
    # and with 30 % pseudo errors the voltages still come out within a few tenths of a percent of the truth
    assert np.abs(est.V[rows]) == pytest.approx(net.res_bus.vm_pu.to_numpy(), abs=0.005)


def test_unobservable_meter_set_is_refused_with_exit_2(tmp_path):
    path = _write(tmp_path, "detector: {significance: 0.01}\n"
                            "metering: {preset: sparse, pseudo_loads: null}\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    text = str(exc.value)
    assert "metering" in text and "unobservable" in text and "bus 3," in text and "pseudo" in text
    cli = subprocess.run([sys.executable, "-m", "cosim", "validate", str(path)], capture_output=True, text=True)
    assert cli.returncode == 2 and "unobservable" in cli.stdout + cli.stderr
    assert "Traceback" not in cli.stdout + cli.stderr
    # the same meters with pseudo-measurements are observable
    load_scenario(_write(tmp_path, "detector: {significance: 0.01}\nmetering: sparse\n"))


@pytest.mark.parametrize("body, field", [
    ("metering: {voltage: [1, 40]}\n", "metering.voltage"),
    ("metering: sparse\ndetector: {measurements: {vm_pu: {sigma: 0.01}}}\n", "metering"),
    ("metering: {preset: sparse, noise: {voltage: -1}}\n", "metering.noise.voltage"),
    ("metering: {preset: sparse, pseudo_loads: {correlation_time: 0s}}\n", "metering.pseudo_loads"),
    ("metering: {model_error: {line_r: -0.1}}\n", "metering.model_error.line_r"),
])
def test_bad_metering_names_the_field(tmp_path, body, field):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(_write(tmp_path, body))
    assert field in str(exc.value)


def _attack(network, meters, V, patterns, buses=(17, 18), mw=0.3):
    delta = np.zeros((2, len(network.bus)))
    for b in buses:
        delta[0, network.bus_row[b]] += mw
    writable = np.array([any(fnmatch.fnmatch(n, p) for p in patterns) for n in meters.names])
    return writable, stealthy_false_data(network, network.topology(), V, meters, writable, *delta)


def test_limited_access_stealthy_attack_leaves_the_residual_and_other_meters_unchanged(grid):
    feeder, net, network = grid
    plan = _sparse(feeder)
    meters = network.meters(plan)
    wls, topo = WLS(network, meters), network.topology()
    truth = _truth(feeder, net, plan)
    rng = np.random.default_rng(5)
    access = ["bus.17.*", "bus.18.*", "bus.1.*", "bus.*.vm_pu"]  # 11 of the 71 meters
    for _ in range(5):
        z = truth + rng.normal(0, 1, len(plan)) * meters.noise
        clean = wls.estimate(z, topo)
        writable, a = _attack(network, meters, clean.V, access)
        assert a is not None and writable.sum() == 11
        assert np.all(a[~writable] == 0)
        attacked = wls.estimate(z + a, topo)
        # the estimate moves: buses 17 and 18 now seem to inject 0.3 MW more each
        inj = lambda V: (V * np.conj(topo.Y @ V)).real * network.base_mva  # noqa: E731
        moved = inj(attacked.V) - inj(clean.V)
        assert moved[[network.bus_row[17], network.bus_row[18]]] == pytest.approx([0.3, 0.3], abs=0.01)
        # ... and the chi-square statistic does not: first order exactly, the nonlinear remainder is
        # orders of magnitude below chi2(6)'s spread (sd 3.5) and never raises it
        assert attacked.J <= clean.J + 1e-9
        assert clean.J - attacked.J < 1e-3 * max(clean.J, 1.0)
        assert wls.alarm(attacked) == wls.alarm(clean)


def test_too_little_access_for_stealth_is_told_apart_from_none_at_all(grid, tmp_path):
    feeder, net, network = grid
    full = network.meters(plan_for(Detector(), feeder))
    V = WLS(network, full).estimate(_truth(feeder, net, plan_for(Detector(), feeder)), network.topology()).V
    assert _attack(network, full, V, ["bus.17.*", "bus.18.*"])[1] is None  # full metering: the flows give it away
    sparse = network.meters(_sparse(feeder))
    assert _attack(network, sparse, V, ["bus.17.*", "bus.18.*", "bus.1.*"])[1] is None  # the end voltages do
    # ... but false data that leaves a residual exists there, so the scenario loads; the substation's three meters
    # alone cannot move the estimate at buses 17-18 at all, and the loader says so
    event = "events:\n  - {at: 10min, duration: 10min, kind: fdi_stealthy, buses: [17, 18], delta_p_mw: 0.3, "
    load_scenario(_write(tmp_path, f"metering: sparse\n{event}meters: ['bus.17.*', 'bus.18.*']}}\n"))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(_write(tmp_path, f"metering: sparse\n{event}access: substation}}\n"))
    assert "events[0].access" in str(exc.value) and "no false data" in str(exc.value)


def _false_alarms(grid, scale: float, steps: int, seed: int) -> float:
    """Share of `steps` noisy snapshots on which the chi-square test alarms, noise = scale x assumed sigma."""
    feeder, net, network = grid
    plan = _sparse(feeder)
    meters = network.meters(plan)
    wls, topo = WLS(network, meters, significance=0.01), network.topology()
    truth = _truth(feeder, net, plan)
    rng = np.random.default_rng(seed)
    return float(np.mean([wls.alarm(wls.estimate(truth + rng.normal(0, 1, len(plan)) * meters.sigma * scale, topo))
                          for _ in range(steps)]))


def test_false_alarm_rate_is_alpha_with_matched_sigma_and_moves_with_model_error(grid):
    steps = 1500
    matched = _false_alarms(grid, 1.0, steps, seed=1)
    lo, hi = binom.ppf([0.0005, 0.9995], steps, 0.01) / steps  # 99.9 % interval of Binomial(1500, 0.01)
    assert lo <= matched <= hi
    # channel noisier than assumed: J ~ 1.5^2 chi2(6), P(> chi2_0.99(6) / 2.25) = 0.25; quieter: almost never
    assert _false_alarms(grid, 1.5, 400, seed=2) > 0.15
    assert _false_alarms(grid, 0.7, 400, seed=3) < 0.01


def test_sparse_noise_mismatch_reaches_the_channel(tmp_path):
    """`noise:` sets what the channel draws, `sigma:` what the estimator assumes."""
    loaded = load_scenario(_write(tmp_path, "metering: {preset: sparse, sigma: {voltage: 0.002}, "
                                            "noise: {voltage: 0.004, pseudo: 0.1}}\n"))
    from cosim.assembly import assemble

    meters = assemble(loaded).estimator.meters
    v = meters.names.index("bus.18.vm_pu")
    p = meters.names.index("bus.18.p_mw")
    assert (meters.sigma[v], meters.noise[v]) == (0.002, 0.004)
    assert meters.noise[p] == pytest.approx(meters.sigma[p] / 3)  # 10 % drawn, 30 % assumed


def test_attacker_on_the_real_meters_only_has_no_stealthy_attack_under_sparse_metering(grid):
    """Every non-slack injection is a pseudo-measurement it cannot write: no shift fakes any injection."""
    feeder, net, network = grid
    sparse = network.meters(_sparse(feeder))
    V = WLS(network, sparse).estimate(_truth(feeder, net, _sparse(feeder)), network.topology()).V
    assert _attack(network, sparse, V, ["bus.*.vm_pu", "bus.1.*"])[1] is None


def _assembled_wls(tmp_path: Path, body: str):
    """The WLS detector a scenario's assembly runs, and the meter plan of its metering block."""
    from cosim.assembly import assemble
    from cosim.scenario.metering import run_metering

    loaded = load_scenario(_write(tmp_path, body + "detector: {}\n"))
    wls = assemble(loaded).detectors[0].detector.estimator
    plan = metering_plan(run_metering(loaded.scenario), loaded.feeder)
    assert [m.name for m in plan] == list(wls.meters.names)
    return wls, plan


def _pandapower_J(net, feeder, plan, z, use) -> float:
    """J of pandapower's own state estimation on `net` with measurements z: sum of squared weighted residuals
    between z and what pandapower's estimated state gives on that net."""
    from pandapower.estimation import estimate

    bus = dict(zip(feeder.bus_labels.tolist(), net.bus.index))
    line = dict(zip(feeder.line_labels.tolist(), net.line.index))
    kept = [(m, v) for m, v, u in zip(plan, z, use) if u]
    for m, value in kept:
        if m.kind == VM:
            pp.create_measurement(net, "v", "bus", value, m.sigma, bus[m.label])
        elif m.kind in (P, Q):
            pp.create_measurement(net, "p" if m.kind == P else "q", "bus", -value, m.sigma, bus[m.label])
        else:
            pp.create_measurement(net, "p" if m.kind == PF else "q", "line", value, m.sigma, line[m.label],
                                  side="from")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert estimate(net, init="flat", tolerance=1e-10, maximum_iterations=50, zero_injection=None)["success"]
    read = {VM: lambda m: net.res_bus_est.vm_pu[bus[m.label]], P: lambda m: -net.res_bus_est.p_mw[bus[m.label]],
            Q: lambda m: -net.res_bus_est.q_mvar[bus[m.label]],
            PF: lambda m: net.res_line_est.p_from_mw[line[m.label]],
            QF: lambda m: net.res_line_est.q_from_mvar[line[m.label]]}
    return float(sum(((v - read[m.kind](m)) / m.sigma) ** 2 for m, v in kept))


def test_model_error_zero_leaves_the_detector_unchanged(tmp_path, grid):
    feeder, net, _ = grid
    plain, plan = _assembled_wls(tmp_path, "metering: full\n")
    zero, _ = _assembled_wls(tmp_path, "metering: {preset: full, model_error: 0}\n")
    z = _truth(feeder, net, plan) + np.random.default_rng(5).normal(0, 1, len(plan)) * plain.meters.sigma
    a, b = plain.estimate(z, plain.network.topology()), zero.estimate(z, zero.network.topology())
    assert a.J == b.J and np.array_equal(a.V, b.V)


def test_model_error_raises_the_clean_chi2_as_pandapower_estimation_on_the_perturbed_net_predicts(tmp_path, grid):
    """The detector's model carries 20 % line impedance error, the grid (pandapower's solution) none.
    Noise-free, J is the misfit of the true measurements to the wrong model: pandapower's own estimator on
    the perturbed net finds the same J. With noise, J ~ noncentral chi2(dof, J0) (linear model), whose tail
    beyond the threshold is the false-alarm rate the noisy snapshots must show."""
    from scipy.stats import ncx2

    from cosim.scenario.metering import ModelError, perturbed_feeder

    feeder, net, _ = grid
    wls, plan = _assembled_wls(tmp_path, "metering: {preset: full, model_error: {line_r: 0.2, line_x: 0.2, seed: 4}}\n")
    topo = wls.network.topology()
    truth = _truth(feeder, net, plan)
    clean = wls.estimate(truth, topo)
    use = np.isfinite(clean.residual)
    wrong = perturbed_feeder(feeder, ModelError(line_r=0.2, line_x=0.2, seed=4)).net
    assert not np.allclose(wrong.line.r_ohm_per_km, feeder.net.line.r_ohm_per_km)
    assert clean.J == pytest.approx(_pandapower_J(copy.deepcopy(wrong), feeder, plan, truth, use), rel=1e-4)
    assert clean.J > 5.0  # far from the ~1e-10 of the exact model
    steps, rng = 600, np.random.default_rng(8)
    alarms = np.mean([wls.alarm(wls.estimate(truth + rng.normal(0, 1, len(plan)) * wls.meters.sigma, topo))
                      for _ in range(steps)])
    expected = float(ncx2.sf(clean.threshold, clean.dof, clean.J))
    lo, hi = binom.ppf([0.0005, 0.9995], steps, expected) / steps
    assert expected > 0.03 and lo <= alarms <= hi


def test_pseudo_errors_with_a_correlation_time_are_ar1_with_the_stated_marginal_std(tmp_path):
    """correlation_time 10min at 1-min steps: lag-k autocorrelation exp(-k/10) and std `error` x nominal on the
    pseudo-measurements (numpy on a long series of the channel's draws); the real meters stay white."""
    from cosim.assembly import assemble, channels

    loaded = load_scenario(_write(tmp_path, "metering: {preset: sparse, pseudo_loads: {error: 0.3, "
                                            "correlation_time: 10min}}\ndetector: {}\n"))
    asm = assemble(loaded)
    noise = channels(asm)[0].noise
    e = np.array([noise.draw() for _ in range(20_000)])
    names = asm.estimator.meters.names
    pseudo = np.array([n.startswith("bus.") and n.split(".")[1] != "1" and not n.endswith("vm_pu") for n in names])
    assert pseudo.sum() == 64
    x = e[:, pseudo] / asm.estimator.meters.noise[pseudo]
    assert x.std(axis=0).mean() == pytest.approx(1.0, abs=0.03)
    for k in (1, 5, 10, 20):
        lagged = np.mean([np.corrcoef(x[:-k, j], x[k:, j])[0, 1] for j in range(x.shape[1])])
        assert lagged == pytest.approx(np.exp(-k / 10), abs=0.03)
    real = e[:, ~pseudo] / asm.estimator.meters.noise[~pseudo]
    assert np.mean([np.corrcoef(real[:-1, j], real[1:, j])[0, 1] for j in range(real.shape[1])]) == \
        pytest.approx(0.0, abs=0.02)


def test_pseudo_errors_stay_white_by_default(tmp_path):
    from cosim.assembly import assemble, channels

    asm = assemble(load_scenario(_write(tmp_path, "metering: sparse\ndetector: {}\n")))
    assert channels(asm)[0].noise.memory is None
