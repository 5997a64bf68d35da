"""Volt-var droop follows IEEE 1547-2018's open-loop response time at any step, as a first-order lag."""

from __future__ import annotations

import math

import pytest

from controllers.base import ControllerInfo, DERInfo
from controllers.baselines.droop import VoltVar
from controllers.registry import BlockError, instantiate
from cosim.scenario.schema import Controller as ControllerBlock
from tests.conftest import REPO

PV = DERInfo("pv1", "pv", 18, 2.0, 2.5)
TARGET = -0.44 * PV.s_mva  # the Category B curve at V4 = 1.08 pu and above


def _response(step_s: float, n: int, **params) -> list[float]:
    ctrl = VoltVar(**params)
    ctrl.setup(ControllerInfo("ieee33", step_s, (0.95, 1.05), (PV,), ("bus.18.vm_pu",)))
    ctrl.act({"bus.18.vm_pu": 1.0})  # settled at zero inside the dead band
    return [ctrl.act({"bus.18.vm_pu": 1.10})["pv1.q_set_mvar"] for _ in range(n)]


@pytest.mark.parametrize("step_s, response_s, gain", [(0.1, 5.0, None), (1.0, 5.0, None), (10.0, 90.0, None),
                                                      (0.5, 1.0, 1.0), (60.0, 90.0, 1.0)])
def test_step_response_is_the_closed_form_first_order_lag(step_s, response_s, gain):
    """q(t) = Q (1 - exp(-t / tau)) with tau = T / ln 10, sampled at the end of each step."""
    tau = response_s / math.log(10.0)
    n = round(3 * response_s / step_s)
    qs = _response(step_s, n, response_time=f"{response_s:g}s", gain=gain)
    for k, q in enumerate(qs, start=1):
        assert q == pytest.approx(TARGET * (1.0 - math.exp(-k * step_s / tau)), rel=1e-9, abs=1e-12)


def test_ninety_percent_within_the_response_time():
    qs = _response(0.1, 60)  # default 5 s at 100 ms steps: 50 steps to 90 %
    assert abs(qs[48]) < 0.9 * abs(TARGET) <= abs(qs[49]) + 1e-12
    assert qs[49] == pytest.approx(0.9 * TARGET)


def test_one_minute_steps_settle_in_one_step_without_the_cap():
    qs = _response(60.0, 2, gain=1.0)
    assert qs[0] == pytest.approx(TARGET, rel=1e-9)


@pytest.mark.parametrize("step_s", [2.0, 60.0, 300.0])
def test_steps_longer_than_the_lag_allows_move_at_most_gain_of_the_way(step_s):
    qs = _response(step_s, 3)  # 1 - 10**(-step / 5 s) > 0.5 from 1.51 s on: the default cap of one half
    assert qs == pytest.approx([TARGET / 2, TARGET * 3 / 4, TARGET * 7 / 8])


@pytest.mark.parametrize("params, message", [
    ({"response_time": "0.5s"}, r"response_time must be within 1s\.\.90s \(IEEE 1547-2018\), got 500ms"),
    ({"response_time": "2min"}, r"within 1s\.\.90s .*got 2min"),
    ({"response_time": "fast"}, r"expected a duration"),
    ({"response_time": "5s", "gain": 1.5}, r"gain must be in \(0, 1\], got 1\.5"),
])
def test_bad_response_times_are_one_clear_message(params, message):
    block = ControllerBlock.model_validate({"kind": "droop", "params": params})
    with pytest.raises(BlockError, match=message) as err:
        instantiate(VoltVar, block, REPO)
    assert err.value.field == "controller.params"
