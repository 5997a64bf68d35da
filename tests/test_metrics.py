"""The KPI module (cosim.metrics): hand-computed days, properties, DataFrame vs array, metadata table.

Expected values come from hand computation on tiny arrays (3 steps, 2 buses, one PV) or from
physical properties (energy balance), never from the code under test.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.metrics import CORE_METRICS, METRICS, compute_metrics, metric_info, metrics_from_array

REPO = Path(__file__).resolve().parents[1]
NAMES = ("bus.1.vm_pu", "bus.2.vm_pu", "line.1.loading_pct", "grid.loss_kw", "grid.ext_p_mw", "grid.load_p_mw",
         "grid.gen_p_mw", "grid.converged", "grid.unserved_p_mw", "pv1.p_mw", "pv1.q_mvar", "pv1.p_avail_mw")
NAN = np.nan
# Three 10-minute steps (h = 1/6 hour). Step 0: night, 1 MW of load, import = load + losses.
# Step 1: PV injects 1.2 MW of 1.5 MW available, absorbs 0.2 Mvar, the feeder exports 0.67 MW.
# Step 2: the power flow did not converge (network values NaN).
HAND = np.array([
    # vm1   vm2   line  loss  ext    load  gen  conv unserved pv.p  pv.q  pv.avail
    [1.00, 0.94, 50.0, 20.0, 1.02, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    [1.02, 1.06, 80.0, 30.0, -0.67, 0.5, 1.2, 1.0, 0.05, 1.2, -0.2, 1.5],
    [NAN, NAN, NAN, NAN, NAN, 0.8, NAN, 0.0, 0.0, NAN, NAN, 0.9],
])


def hand_metrics() -> dict[str, float]:
    return metrics_from_array(HAND, NAMES, 600.0, (0.95, 1.05), ["pv1"])


def test_hand_computed_three_step_day():
    m = hand_metrics()
    h = 1 / 6
    imported, exported = 1020 * h, 670 * h  # kWh
    load, generation, curtailed = 1500 * h, 1200 * h, 300 * h  # load on converged steps only
    expected = {
        "steps": 3, "nonconverged_steps": 1, "converged_share": 2 / 3,
        "loss_energy_kwh": 50 * h, "loss_kw_mean": 25.0, "loss_kw_max": 30.0,
        "vm_min_pu": 0.94, "vm_max_pu": 1.06,
        "voltage_violation_bus_minutes": 20.0,  # bus 2 low at step 0, high at step 1: 2 x 10 min
        "line_loading_max_pct": 80.0,
        "load_energy_kwh": 250.0, "renewable_energy_kwh": 200.0, "curtailed_energy_kwh": 50.0,
        "reactive_energy_kvarh": 200 * h,  # |-0.2 Mvar| for 10 min; the NaN of step 2 counts as 0
        "unserved_energy_kwh": 50 * h,
        "import_energy_kwh": imported, "export_energy_kwh": exported,  # 170 and 111.67 kWh
        "efficiency": (load + exported) / (imported + generation),  # 361.67 / 370
        "efficiency_incl_curtailment": (load + exported) / (imported + generation + curtailed),  # 361.67 / 420
        "stability_index": (0.0 + 0.06 + 0.02 + 0.06) / 4,
        "renewable_share": 200.0 / 250.0,
        "local_supply_share": (0 + 500 * h) / 250.0,  # min(gen, load): 0 at night, 0.5 MW at noon
    }
    assert set(m) == set(expected)
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert isinstance(m["steps"], int) and isinstance(m["nonconverged_steps"], int)
    # energy balance of the converged steps: import + generation = load + export + losses
    assert imported + generation == pytest.approx(load + exported + 50 * h)
    assert m["efficiency"] == pytest.approx(1 - m["loss_energy_kwh"] / (imported + generation))


def test_column_order_and_extra_signals_do_not_matter():
    order = np.random.default_rng(0).permutation(len(NAMES))
    extra = np.full((3, 2), 7.0)
    values = np.column_stack([HAND[:, order], extra])
    names = [NAMES[i] for i in order] + ["trafo.0.loading_pct", "pv1.p_limit_mw"]
    assert metrics_from_array(values, names, 600.0, (0.95, 1.05), ["pv1"]) == hand_metrics()


def test_missing_signal_is_named_and_missing_q_is_nan():
    no_loss = [i for i, n in enumerate(NAMES) if n != "grid.loss_kw"]
    with pytest.raises(KeyError, match="grid.loss_kw"):
        metrics_from_array(HAND[:, no_loss], [NAMES[i] for i in no_loss], 600.0, (0.95, 1.05), ["pv1"])
    with pytest.raises(KeyError, match="pv2.p_mw"):
        metrics_from_array(HAND, NAMES, 600.0, (0.95, 1.05), ["pv1", "pv2"])
    keep = [i for i, n in enumerate(NAMES) if n != "pv1.q_mvar"]
    m = metrics_from_array(HAND[:, keep], [NAMES[i] for i in keep], 600.0, (0.95, 1.05), ["pv1"])
    assert np.isnan(m["reactive_energy_kvarh"]) and m["curtailed_energy_kwh"] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="12 signals"):
        metrics_from_array(HAND[:, :5], NAMES, 600.0, (0.95, 1.05), ["pv1"])


def test_no_generators_and_all_converged():
    keep = [i for i, n in enumerate(NAMES) if not n.startswith("pv1.")]
    m = metrics_from_array(HAND[:2, keep], [NAMES[i] for i in keep], 600.0, (0.95, 1.05), [])
    assert m["nonconverged_steps"] == 0 and m["renewable_energy_kwh"] == 0.0
    assert m["reactive_energy_kvarh"] == 0.0 and m["curtailed_energy_kwh"] == 0.0
    assert m["efficiency_incl_curtailment"] == m["efficiency"]


def _frame(values: np.ndarray, names: list[str]) -> pd.DataFrame:
    """A results-folder-like DataFrame: time column first, labels and seen values mixed in."""
    n = len(values)
    df = pd.DataFrame(values, columns=names)
    df.insert(0, "time", pd.date_range("2025-06-21", periods=n, freq="1min"))
    df["label.kind"] = ["fdi" if i % 7 == 0 else "" for i in range(n)]
    df["seen.bus.1.vm_pu"] = df["bus.1.vm_pu"] + 0.5  # must not count as a bus voltage
    df["trafo.0.loading_pct"] = 999.0  # transformers are not in line_loading_max_pct
    return df


def _random_day(rng: np.random.Generator, n: int = 1440, buses: int = 33, lines: int = 32,
                gens: tuple[str, ...] = ("pv1", "pv2", "wt1"), native_mw: float = 0.0,
                nonconverged: int = 5) -> tuple[np.ndarray, list[str]]:
    """A balanced random day in the grid model's signal layout (import + generation = load + export + losses)."""
    avail = rng.uniform(0, 1.5, (n, len(gens)))
    p = avail * rng.uniform(0.6, 1.0, (n, len(gens)))
    q = rng.normal(0, 0.2, (n, len(gens)))
    load = rng.uniform(0.5, 4.0, n)
    loss_kw = rng.uniform(10, 300, n)
    gen = p.sum(axis=1) + native_mw
    ext = load + loss_kw / 1000 - gen
    cols = {f"bus.{b + 1}.vm_pu": rng.normal(1.0, 0.03, n) for b in range(buses)}
    cols |= {f"line.{k + 1}.loading_pct": rng.uniform(0, 120, n) for k in range(lines)}
    cols |= {"grid.loss_kw": loss_kw, "grid.ext_p_mw": ext, "grid.ext_q_mvar": rng.normal(0, 1, n),
             "grid.load_p_mw": load, "grid.load_q_mvar": load * 0.3, "grid.gen_p_mw": gen,
             "grid.converged": np.ones(n), "grid.unserved_p_mw": np.zeros(n)}
    for j, g in enumerate(gens):
        cols |= {f"{g}.p_mw": p[:, j], f"{g}.q_mvar": q[:, j], f"{g}.p_avail_mw": avail[:, j]}
    names = list(cols)
    values = np.column_stack([cols[c] for c in names])
    bad = rng.choice(n, nonconverged, replace=False)
    net = [i for i, c in enumerate(names) if not c.endswith(("p_avail_mw", "converged", "unserved_p_mw", "load_p_mw"))]
    values[np.ix_(bad, net)] = np.nan
    values[bad, names.index("grid.converged")] = 0.0
    return values, names


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dataframe_and_array_give_the_same_metrics(seed):
    values, names = _random_day(np.random.default_rng(seed), nonconverged=seed * 4)
    gens = ["pv1", "pv2", "wt1"]
    from_array = metrics_from_array(values, names, 60.0, (0.95, 1.05), gens)
    from_frame = compute_metrics(_frame(values, names), 60.0, (0.95, 1.05), gens)
    assert from_frame.keys() == from_array.keys()
    for key in from_array:
        assert from_frame[key] == pytest.approx(from_array[key], rel=1e-12, nan_ok=True), key
    assert from_frame["nonconverged_steps"] == seed * 4
    assert from_frame["vm_max_pu"] < 1.4  # the seen.* column was not read


