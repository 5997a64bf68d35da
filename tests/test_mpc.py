"""The mpc controller: no worse than none on a known high-PV case, its LinDistFlow model against pandapower,
bad parameters, and the fallback when the solver fails."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandapower as pp
import pytest

from controllers.baselines._lindistflow import lindistflow
from controllers.registry import controller_class, instantiate
from controllers.rollout import rollout
from cosim.assembly import assemble
from cosim.grid.feeders import load_feeder
from cosim.scenario.loader import load_scenario
from cosim.scenario.schema import Controller as ControllerBlock
from tests.conftest import SCENARIOS


@pytest.fixture(scope="module")
def noon():
    """ieee33-pv-battery from 11:00 to 13:00: over-voltage at the PV buses without control."""
    loaded = load_scenario(SCENARIOS / "ieee33-pv-battery.yaml")
    clock = loaded.scenario.clock.model_copy(update={"start": loaded.scenario.clock.start.replace(hour=11),
                                                     "duration": 7200.0})
    return dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={"clock": clock}))


def _run(loaded, **params):
    block = ControllerBlock(kind="mpc", params=params)
    controller = instantiate(controller_class(block, loaded.base_dir), block, loaded.base_dir)
    return rollout(assemble(loaded), controller)


def test_mpc_never_worse_than_none_on_a_high_pv_noon(noon):
    none = rollout(assemble(noon), None).kpis
    mpc = _run(noon)
    assert none["voltage_violation_bus_minutes"] > 100  # the case has something to fix
    assert mpc.kpis["voltage_violation_bus_minutes"] <= none["voltage_violation_bus_minutes"]
    assert mpc.kpis["loss_energy_kwh"] <= none["loss_energy_kwh"]
    assert mpc.kpis["storage_charged_kwh"] > 0  # it used the batteries to absorb PV
    assert not [e for e in mpc.events if e[1] == "mpc_fallback"]


@pytest.mark.parametrize("bus", [18, 33])
@pytest.mark.parametrize("dp, dq", [(0.1, 0.0), (0.0, 0.1)])
def test_lindistflow_sensitivity_matches_pandapower(bus, dp, dq):
    feeder = load_feeder("ieee33")
    net = copy.deepcopy(feeder.net)
    pp.runpp(net)
    v0 = net.res_bus.vm_pu.to_numpy()
    pp.create_sgen(net, feeder.bus_index(bus), p_mw=dp, q_mvar=dq)
    pp.runpp(net)
    dv = net.res_bus.vm_pu.to_numpy() - v0
    model = lindistflow(feeder)
    j = net.bus.index.get_loc(feeder.bus_index(bus))
    predicted = (model.R[:, j] * dp + model.X[:, j] * dq) / v0
    assert np.abs(dv).max() > 0.003
    assert np.abs(predicted - dv).max() <= 0.06 * np.abs(dv).max()


def test_lindistflow_losses_near_pandapower():
    feeder = load_feeder("ieee33")
    net = copy.deepcopy(feeder.net)
    pp.runpp(net)
    nb = len(net.bus)
    p = np.bincount(net.bus.index.get_indexer(net.load.bus), net.load.p_mw, nb)
    q = np.bincount(net.bus.index.get_indexer(net.load.bus), net.load.q_mvar, nb)
    # without the loss terms and at 1 pu, LinDistFlow underestimates the peak-load losses (202.7 kW) by ~13 %
    assert lindistflow(feeder).losses_mw(p, q) == pytest.approx(net.res_line.pl_mw.sum(), rel=0.15)


@pytest.mark.parametrize("params, words", [
    ("{horizon: 50min, step: 15min}", "horizon 50min is not a multiple of step 15min"),
    ("{forecast: crystal}", "forecast must be persistence, oracle or scenario"),
    ("{solver: NOPE}", "solver 'NOPE' is not installed"),
])
def test_bad_mpc_params_exit_2(params, words, write_scenario, cli):
    text = (SCENARIOS / "ieee33-pv-battery.yaml").read_text().replace("controller: {kind: none}",
                                                                      f"controller: {{kind: mpc, params: {params}}}")
    code, output, _ = cli("validate", write_scenario(text))
    flat = " ".join(output.split())
    assert code == 2 and "field controller.params" in flat and words in flat, output
    assert "Traceback" not in output


@pytest.mark.parametrize("block, words", [
    ("{kind: mpc, horizon: 50min, step: 15min}", "horizon 50min is not a multiple of step 15min"),
    ("{kind: mpc, bogus: 1}", "unknown parameter 'bogus'"),
    ("{kind: mpc, step: 15min, params: {step: 5min}}", "given both at the top of the block and under params"),
])
def test_mpc_keys_at_the_top_of_the_block_are_its_params(block, words, write_scenario, cli):
    text = (SCENARIOS / "ieee33-pv-battery.yaml").read_text().replace("controller: {kind: none}", f"controller: {block}")
    code, output, _ = cli("validate", write_scenario(text))
    flat = " ".join(output.split())
    assert code == 2 and "field controller" in flat and words in flat, output
    assert "Traceback" not in output
    good = text.replace(f"controller: {block}", "controller: {kind: mpc, horizon: 2h, step: 30min}")
    assert cli("validate", write_scenario(good))[0] == 0


def test_mpc_alone_validates(write_scenario, cli):
    text = (SCENARIOS / "ieee33-pv-battery.yaml").read_text().replace("controller: {kind: none}", "controller: {kind: mpc}")
    code, output, _ = cli("validate", write_scenario(text))
    assert code == 0, output


def test_solver_failure_falls_back_to_nothing_with_an_event(noon):
    short = dataclasses.replace(noon, scenario=noon.scenario.model_copy(
        update={"clock": noon.scenario.clock.model_copy(update={"duration": 1800.0})}))
    r = _run(short, max_iter=1)  # the interior-point solver cannot converge in one iteration
    fallbacks = [e for e in r.events if e[1] == "mpc_fallback"]
    assert len(fallbacks) == short.scenario.clock.n_steps
    p = r.rows[:, r.names.index("bat1.p_mw")]
    q = r.rows[:, r.names.index("pv1.q_mvar")]
    assert np.all(p == 0.0) and np.all(q == 0.0)  # doing nothing: batteries idle, no reactive power
