"""`fdi_stealthy` with the attacker's access: `access: substation | feeder | all` or `meters: [...]`.

The zones are checked against the published IEEE 33 topology and, as properties, on a SimBench feeder with
several feeders; the least-residual false data (no stealthy one exists) against scipy's SLSQP minimising the
real WLS statistic; whole runs for what each access leaves in the records.
"""

from __future__ import annotations

import copy
import fnmatch
from pathlib import Path

import networkx as nx
import numpy as np
import pandapower as pp
import pandas as pd
import pytest
from scipy.optimize import minimize

from cosim.detection.access import reach, reachable_meters, substation_buses
from cosim.detection.network import Network, plan_for
from cosim.detection.stealthy import least_residual_false_data, stealthy_false_data
from cosim.detection.wls import WLS
from cosim.grid.feeders import load_feeder
from cosim.runner import run_scenario
from cosim.scenario.errors import ScenarioError
from cosim.scenario.loader import load_scenario
from cosim.scenario.schema import Detector

HEAD = """name: access
seed: 3
clock: {start: "2025-06-21T10:00:00", duration: 40min, step: 1min}
grid: {feeder: ieee33}
controller: {kind: none}
detector: {significance: 0.01}
events:
  - {at: 20min, duration: 20min, kind: fdi_stealthy, buses: [17, 18], delta_p_mw: 0.3, """


def _write(tmp_path: Path, access: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + access + "}\n")
    return path


def test_ieee33_zones_follow_the_published_topology():
    # Baran & Wu: bus 1 (the substation) feeds one feeder through line 1 (1-2); the tie lines 33-37 join its buses
    feeder = load_feeder("ieee33")
    assert reach(feeder, "substation", [17]) == ({1}, {1})
    assert reach(feeder, "feeder", [17]) == (set(range(2, 34)), set(range(2, 38)))
    assert reach(feeder, "all", [17]) == (set(range(1, 34)), set(range(1, 38)))
    meters = Network(feeder).meters(plan_for(Detector(), feeder)).names
    assert reachable_meters(feeder, "substation", [17], meters) == (
        "bus.1.vm_pu", "bus.1.p_mw", "bus.1.q_mvar", "line.1.p_mw", "line.1.q_mvar")


def test_simbench_feeders_partition_the_buses_behind_the_substation():
    feeder = load_feeder("simbench:1-MV-rural--0-sw")
    net, label = feeder.net, dict(zip(feeder.net.bus.index, feeder.bus_labels.tolist()))
    station, head = reach(feeder, "substation", [])
    assert {label[b] for b in net.ext_grid.bus} <= station and len(head) > 1  # several feeders leave it
    zones = {}
    for b in set(label.values()) - station:
        zones.setdefault(frozenset(reach(feeder, "feeder", [b])[0]), []).append(b)
    assert len(zones) > 1 and sum(len(z) for z in zones) == len(label) - len(station)  # disjoint, covering
    owned = [k for z in zones for k in reach(feeder, "feeder", [min(z)])[1]] + sorted(head)
    assert len(owned) == len(set(owned))  # no line in two zones
    index = {v: k for k, v in label.items()}
    zone_of = {b: z for z in zones for b in z}
    line = dict(zip(feeder.line_labels.tolist(), zip(net.line.from_bus, net.line.to_bus)))
    for k in set(line) - set(owned):  # the others are ties between two feeders
        f, t = (label[b] for b in line[k])
        assert zone_of[f] != zone_of[t]
    for zone in zones:  # each feeder is connected on its own
        assert nx.is_connected(nx.Graph(pp.topology.create_nxgraph(net, nogobuses=substation_buses(feeder))
                                        .subgraph(index[b] for b in zone)))


@pytest.fixture(scope="module")
def full():
    feeder = load_feeder("ieee33")
    net = copy.deepcopy(feeder.net)
    pp.runpp(net)
    network = Network(feeder)
    meters = network.meters(plan_for(Detector(), feeder))
    topo = network.topology()
    V = net.res_bus.vm_pu.to_numpy() * np.exp(1j * np.deg2rad(net.res_bus.va_degree.to_numpy()))
    return network, meters, topo, network.measure(topo, V, meters)[0]


