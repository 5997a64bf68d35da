"""Per-DER policies transfer: trained briefly on IEEE 33, run unchanged on IEEE 69 and on other DER names and counts.

Expected values come from outside the code under test: the IEEE 33 branch list as published
(Baran & Wu 1989) for the feeder tree, and a hand computation of every feature from the
recorded signals of a real `cosim run` for the actions.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from controllers.base import ControllerInfo, DERInfo
from controllers.drl.checkpoint import FORMAT, FORMAT_PER_DER, load_policy
from controllers.drl.distribution import load_distribution
from controllers.drl.features import FeatureMap, LayoutUnreadable, PerDERSpec
from controllers.drl.policy import PolicyController
from controllers.drl.train import TrainConfig, train
from controllers.drl.tree import feeder_tree
from cosim.grid.feeders import load_feeder
from cosim.scenario.errors import ScenarioError

from conftest import REPO, SCENARIOS

# IEEE 33 (Baran & Wu): branch k joins these buses; the tree's parent of each `to` bus is its `from` bus
IEEE33_BRANCHES = [(k, k + 1) for k in range(1, 18)] + [(2, 19), (19, 20), (20, 21), (21, 22), (3, 23), (23, 24),
                                                         (24, 25), (6, 26)] + [(k, k + 1) for k in range(26, 33)]

NOON = """\
name: {name}
seed: 5
clock: {{start: "2025-06-21T10:00:00", duration: 1h, step: 5min}}
grid: {{feeder: {feeder}, line_max_i_ka: 0.4}}
loads: {{profile: residential, noise: 0.03}}
controller: {{kind: drl, policy: {policy}}}
generators:
{generators}
"""
FOUR_PV = [("pv1", 18, 2.0), ("pv2", 33, 1.5), ("pv3", 25, 1.5), ("pv4", 22, 1.2)]  # the layout, no wind
IEEE69_PV = [("a", 11, 0.5), ("b", 18, 0.4), ("c", 61, 1.7), ("d", 65, 0.6), ("e", 27, 0.3)]


def _scenario(tmp_path: Path, name: str, feeder: str, policy: Path, gens: list[tuple[str, int, float]]) -> Path:
    lines = "\n".join(f"  - {{name: {n}, kind: pv, bus: {b}, p_mw: {p}}}" for n, b, p in gens)
    path = tmp_path / f"{name}.yaml"
    path.write_text(NOON.format(name=name, feeder=feeder, policy=policy, generators=lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    """A per-DER SAC policy trained for 200 steps (seed 0) on the IEEE 33 PV + wind scenario."""
    out = tmp_path_factory.mktemp("per-der")
    cfg = TrainConfig(algo="sac", steps=200, seed=0, hidden=(16, 16), batch_size=32, learning_starts=100, per_der=True)
    return train(SCENARIOS / "ieee33-pv-wind.yaml", cfg, out, command="test").policy


def test_feeder_tree_is_the_published_ieee33_topology():
    tree = feeder_tree(load_feeder("ieee33"))
    assert tree.root == 1
    assert {child: tree.parent[child] for _, child in IEEE33_BRANCHES} == {b: a for a, b in IEEE33_BRANCHES}
    leaves = {18, 22, 25, 33}
    assert all(tree.child[b] == b for b in leaves)
    assert tree.child[2] == 3 and tree.child[6] == 7  # the feeder continues along its longer branch


# Baran & Wu (1989), Table: r and x in ohm of branches 1-17, the path from the substation (bus 1) to bus 18
IEEE33_PATH_TO_18 = [(0.0922, 0.0470), (0.4930, 0.2511), (0.3660, 0.1864), (0.3811, 0.1941), (0.8190, 0.7070),
                     (0.1872, 0.6188), (0.7114, 0.2351), (1.0300, 0.7400), (1.0440, 0.7400), (0.1966, 0.0650),
                     (0.3744, 0.1238), (1.4680, 1.1550), (0.5416, 0.7129), (0.5910, 0.5260), (0.7463, 0.5450),
                     (1.2890, 1.7210), (0.7320, 0.5740)]


def test_path_impedance_is_the_published_sum_and_predicts_the_power_flow_sensitivity():
    feeder = load_feeder("ieee33")
    tree = feeder_tree(feeder)
    z_base = 12.66**2  # ohm per pu at 1 MVA
    r18, x18 = (sum(z[i] for z in IEEE33_PATH_TO_18) / z_base for i in (0, 1))
    assert tree.r_path[18] == pytest.approx(r18, rel=1e-3) and tree.x_path[18] == pytest.approx(x18, rel=1e-3)
    assert tree.r_path[1] == tree.x_path[1] == 0.0
    # LinDistFlow's dV = R P + X Q against a pandapower AC power flow, 0.1 MW and 0.1 Mvar injected at bus 18
    import pandapower as pp

    net = copy.deepcopy(feeder.net)
    bus18 = net.bus.index[list(feeder.bus_labels).index(18)]
    pp.runpp(net)
    v0 = net.res_bus.vm_pu.at[bus18]
    for p_mw, q_mvar, z in ((0.1, 0.0, r18), (0.0, 0.1, x18)):
        sgen = pp.create_sgen(net, bus18, p_mw=p_mw, q_mvar=q_mvar)
        pp.runpp(net)
        assert net.res_bus.vm_pu.at[bus18] - v0 == pytest.approx(0.1 * z, rel=0.15)
        net.sgen.drop(sgen, inplace=True)


def test_feeder_tree_follows_only_closed_branches_of_a_meshed_simbench_feeder():
    """SimBench MV rural is meshed by six lines whose switch is open: the tree's paths are those of
    pandapower's own switch-respecting graph, and their impedances pandapower's per-unit branch impedances."""
    import networkx as nx
    import pandapower.topology as top

    feeder = load_feeder("simbench:1-MV-rural--0-sw")
    net, labels = feeder.net, [int(b) for b in feeder.bus_labels]
    graph = top.create_nxgraph(net, respect_switches=True, calc_branch_impedances=True, branch_impedance_unit="pu")
    tree = feeder_tree(feeder)
    by_label = dict(zip(labels, net.bus.index))
    root = by_label[tree.root]
    open_lines = set(net.switch.element[(net.switch.et == "l") & ~net.switch.closed.astype(bool)])
    assert len(open_lines) == 6
    for label, parent in tree.parent.items():
        if label != tree.root:
            assert graph.has_edge(by_label[parent], by_label[label])  # no step through an open line
        path = nx.shortest_path(graph, root, by_label[label])  # the one path but for the two parallel trafos
        r = sum(min(d.get("r_pu", 0.0) for d in graph.get_edge_data(a, b).values()) for a, b in zip(path, path[1:]))
        assert tree.r_path[label] == pytest.approx(r, rel=1e-3, abs=1e-12)  # trafo: pandapower rescales by its rated kV


def test_sensitivity_features_scale_with_rating_and_need_the_feeder():
    tree = feeder_tree(load_feeder("ieee33"))
    ders = [DERInfo("a", "pv", 18, 2.0, 2.0), DERInfo("b", "pv", 1, 1.0, 1.0)]
    fm = FeatureMap(PerDERSpec(("dv_dp", "dv_dq")), ders, tree, (0.95, 1.05))
    f = fm.features(np.ones(len(fm.names)))
    assert f[0] == pytest.approx([tree.r_path[18] * 2.0 / 0.05, tree.x_path[18] * 2.0 / 0.05], rel=1e-5)
    assert f[1].tolist() == [0.0, 0.0]  # at the substation nothing moves
    with pytest.raises(LayoutUnreadable, match="impedances"):
        FeatureMap(PerDERSpec(("v_own", "dv_dq")), ders, None, (0.95, 1.05))


def test_checkpoint_describes_the_per_der_layout_not_names(policy):
    net, meta = load_policy(policy)
    assert meta["format"] == FORMAT_PER_DER
    assert "layout" not in meta and "ders" not in meta
    assert net.sizes[0] == len(meta["per_der"]["features"]) and net.sizes[-1] == 1


def _features_by_hand(row: pd.Series, name: str, bus: int, parent: int, s: float, total_s: float) -> list[float]:
    """The default per-DER features of one DER, from a recorded row, as docs/drl.md defines them."""
    hour = row["time"].hour + row["time"].minute / 60
    v = lambda b: (row[f"bus.{b}.vm_pu"] - 1.0) / 0.05  # noqa: E731 - limits [0.95, 1.05]
    return [v(bus), v(parent), v(bus), row[f"{name}.p_avail_mw"] / s, row[f"{name}.p_mw"] / s,
            row[f"{name}.q_mvar"] / s, s, math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24),
            row["grid.ext_p_mw"] / total_s]


def test_runs_unchanged_on_four_renamed_pv_and_actions_match_the_actor(policy, tmp_path, cli):
    path = _scenario(tmp_path, "four-pv", "ieee33", policy, FOUR_PV)
    code, output, _ = cli("run", path, "--out", tmp_path / "run", "-q")
    assert code == 0, output
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    net, _ = load_policy(policy)
    parents = {b: a for a, b in IEEE33_BRANCHES}
    ratings = {n: 1.1 * p for n, _, p in FOUR_PV}  # the default inverter rating is 1.1 x nameplate
    total = sum(ratings.values())
    for k in (0, 5, len(ts) - 1):  # row k records the setpoints chosen from what step k showed (acting at k+1)
        x = np.array([_features_by_hand(ts.iloc[k], n, b, parents[b], ratings[n], total) for n, b, _ in FOUR_PV],
                     np.float32)
        with torch.no_grad():
            q = net(torch.from_numpy(x)).numpy()[:, 0] * np.array([ratings[n] for n, _, _ in FOUR_PV])
        recorded = ts.iloc[k][[f"ctrl.{n}.q_set_mvar" for n, _, _ in FOUR_PV]].to_numpy(float)
        np.testing.assert_allclose(recorded, q, rtol=1e-5, atol=1e-6)


def test_runs_unchanged_on_ieee69_with_five_pv(policy, tmp_path, cli):
    path = _scenario(tmp_path, "ieee69-five", "ieee69", policy, IEEE69_PV)
    code, output, _ = cli("run", path, "--out", tmp_path / "run", "-q")
    assert code == 0, output
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    q = ts[[f"ctrl.{n}.q_set_mvar" for n, _, _ in IEEE69_PV]].iloc[1:].to_numpy(float)
    assert np.isfinite(q).all() and np.abs(q).max() > 0  # every DER acts
    events = pd.read_csv(tmp_path / "run" / "events.csv")
    assert "controller_error" not in set(events["kind"])


def test_unreadable_layout_is_refused_with_exit_2(policy, tmp_path, cli):
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(policy, bad / "policy.pt")
    meta = json.loads(policy.with_suffix(".json").read_text())
    meta["per_der"]["features"][1] = "frequency"
    (bad / "policy.json").write_text(json.dumps(meta))
    path = _scenario(tmp_path, "bad", "ieee33", bad / "policy.pt", FOUR_PV)
    code, output, _ = cli("run", path, "--out", tmp_path / "run", "-q")
    assert code == 2 and "Traceback" not in output
    assert "field controller.policy" in output and "per_der.features: unknown 'frequency'" in output


def test_a_de_energised_der_does_not_freeze_the_others(policy):
    ctrl = PolicyController(policy)
    ders = tuple(DERInfo(n, "pv", b, p, 1.1 * p) for n, b, p in FOUR_PV)
    names = [f"bus.{b}.vm_pu" for b in range(1, 34)] + ["grid.ext_p_mw"]
    names += [f"{n}.{q}" for n, _, _ in FOUR_PV for q in ("p_mw", "q_mvar", "p_avail_mw")]
    ctrl.setup(ControllerInfo("ieee33", 300.0, (0.95, 1.05), ders, tuple(names)))
    obs = {n: 1.03 if n.startswith("bus.") else 0.5 for n in names} | {"time.hour_sin": 0.0, "time.hour_cos": -1.0}
    obs["bus.18.vm_pu"] = obs["bus.17.vm_pu"] = math.nan  # bus 18 cut off: pv1 reads NaN
    setpoints = ctrl.act(obs)
    assert sorted(setpoints) == sorted(f"{n}.q_set_mvar" for n, _, _ in FOUR_PV)
    assert all(math.isfinite(v) for v in setpoints.values())


def test_shipped_single_scenario_policy_still_loads_as_format_1():
    ctrl = PolicyController(REPO / "policies" / "ieee33-voltvar.pt")
    assert ctrl.meta["format"] == FORMAT and ctrl.per_der is None
    assert ctrl.layout.obs_names[0] == "bus.18.vm_pu"


@pytest.mark.parametrize("policy", ["voltvar-general.pt", "voltvar-general-td3.pt", "voltvar-general-ppo.pt",
                                    "voltvar-general-dagger.pt"])
def test_shipped_general_policy_runs_on_both_feeders_and_lowers_the_four_pv_overvoltage(tmp_path, cli, policy):
    shipped = REPO / "policies" / policy
    assert load_policy(shipped)[1]["format"] == FORMAT_PER_DER
    runs = {}
    for name, feeder, gens in [("four", "ieee33", FOUR_PV), ("none", "ieee33", FOUR_PV), ("ieee69", "ieee69", IEEE69_PV)]:
        path = _scenario(tmp_path, name, feeder, shipped, gens)
        if name == "none":  # the same day without control
            path.write_text(path.read_text().replace(f"{{kind: drl, policy: {shipped}}}", "{kind: none}"))
        code, output, _ = cli("run", path, "--out", tmp_path / name, "-q")
        assert code == 0, output
        runs[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert runs["none"]["voltage_violation_bus_minutes"] > 0  # noon on the four-PV layout: something to fix
    assert runs["four"]["voltage_violation_bus_minutes"] < runs["none"]["voltage_violation_bus_minutes"]


def test_shipped_distribution_loads_and_draws_valid_scenarios():
    dist = load_distribution(SCENARIOS / "drl" / "voltvar-general.yaml")
    feeders = set()
    for seed in range(12):
        scn = dist.draw(seed, seed + 100).scenario
        feeders.add(scn.grid.feeder)
        assert 1 <= len(scn.generators) and len({g.bus for g in scn.generators}) == len(scn.generators)
    assert {"ieee33", "ieee69"} <= feeders
    assert dist.draw(3, 4).scenario == dist.draw(3, 4).scenario  # same seeds, same scenario


def test_distribution_with_an_unknown_key_names_file_line_and_field(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("name: d\nfeeders: [{feeder: ieee33}]\nders: {count: [1, 3], sizes: [1, 2]}\n")
    with pytest.raises(ScenarioError) as info:
        load_distribution(path)
    text = str(info.value)
    assert str(path) in text and "line 3" in text and "ders.sizes" in text


def test_cli_train_takes_a_distribution(cli, tmp_path):
    dist = tmp_path / "dist.yaml"
    dist.write_text("name: tiny\nclock: {duration: 1h, step: 5min}\ndates: [2025-03-01, 2025-09-30]\n"
                    "feeders: [{feeder: ieee33}, {feeder: ieee69}]\nders: {count: [1, 3]}\ndays_per_layout: 1\n")
    code, output, _ = cli("train", dist, "--algo", "sac", "--steps", "60", "--seed", "2", "--loss-weight", "0.1",
                          "--out", tmp_path / "o", "-q")
    assert code == 0, output
    meta = json.loads((tmp_path / "o" / "policy.json").read_text())
    assert meta["training"]["reward"]["loss_per_kw"] == 0.1  # the card records the reward it was trained on
    code, output, _ = cli("train", dist, "--loss-weight", "-1", "--out", tmp_path / "bad", "-q")
    assert code == 2 and "--loss-weight" in output and "Traceback" not in output
    assert meta["format"] == FORMAT_PER_DER and meta["trained_on"]["kind"] == "distribution"