@pytest.mark.parametrize("seed", range(5))
def test_curtailment_never_increases_efficiency_incl_curtailment(seed):
    rng = np.random.default_rng(seed)
    values, names = _random_day(rng, n=300, nonconverged=0)
    col = {n: i for i, n in enumerate(names)}
    gens = ["pv1", "pv2", "wt1"]
    before = metrics_from_array(values, names, 60.0, (0.95, 1.05), gens)
    # Curtail part of each generator's output; losses may fall by at most the curtailed power.
    after = values.copy()
    cut_kw = np.zeros(len(values))
    for g in gens:
        x = after[:, col[f"{g}.p_mw"]] * rng.uniform(0, 0.8, len(values))
        after[:, col[f"{g}.p_mw"]] -= x
        cut_kw += x * 1000
    saving = np.minimum(cut_kw * rng.uniform(0, 1, len(values)), after[:, col["grid.loss_kw"]])
    after[:, col["grid.loss_kw"]] -= saving
    after[:, col["grid.gen_p_mw"]] = after[:, [col[f"{g}.p_mw"] for g in gens]].sum(axis=1)
    after[:, col["grid.ext_p_mw"]] = (after[:, col["grid.load_p_mw"]] + after[:, col["grid.loss_kw"]] / 1000
                                      - after[:, col["grid.gen_p_mw"]])
    m = metrics_from_array(after, names, 60.0, (0.95, 1.05), gens)
    assert m["curtailed_energy_kwh"] > before["curtailed_energy_kwh"]
    assert m["efficiency_incl_curtailment"] <= before["efficiency_incl_curtailment"] + 1e-12
    assert m["local_supply_share"] <= before["local_supply_share"] + 1e-12


