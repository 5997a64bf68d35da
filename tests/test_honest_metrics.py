"""Metrics when the physics fails: null instead of 0, converged_share, `degraded` runs, `regress` that says why.

The failing physics is real: IEEE 33 at ten times its nominal load, which plain pandapower
cannot solve either (checked here), so no step of the run converges.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from rich.console import Console

from cosim.commands._common import kpi_table
from cosim.metrics import metrics_from_array
from cosim.regress import CaseResult, check_criteria, regress
from cosim.runner import degradation, run_scenario
from cosim.scenario.loader import load_scenario
from cosim.scenario.schema import Bound

NAMES = ("bus.1.vm_pu", "bus.2.vm_pu", "line.1.loading_pct", "grid.loss_kw", "grid.ext_p_mw", "grid.load_p_mw",
         "grid.gen_p_mw", "grid.converged", "grid.unserved_p_mw", "pv1.p_mw", "pv1.q_mvar", "pv1.p_avail_mw")
NAN = math.nan
STEP_COUNTS = {"steps", "nonconverged_steps", "converged_share"}

COLLAPSE = """\
name: collapse
seed: 1
clock: {{start: "2025-06-21T00:00:00", duration: 20min, step: 5min}}
grid: {{feeder: ieee33{grid}}}
loads: {{profile: constant, scale: 10.0}}
criteria: {{voltage_violation_bus_minutes: {{max: 5}}, loss_energy_kwh: {{max: 1500}}}}
"""


def test_no_converged_step_leaves_only_the_step_counts():
    # two steps whose power flow failed: the grid publishes NaN for every network value
    rows = np.array([[NAN] * 7 + [0.0, NAN, NAN, NAN, 0.9]] * 2)
    m = metrics_from_array(rows, NAMES, 600.0, (0.95, 1.05), ["pv1"])
    assert m["steps"] == 2 and m["nonconverged_steps"] == 2 and m["converged_share"] == 0.0
    assert all(math.isnan(v) for k, v in m.items() if k not in STEP_COUNTS)  # not 0.0: unknown


def test_converged_share_and_no_load_shares():
    # step 0 converged with no load at all (a feeder at night with loads switched off), step 1 did not
    rows = np.array([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                     [NAN] * 7 + [0.0, NAN, NAN, NAN, 0.0]])
    m = metrics_from_array(rows, NAMES, 600.0, (0.95, 1.05), ["pv1"])
    assert m["converged_share"] == 0.5
    assert m["loss_energy_kwh"] == 0.0 and m["load_energy_kwh"] == 0.0  # known: zero
    assert math.isnan(m["renewable_share"]) and math.isnan(m["local_supply_share"])  # x / no load


def test_degradation_threshold():
    assert degradation({"steps": 10, "nonconverged_steps": 0}, 0.0) == ""
    assert "1 of 10 steps did not converge" in degradation({"steps": 10, "nonconverged_steps": 1}, 0.0)
    assert degradation({"steps": 10, "nonconverged_steps": 1}, 0.1) == ""
    assert degradation({"steps": 10, "nonconverged_steps": 2}, 0.1) != ""


def test_ieee33_at_ten_times_load_does_not_solve_in_pandapower():
    net = pn.case33bw()
    net.load[["p_mw", "q_mvar"]] *= 10.0
    with pytest.raises(pp.LoadflowNotConverged):
        pp.runpp(net, numba=False)


def test_all_nonconverged_run_is_degraded_with_null_metrics(tmp_path, write_scenario):
    outcome = run_scenario(load_scenario(write_scenario(COLLAPSE.format(grid=""))), tmp_path / "out")
    assert outcome.status == "degraded" and "4 of 4 steps did not converge" in outcome.message
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "degraded" and run["message"] == outcome.message
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["converged_share"] == 0.0 and metrics["nonconverged_steps"] == 4
    for key in ("loss_energy_kwh", "voltage_violation_bus_minutes", "load_energy_kwh", "unserved_energy_kwh"):
        assert metrics[key] is None, key
    console = Console(record=True, width=120)
    console.print(kpi_table(metrics))
    line = next(t for t in console.export_text().splitlines() if "loss_energy_kwh" in t)
    assert "null" in line and "0.0000" not in line


def test_all_nonconverged_run_fails_regress_saying_why(tmp_path, write_scenario, cli):
    path = write_scenario(COLLAPSE.format(grid=""))
    code, output, _ = cli("regress", path, "--controller", "none", "--jobs", "1", "--out", tmp_path / "runs")
    assert code == 1 and "FAIL" in output and "PASS" not in output
    assert "run degraded" in output
    assert "voltage_violation_bus_minutes is null" in output and "no step converged" in output


def test_null_metric_fails_regress_even_when_degradation_is_allowed(tmp_path, write_scenario):
    path = write_scenario(COLLAPSE.format(grid=", max_nonconverged_share: 1.0"))
    (case,) = regress([path], "none", jobs=1, out_root=tmp_path / "runs").cases
    assert case.status == "ok" and not case.passed
    details = {c.name: c.detail for c in case.failures}
    assert details["criteria.loss_energy_kwh"] == ("loss_energy_kwh is null (cannot be computed: "
                                                   "no step converged (0 of 4)), required <= 1500")


def test_degraded_run_fails_a_criterion_it_would_meet():
    case = CaseResult("s", "s.yaml", "out", status="degraded", message="1 of 10 steps did not converge",
                      metrics={"steps": 10, "converged_share": 0.9, "loss_energy_kwh": 100.0})
    assert check_criteria(case, {"loss_energy_kwh": Bound(max=1500)}) == []
    (check,) = case.criteria
    assert not check.passed and "run degraded (1 of 10 steps did not converge)" in check.detail
    ok = CaseResult("s", "s.yaml", "out", status="ok", metrics=dict(case.metrics))
    check_criteria(ok, {"loss_energy_kwh": Bound(max=1500)})
    assert ok.passed
