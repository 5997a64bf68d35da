"""`cosim evaluate`: intervals against hand computations and scipy, paired tests on real controllers, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from controllers.registry import controller_class, instantiate
from controllers.rollout import rollout
from cosim.assembly import assemble
from cosim.evaluate.report import box_data, comparison_table, report_html, units
from cosim.evaluate.runner import controller_blocks, draw, run_one
from cosim.evaluate.stats import bootstrap_interval, paired, summarize, t_interval
from cosim.scenario.schema import Controller
from tests.conftest import SCENARIOS

NOON = """\
name: noon
seed: 1
clock: {start: "2025-06-21T11:00:00", duration: 1h, step: 5min}
grid: {feeder: ieee33, line_max_i_ka: 0.4}
loads: {profile: residential, noise: 0.03}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 2.0}
  - {name: pv2, kind: pv, bus: 33, p_mw: 1.5}
"""


def test_t_interval_matches_a_hand_computation():
    # 1..10: mean 5.5, s = 3.02765, t(0.975, 9) = 2.262157 (printed tables) -> half-width 2.16585
    low, high = t_interval(np.arange(1, 11, dtype=float))
    assert low == pytest.approx(5.5 - 2.16585, abs=1e-4) and high == pytest.approx(5.5 + 2.16585, abs=1e-4)


def test_summary_matches_numpy_and_scipy_on_known_data():
    x = np.random.default_rng(4).normal(10.0, 2.0, 40)
    s = summarize(x)
    assert s["mean"] == pytest.approx(x.mean()) and s["median"] == pytest.approx(np.median(x))
    assert s["q05"] == pytest.approx(np.quantile(x, 0.05)) and s["q95"] == pytest.approx(np.quantile(x, 0.95))
    sem = x.std(ddof=1) / math.sqrt(len(x))
    assert (s["t_low"], s["t_high"]) == pytest.approx(stats.t.interval(0.95, 39, loc=x.mean(), scale=sem))
    # on normal data the percentile bootstrap of the mean is close to the normal-theory interval
    low, high = bootstrap_interval(x, seed=1)
    assert low < x.mean() < high
    assert high - low == pytest.approx(s["t_high"] - s["t_low"], rel=0.2)
    assert bootstrap_interval(x, seed=1) == (low, high)  # seeded


def test_paired_test_on_a_known_shift_and_on_identical_data():
    a = np.arange(1.0, 9.0)
    shifted = paired(a + 1.0 + 0.01 * a, a)  # 8 differences, all positive: exact two-sided p = 2 / 2^8
    assert shifted["wilcoxon_p"] == pytest.approx(2 / 256) and shifted["mean_diff"] == pytest.approx(1.045)
    same = paired(a, a.copy())
    assert same["wilcoxon_p"] == 1.0 and same["mean_diff"] == 0.0


@pytest.fixture
def noon(tmp_path):
    path = tmp_path / "noon.yaml"
    path.write_text(NOON, encoding="utf-8")
    return path


def test_evaluate_detects_droop_against_none_and_not_droop_against_itself(cli, noon, tmp_path):
    out = tmp_path / "ev"
    code, output, _ = cli("evaluate", noon, "--controller", "droop", "--controller", "droop", "--against", "none",
                          "--seeds", "2", "--days", "3", "--jobs", "1", "--out", out, "-q")
    assert code == 0, output
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["unit"] == "held-out day" and doc["controllers"] == ["droop", "droop#2", "opf", "none"]
    real = {r["metric"]: r for r in doc["comparison"] if r["controller"] == "droop"}
    v = real["voltage_violation_bus_minutes"]
    assert v["n_pairs"] == 6 and v["mean_diff"] < 0 and v["wilcoxon_p"] < 0.05  # droop removes violations
    assert real["reactive_energy_kvarh"]["wilcoxon_p"] < 0.05
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 24 and set(runs["status"]) == {"ok"}
    null = comparison_table(units(runs, ["voltage_violation_bus_minutes", "loss_energy_kwh"], False),
                            ["voltage_violation_bus_minutes", "loss_energy_kwh"], "droop")
    null = null[null["controller"] == "droop#2"]
    assert (null["wilcoxon_p"] == 1.0).all() and (null["mean_diff"] == 0.0).all()
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary.controller == "none") & (summary.metric == "loss_energy_kwh")].iloc[0]
    x = runs[runs.controller == "none"]["loss_energy_kwh"].to_numpy()
    assert row["mean"] == pytest.approx(x.mean())
    assert (row["t_low"], row["t_high"]) == pytest.approx(stats.t.interval(0.95, 5, loc=x.mean(), scale=stats.sem(x)))
    page = (out / "report.html").read_text()
    assert "<table>" in page and page.count("<figure class='box'") == len(doc["metrics"])


@pytest.mark.parametrize("args, expected", [
    (["--controller", "nosuch"], "controller SPEC 'nosuch'"),
    (["--controller", "droop", "--seeds", "0"], "--seeds and --days must be at least 1"),
    (["--controller", "drl:missing.pt"], "does not exist"),
])
def test_evaluate_bad_input_exits_2(cli, noon, tmp_path, args, expected):
    code, output, _ = cli("evaluate", noon, *args, "--out", tmp_path / "ev", "--jobs", "1", "-q")
    assert code == 2 and "Traceback" not in output
    assert expected in " ".join(output.split())


def test_evaluation_reports_the_gap_to_the_opf_oracle(cli, noon, tmp_path):
    out = tmp_path / "ev"
    code, output, _ = cli("evaluate", noon, "--controller", "droop", "--controller", "none", "--seeds", "2",
                          "--days", "2", "--jobs", "1", "--out", out, "-q")
    assert code == 0, output
    assert "OPF oracle: 'opf' (added" in output and "gap droop - opf, loss_energy_kwh" in " ".join(output.split())
    runs = pd.read_csv(out / "runs.csv")
    gap = pd.read_parquet(out / "gap.parquet")
    assert set(gap["controller"]) == {"droop", "none", "opf"}
    assert set(gap["metric"]) == {"loss_energy_kwh", "voltage_violation_bus_minutes", "curtailed_energy_kwh"}
    itself = gap[gap["controller"] == "opf"]
    assert (itself["gap"] == 0).all() and (itself["gap_low"] == 0).all() and (itself["gap_high"] == 0).all()
    # droop's loss gap: the mean of the paired differences, computed here from the per-run rows
    key = ["seed", "day"]
    pairs = runs[runs.controller == "droop"].set_index(key).join(runs[runs.controller == "opf"].set_index(key),
                                                                   rsuffix="_opf")
    d = pairs["loss_energy_kwh"] - pairs["loss_energy_kwh_opf"]
    row = gap[(gap.controller == "droop") & (gap.metric == "loss_energy_kwh")].iloc[0]
    assert row["gap"] == pytest.approx(d.mean()) and row["n_pairs"] == 4
    assert (row["gap_low"], row["gap_high"]) == pytest.approx(stats.t.interval(0.95, 3, d.mean(), stats.sem(d)))
    assert row["gap_rel"] == pytest.approx(d.mean() / pairs["loss_energy_kwh_opf"].mean())
    summary = pd.read_csv(out / "summary.csv")
    srow = summary[(summary.controller == "droop") & (summary.metric == "loss_energy_kwh")].iloc[0]
    assert srow["gap"] == pytest.approx(row["gap"]) and srow["gap_rel"] == pytest.approx(row["gap_rel"])
    assert summary[summary.metric == "vm_max_pu"]["gap"].isna().all()  # no gap where it makes no sense
    assert "Gap to the OPF oracle" in (out / "report.html").read_text()


def test_no_oracle_and_an_oracle_that_is_skipped(cli, noon, tmp_path, monkeypatch):
    code, output, _ = cli("evaluate", noon, "--controller", "droop", "--seeds", "1", "--jobs", "1",
                          "--out", tmp_path / "a", "-q", "--no-oracle")
    assert code == 0, output
    doc = json.loads((tmp_path / "a" / "evaluation.json").read_text())
    assert doc["controllers"] == ["droop"] and doc["gap"] == [] and doc["oracle"] is None
    monkeypatch.setattr("cosim.evaluate.runner.ORACLE_MAX_BUSES", 20)  # as if IEEE 33 were too big for it
    code, output, _ = cli("evaluate", noon, "--controller", "droop", "--seeds", "1", "--jobs", "1",
                          "--out", tmp_path / "b", "-q")
    assert code == 0, output
    text = " ".join(output.split())
    assert "OPF oracle skipped: feeder ieee33 (held-out seed 0) has 33 buses, more than the 20" in text
    doc = json.loads((tmp_path / "b" / "evaluation.json").read_text())
    assert doc["controllers"] == ["droop"] and doc["oracle_note"].startswith("OPF oracle skipped")
    assert "OPF oracle skipped" in (tmp_path / "b" / "report.html").read_text()


def test_report_has_one_box_plot_per_metric_with_numpys_quartiles():
    rng = np.random.default_rng(3)
    metrics = ["loss_energy_kwh", "voltage_violation_bus_minutes"]
    rows = [{"controller": c, "seed": s, "day": 0, "status": "ok", "loss_energy_kwh": rng.gamma(3.0, 10.0),
             "voltage_violation_bus_minutes": rng.exponential(50.0)} for c in ("droop", "none") for s in range(11)]
    rows.append({"controller": "none", "seed": 99, "day": 0, "status": "failed", "loss_energy_kwh": 1e9,
                 "voltage_violation_bus_minutes": 1e9})  # a failed run is not plotted
    runs = pd.DataFrame(rows)
    data = box_data(runs, metrics)
    for m in metrics:
        assert [b["label"] for b in data[m]] == ["droop", "none"]
        for b in data[m]:
            x = runs[(runs.controller == b["label"]) & (runs.status == "ok")][m].to_numpy()
            assert b["n"] == 11
            assert (b["q1"], b["med"], b["q3"]) == pytest.approx(tuple(np.percentile(x, [25, 50, 75])))
            iqr = b["q3"] - b["q1"]
            assert b["whishi"] == pytest.approx(x[x <= b["q3"] + 1.5 * iqr].max())
            assert b["whislo"] == pytest.approx(x[x >= b["q1"] - 1.5 * iqr].min())
    meta = {"source": "s.yaml", "seeds": 11, "days": 1, "unit": "held-out day", "level": 0.95, "metrics": metrics,
            "oracle": None}
    empty = pd.DataFrame()
    page = report_html(meta, empty, empty, empty, runs)
    assert page.count("<figure class='box'") == 2 and page.count("data:image/png;base64,") == 2
    for m in metrics:
        assert f"data-metric='{m}'" in page


def test_a_run_does_not_depend_on_the_runs_before_it_in_the_process():
    # held-out draw 1 of the general distribution (IEEE 69, random outages and trips): droop's row must equal a fresh
    # rollout of that draw (what `cosim run` does) whether or not another controller ran on the draw before it
    path = str(SCENARIOS / "drl" / "voltvar-general.yaml")
    blocks = controller_blocks(["none", "droop"])
    run_one(path, "none", blocks["none"], 1, 0, 1)
    after = run_one(path, "droop", blocks["droop"], 1, 0, 1)
    spec = Controller.model_validate(blocks["droop"])
    fresh = rollout(assemble(draw(path, 1, 0, 1)), instantiate(controller_class(spec, Path.cwd()), spec, Path.cwd()))
    assert after.status == "ok" and after.kpis == fresh.kpis
