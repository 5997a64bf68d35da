"""Tap changers and capacitor steps as setpoints, where the feeder has them (pandapower example_simple)."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest

from cosim.grid.feeders import load_feeder
from cosim.grid.model import GridModel
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario


@pytest.fixture
def simple_feeder(tmp_path):
    """example_simple: an HV/MV trafo with an on-load tap changer (-9..9) and one shunt capacitor."""
    pp.to_json(pn.example_simple(), str(tmp_path / "simple.json"))
    return tmp_path / "simple.json"


def _reference(net: pp.pandapowerNet, **positions) -> pp.pandapowerNet:
    """Plain pandapower on a copy of the net with the given tap / shunt positions: the independent reference."""
    net = copy.deepcopy(net)
    if "tap" in positions:
        net.trafo.at[0, "tap_pos"] = positions["tap"]
    if "step" in positions:
        net.shunt.at[0, "step"] = positions["step"]
    pp.runpp(net)
    return net


@pytest.mark.parametrize("engine", ["lightsim2grid", "pandapower"])
def test_tap_and_capacitor_setpoints_match_pandapower(simple_feeder, engine):
    feeder = load_feeder(str(simple_feeder))
    pristine = copy.deepcopy(feeder.net)
    model = GridModel(feeder, [], engine=engine)
    assert {n: (d.low, d.high) for n, d in model.discrete.items()} == {"trafo.0.tap": (-9, 9), "cap.0.step": (0, 1)}
    ones = np.ones(len(model.load_p_nom))
    before = model.step(ones, np.zeros(0))

    assert model.set_discrete("trafo.0.tap", 4.6) == 5  # rounded to a tap position
    tapped = model.step(ones, np.zeros(0))
    ref = _reference(pristine, tap=5)
    np.testing.assert_allclose(tapped.pf.vm_pu, ref.res_bus.vm_pu.to_numpy(), atol=1e-6)
    lv = ref.trafo.lv_bus.iloc[0]
    # an HV-side tap up lowers the MV side (partly held up by the net's voltage-controlled generator)
    assert tapped.pf.vm_pu[lv] < before.pf.vm_pu[lv] - 0.005

    assert model.set_discrete("cap.0.step", 0) == 0  # capacitor off: the grid imports its reactive power
    off = model.step(ones, np.zeros(0))
    ref = _reference(pristine, tap=5, step=0)
    assert off.pf.ext_q_mvar == pytest.approx(ref.res_ext_grid.q_mvar.sum(), abs=1e-6)
    assert off.pf.ext_q_mvar - tapped.pf.ext_q_mvar > 0.8  # the bank supplies ~0.96 Mvar

    assert model.set_discrete("trafo.0.tap", 99) == 9  # clipped to the changer's range
    signals = model.signals(model.step(ones, np.zeros(0)))
    assert signals["trafo.0.tap"] == 9 and signals["cap.0.step"] == 0


def test_controller_moves_the_tap_at_the_next_step(simple_feeder, write_scenario):
    (simple_feeder.parent / "tap_ctrl.py").write_text(
        "from controllers.base import Controller\n\n"
        "class Raise(Controller):\n"
        "    def act(self, observation):\n"
        "        assert 'trafo.0.tap' in self.info.action_names\n"
        "        return {'trafo.0.tap': 3}\n", encoding="utf-8")
    path = write_scenario("""\
        name: tap
        clock: {duration: 10min, step: 1min}
        grid: {feeder: simple.json}
        controller: {kind: python, path: tap_ctrl.py:Raise}
        """)
    out = run_scenario(load_scenario(path), path.parent / "out")
    assert out.status == "ok"
    ts = pd.read_parquet(path.parent / "out" / "timeseries.parquet")
    assert ts["trafo.0.tap"].tolist() == [0.0] + [3.0] * 9  # time-shifted: acts from step 1