def test_least_residual_false_data_beats_an_independent_optimiser_on_the_real_statistic(full):
    network, meters, topo, z = full
    wls = WLS(network, meters)
    clean = wls.estimate(z, topo)
    writable = np.array([fnmatch.fnmatch(n, "bus.1[78].*") for n in meters.names])  # the 6 meters at 17-18
    delta = np.zeros((2, len(network.bus)))
    delta[0, [network.bus_row[17], network.bus_row[18]]] = 0.3
    assert stealthy_false_data(network, topo, clean.V, meters, writable, *delta) is None
    a = least_residual_false_data(network, topo, clean.V, meters, writable, *delta)
    rows = [network.bus_row[17], network.bus_row[18]]

    def faked(a_w: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.zeros(len(z))
        x[writable] = a_w
        est = wls.estimate(z + x, topo)
        s = est.V * np.conj(topo.Y @ est.V) - clean.V * np.conj(topo.Y @ clean.V)
        return est.J, np.r_[s.real[rows], s.imag[rows]] * network.base_mva - [0.3, 0.3, 0.0, 0.0]

    J, miss = faked(a[writable])
    assert np.all(a[~writable] == 0) and np.abs(miss).max() < 0.01  # the estimate shows the fake ...
    assert J > 100 * wls.threshold(len(z) - topo.n_states)  # ... and the residual gives it away
    start = np.where(writable, 0.6, 0.0)[writable]  # the fake written on the injection meters alone
    best = minimize(lambda x: faked(x)[0] / J, start, method="SLSQP",
                    constraints={"type": "eq", "fun": lambda x: faked(x)[1]}, options={"maxiter": 200})
    assert np.abs(faked(best.x)[1]).max() < 0.01
    assert J <= faked(best.x)[0] * 1.01


def _run(tmp_path: Path, access: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    run_scenario(load_scenario(_write(tmp_path, access)), tmp_path / "out")
    return (pd.read_parquet(tmp_path / "out" / "timeseries.parquet"),
            pd.read_csv(tmp_path / "out" / "events_impact.csv"))


def test_feeder_access_is_stealthy_and_fakes_the_injection(tmp_path):
    ts, impact = _run(tmp_path, "access: feeder")
    residual = ts["attack.1.residual_j"].to_numpy()
    assert np.isnan(residual[:20]).all() and np.abs(residual[20:]).max() < 0.01  # J moves by rounding only
    assert "seen.bus.1.p_mw" not in ts and "seen.line.1.p_mw" not in ts  # the substation's meters untouched
    faked = (ts["seen.bus.17.p_mw"] - ts["bus.17.p_mw"]).to_numpy()
    assert np.abs(faked[:20]).max() < 0.03 and abs(faked[20:].mean() - 0.3) < 0.01  # noise (sigma 5 kW), then the fake
    assert impact.loc[0, "residual_j_during"] == pytest.approx(np.nanmean(residual[20:]))


def test_six_meters_at_the_attacked_buses_leave_a_residual_that_is_detected(tmp_path):
    ts, impact = _run(tmp_path, "meters: ['bus.17.*', 'bus.18.*']")
    assert ts["attack.1.residual_j"].iloc[20:].min() > 1000  # chi2(173 - 64) at 1 %: 146
    assert impact.loc[0, "detected"] == 1 and impact.loc[0, "alarm_share"] == 1.0


@pytest.mark.parametrize("access, message", [
    ("access: substation", "no false data"),
    ("access: feeder, meters: ['bus.17.*']", "either as meters or as access"),
    ("access: everywhere", "substation"),
])
def test_bad_access_names_the_field(tmp_path, access, message):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(_write(tmp_path, access))
    assert "events[0]" in str(exc.value) and message in str(exc.value)


def test_the_attack_stays_stealthy_across_an_outage_mid_attack(tmp_path):
    path = _write(tmp_path, "access: feeder")
    path.write_text(path.read_text() + "  - {at: 25min, duration: 5min, kind: line_outage, line: 7}\n")
    run_scenario(load_scenario(path), tmp_path / "out")
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert ts["line.7.loading_pct"].iloc[25:30].fillna(0).max() == 0 < ts["line.7.loading_pct"].iloc[31]
    residual = ts["attack.1.residual_j"].to_numpy()
    assert len(ts) == 40 and np.abs(residual[20:]).max() < 0.01  # rebuilt on each step's topology