def test_curtailment_with_export_raises_efficiency_but_not_efficiency_incl_curtailment():
    # One hour, one step: 1 MW load, 3 MW PV, 100 kW losses, export 1.9 MW. Curtailing 1 MW
    # (losses fall to 50 kW) exports 0.95 MW.
    names = ["bus.1.vm_pu", "grid.loss_kw", "grid.ext_p_mw", "grid.load_p_mw", "grid.gen_p_mw", "pv1.p_mw",
             "pv1.q_mvar", "pv1.p_avail_mw"]
    full = np.array([[1.0, 100.0, -1.9, 1.0, 3.0, 3.0, 0.0, 3.0]])
    cut = np.array([[1.0, 50.0, -0.95, 1.0, 2.0, 2.0, 0.0, 3.0]])
    a = metrics_from_array(full, names, 3600.0, (0.95, 1.05), ["pv1"])
    b = metrics_from_array(cut, names, 3600.0, (0.95, 1.05), ["pv1"])
    assert a["efficiency"] == pytest.approx(2900 / 3000) and b["efficiency"] == pytest.approx(1950 / 2000)
    assert b["efficiency"] > a["efficiency"]  # efficiency rewards the curtailment ...
    assert b["efficiency_incl_curtailment"] == pytest.approx(1950 / 3000)  # ... this one does not
    assert b["efficiency_incl_curtailment"] < a["efficiency_incl_curtailment"]
    assert a["local_supply_share"] == b["local_supply_share"] == 1.0
    assert a["renewable_share"] == pytest.approx(3.0)


@pytest.mark.parametrize("seed", range(5))
def test_local_supply_share_bounds(seed):
    rng = np.random.default_rng(seed)
    gens = ["pv1", "pv2", "wt1"]
    values, names = _random_day(rng, n=500, nonconverged=0)
    m = metrics_from_array(values, names, 60.0, (0.95, 1.05), gens)
    assert 0.0 <= m["local_supply_share"] <= min(1.0, m["renewable_share"])  # no feeder-owned generators
    # with feeder-owned generators grid.gen_p_mw exceeds the scenario's: the bound is total generation
    values, names = _random_day(rng, n=500, nonconverged=0, native_mw=0.7)
    m = metrics_from_array(values, names, 60.0, (0.95, 1.05), gens)
    gen_kwh = values[:, names.index("grid.gen_p_mw")].sum() * 1000 / 60
    assert m["local_supply_share"] <= min(1.0, gen_kwh / m["load_energy_kwh"])
    # generation below load at every step: everything generated is consumed locally
    small = values.copy()
    small[:, names.index("grid.gen_p_mw")] = 0.3 * small[:, names.index("grid.load_p_mw")]
    m = metrics_from_array(small, names, 60.0, (0.95, 1.05), gens)
    assert m["local_supply_share"] == pytest.approx(0.3)


