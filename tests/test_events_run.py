"""End to end: a run with events writes events.csv, events_impact.csv, labels, detection metrics and plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cosim.recording import Recording
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from events_helpers import scenario_text

EVENTS = """\
detector: {significance: 0.01}
events:
  - {at: 10min, duration: 20min, kind: line_outage, line: 30}
  - {at: 35min, duration: 10min, kind: fdi, target: bus.18.vm_pu, bias: -0.05}
  - {at: 50min, duration: 5min, kind: command_injection, target: pv1.q_mvar, value: -0.2}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    path = folder / "s.yaml"
    path.write_text(scenario_text(EVENTS), encoding="utf-8")
    outcome = run_scenario(load_scenario(path), folder / "out")
    assert outcome.status == "ok", outcome.message
    return outcome


def test_events_csv_lists_every_event(run):
    ev = pd.read_csv(run.out_dir / "events.csv")
    assert ev[["start", "end", "kind", "target"]].values.tolist() == [
        ["2025-06-21T11:10:00", "2025-06-21T11:30:00", "line_outage", "line.30"],
        ["2025-06-21T11:35:00", "2025-06-21T11:45:00", "fdi", "bus.18.vm_pu"],
        ["2025-06-21T11:50:00", "2025-06-21T11:55:00", "command_injection", "pv1.q_mvar"]]
    assert ev["targets"].tolist() == ["line.30", "bus.18.vm_pu", "pv1.q_set_mvar"]
    assert json.loads(ev["params"][1])["bias"] == -0.05


def test_impact_table_measures_during_and_after(run):
    impact = pd.read_csv(run.out_dir / "events_impact.csv")
    assert impact["kind"].tolist() == ["line_outage", "fdi", "command_injection"]
    outage = impact.iloc[0]
    ts = pd.read_parquet(run.out_dir / "timeseries.parquet")
    # line 30 (bus 30 -> 31) cuts off buses 31..33: their load over 20 one-minute steps
    expected = ts["grid.unserved_p_mw"].iloc[10:30].sum() * 1000 / 60
    assert outage["unserved_kwh_during"] == pytest.approx(expected) and expected > 0
    assert outage["unserved_kwh_after"] == 0 and outage["recovery_s"] == 0
    assert outage["unserved_kwh_during_vs_baseline"] == pytest.approx(expected)  # the baseline serves everyone
    assert outage["loss_kwh_during_vs_baseline"] < 0  # less load, less loss
    assert np.isnan(outage["detected"])  # physical events are not scored as attacks
    fdi = impact.iloc[1]
    assert fdi["detected"] == 1 and fdi["time_to_detect_s"] <= 120 and fdi["alarm_share"] >= 0.8
    # no controller reads the false data, so the grid is where the baseline run is (to solver precision)
    assert fdi["loss_kwh_during_vs_baseline"] == pytest.approx(0, abs=1e-6)
    assert fdi["voltage_violation_bus_minutes_during_vs_baseline"] == 0
    injection = impact.iloc[2]
    assert injection["loss_kwh_during_vs_baseline"] != 0  # -0.2 Mvar at pv1 changes the flows
    for column in ("voltage_violation_bus_minutes", "max_loading_pct", "loss_kwh", "curtailed_kwh", "unserved_kwh"):
        for window in ("during", "after", "during_vs_baseline", "after_vs_baseline"):
            assert f"{column}_{window}" in impact
    assert (run.out_dir / "baseline.parquet").exists()


def test_metrics_and_labels(run):
    m = run.metrics
    for key in ("detector_tpr", "detector_fpr", "detector_precision", "detector_f1", "detector_roc_auc",
                "detector_mean_time_to_detect_s", "detector_tpr_fdi", "unserved_energy_kwh"):
        assert key in m and key in json.loads((run.out_dir / "metrics.json").read_text())
    ts = pd.read_parquet(run.out_dir / "timeseries.parquet")
    assert ts["label.kind"].dtype == object and ts["detector.suspect"].dtype == object
    attack = ts["label.attack"].to_numpy() == 1
    alarm = ts["detector.alarm"].to_numpy() == 1
    assert m["detector_tpr"] == pytest.approx(alarm[attack].mean())
    assert m["detector_fpr"] == pytest.approx(alarm[~attack].mean())
    assert m["unserved_energy_kwh"] == pytest.approx(ts["grid.unserved_p_mw"].sum() * 1000 / 60)


def test_report_shades_events_and_overlays_seen_values(run):
    html = (run.out_dir / "report.html").read_text()
    for anchor in ('id="detector"', 'id="seen-vs-true"', "line_outage", "command_injection"):
        assert anchor in html


def test_plain_runs_record_no_event_columns(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(scenario_text(duration="10min"), encoding="utf-8")
    outcome = run_scenario(load_scenario(path), tmp_path / "out")
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert outcome.status == "ok"
    assert not [c for c in ts.columns if c.startswith(("label.", "seen.", "detector.", "cmd."))]
    assert not (tmp_path / "out" / "events_impact.csv").exists()
    assert "bus.18.p_mw" not in ts  # metering only when a measurement model is needed


def test_recording_keeps_text_columns(tmp_path):
    rec = Recording(tmp_path / "r.parquet", np.datetime64("2025-01-01T00:00"), 60, chunk_rows=2)
    for k in range(5):
        rec.append(k, {"a": float(k), "label.kind": "fdi" * (k % 2), "b": -float(k)})
    rec.close()
    ts = pd.read_parquet(tmp_path / "r.parquet")
    assert ts.columns.tolist() == ["time", "a", "label.kind", "b"]
    assert ts["label.kind"].tolist() == ["", "fdi", "", "fdi", ""]
    assert ts["a"].tolist() == [0, 1, 2, 3, 4] and ts["b"].tolist() == [0, -1, -2, -3, -4]