# ------------------------------------------------------------------------------------------ metadata

OLD_WORSE = {"loss_energy_kwh": 1, "loss_kw_max": 1, "voltage_violation_bus_minutes": 1, "vm_max_pu": 1,
             "vm_min_pu": -1, "line_loading_max_pct": 1, "curtailed_energy_kwh": 1, "nonconverged_steps": 1,
             "stability_index": 1, "efficiency": -1}
OLD_TOLERANCES = {"default": {"rel": 0.01, "abs": 1e-3}, "voltage_violation_bus_minutes": {"rel": 0.02, "abs": 5.0},
                  "vm_max_pu": {"rel": 0.0, "abs": 0.002}, "vm_min_pu": {"rel": 0.0, "abs": 0.002}}


def test_metadata_table_is_complete_and_well_formed():
    assert set(CORE_METRICS) == set(hand_metrics())
    for key, info in METRICS.items():
        assert info.key == key and info.unit and info.description and "\n" not in info.description, key
        assert info.worse in (-1, 0, 1) and info.group in ("core", "storage", "reliability", "control", "forecast", "detection", "hil", "realtime"), key
        assert not info.baseline or info.worse != 0, key
    assert metric_info("detector_tpr_fdi_stealthy").key == "detector_tpr_<kind>"
    assert metric_info("detector_tpr").key == "detector_tpr" and metric_info("no_such_metric") is None
    assert metric_info("vm_min_pu").worse == -1 and metric_info("detector_fpr").worse == 1


def test_regress_directions_and_tolerances_come_from_the_table():
    from cosim.regress import DEFAULT_TOLERANCES, WORSE

    assert WORSE == OLD_WORSE  # the same metrics as before the table, same directions
    assert DEFAULT_TOLERANCES == OLD_TOLERANCES
    assert WORSE == {k: m.worse for k, m in METRICS.items() if m.baseline}


def _keys_have_entries(metrics: dict) -> None:
    missing = sorted(k for k in metrics if metric_info(k) is None)
    assert not missing, f"metrics.json keys without an entry in cosim.metrics: {missing}"


def test_every_key_of_a_run_with_attacks_has_an_entry(tmp_path):
    from cosim.runner import run_scenario
    from cosim.scenario.loader import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent("""\
        name: keys
        seed: 5
        clock: {start: "2025-06-21T11:00:00", duration: 40min, step: 1min}
        grid: {feeder: ieee33, line_max_i_ka: 0.4}
        generators:
          - {name: pv1, kind: pv, bus: 18, p_mw: 1.0, cloudiness: 0.0}
        detector: {significance: 0.01}
        events:
          - {at: 5min, duration: 10min, kind: fdi, target: bus.18.vm_pu, bias: -0.05}
          - {at: 20min, duration: 10min, kind: replay, target: bus.18.vm_pu, window: 5min}
          - {at: 30min, duration: 5min, kind: line_outage, line: 30}
        """), encoding="utf-8")
    outcome = run_scenario(load_scenario(path), tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"detector_tpr", "detector_tpr_fdi", "detector_mean_time_to_detect_s", *CORE_METRICS} <= set(metrics)
    _keys_have_entries(metrics)
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert METRICS["local_supply_share"].description in report  # the KPI table shows the descriptions


def test_every_key_of_a_realtime_run_with_a_device_has_an_entry(tmp_path):
    from cosim.runner import run_scenario
    from cosim.scenario.loader import load_scenario
    from cosim.assembly import RunOptions
    from hil_support import inverter_scenario

    path = tmp_path / "hil.yaml"
    path.write_text(inverter_scenario("keys-hil", "8s", device="stub_args: {tick: 0.01}\n"), encoding="utf-8")
    outcome = run_scenario(load_scenario(path), tmp_path / "out", options=RunOptions(realtime=0.05))
    assert outcome.status == "ok", outcome.message
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"guard_blocked_writes", "bridge_rtt_p50_ms", "rt_lateness_p99_ms", "rt_deadline_misses"} <= set(metrics)
    _keys_have_entries(metrics)


def _readme_metric_names() -> set[str]:
    """Backticked names in the first column of README.md's metrics table (under "Metrics (")."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("Metrics ("):]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return {name for row in rows for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])}


def test_readme_metrics_table_lists_every_core_metric():
    missing = sorted(set(CORE_METRICS) - _readme_metric_names())
    assert not missing, f"README.md's metrics table does not list {missing}"


def test_docs_metrics_reference_lists_every_entry_with_its_unit():
    text = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    for key, info in METRICS.items():
        assert f"| `{key}` | {info.unit} |" in text, key
