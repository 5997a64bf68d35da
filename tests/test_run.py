"""Scenario runs end to end: results files, metrics against reference figures, determinism, faults."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cosim.grid.model import GridModel
from cosim.recording import Recording
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from tests.conftest import BASE, SCENARIOS

METRIC_KEYS = {"loss_energy_kwh", "loss_kw_mean", "loss_kw_max", "vm_min_pu", "vm_max_pu",
               "voltage_violation_bus_minutes", "line_loading_max_pct", "load_energy_kwh", "renewable_energy_kwh",
               "curtailed_energy_kwh", "efficiency", "stability_index", "renewable_share", "nonconverged_steps"}


@pytest.mark.slow  # a whole day or a real process; CI runs it in the slow step
def test_demo_scenario_through_the_cli(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "cosim", "run", str(SCENARIOS / "ieee33-pv-wind.yaml"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "loss_energy_kwh" in proc.stdout  # the KPI table
    assert {p.name for p in out.iterdir()} >= {"run.json", "timeseries.parquet", "events.csv", "metrics.json", "report.html"}
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "ok" and run["seed"] == 7 and run["steps_completed"] == 1440
    assert run["versions"]["mosaik"].startswith("3.") and run["engine"] == "lightsim2grid"
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert len(ts) == 1440 and ts["time"].iloc[1] - ts["time"].iloc[0] == pd.Timedelta(minutes=1)
    for col in ("bus.18.vm_pu", "line.7.loading_pct", "line.7.i_ka", "grid.loss_kw", "pv1.p_mw", "wt1.p_mw", "grid.ext_p_mw"):
        assert col in ts
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["vm_max_pu"] > 1.05 and metrics["voltage_violation_bus_minutes"] > 0  # noon over-voltage
    assert ts["pv1.p_mw"].iloc[0] == 0.0 and ts["pv1.p_mw"].max() > 1.0  # dark at midnight, sunny at noon
    html = (out / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "data:image/png;base64," in html


def test_constant_load_metrics_match_reference(tmp_path):
    loaded = load_scenario(SCENARIOS / "ieee33-constant.yaml")
    outcome = run_scenario(loaded, tmp_path / "c")
    m = outcome.metrics
    net = pn.case33bw()
    pp.runpp(net)  # independent reference: plain pandapower
    loss_kw = net.res_line.pl_mw.sum() * 1000
    load_kw = net.load.p_mw.sum() * 1000
    assert m["loss_kw_mean"] == pytest.approx(202.68, abs=0.01) and m["loss_kw_max"] == pytest.approx(loss_kw, abs=1e-3)
    assert m["loss_energy_kwh"] == pytest.approx(loss_kw * 1.0, rel=1e-6)  # one hour
    assert m["load_energy_kwh"] == pytest.approx(load_kw, rel=1e-9)
    assert m["efficiency"] == pytest.approx(load_kw / (load_kw + loss_kw), rel=1e-6)
    assert m["vm_min_pu"] == pytest.approx(0.9131, abs=5e-5)
    low = (net.res_bus.vm_pu < 0.95).sum()
    assert m["voltage_violation_bus_minutes"] == pytest.approx(low * 60)
    assert m["stability_index"] == pytest.approx((1 - net.res_bus.vm_pu).abs().mean(), abs=1e-7)
    assert m["renewable_share"] == 0 and m["nonconverged_steps"] == 0


def _run_values(path, out):
    outcome = run_scenario(load_scenario(path), out)
    assert outcome.status == "ok"
    return pq.read_table(out / "timeseries.parquet")


def test_same_seed_bit_identical_other_seed_differs(tmp_path, write_scenario):
    path = write_scenario(BASE)
    a, b = _run_values(path, tmp_path / "a"), _run_values(path, tmp_path / "b")
    assert a.equals(b)
    c = _run_values(write_scenario(BASE.replace("seed: 7", "seed: 8"), "s8.yaml"), tmp_path / "c")
    assert not np.array_equal(a["wt1.p_avail_mw"].to_numpy(), c["wt1.p_avail_mw"].to_numpy())
    assert not np.array_equal(a["grid.load_p_mw"].to_numpy(), c["grid.load_p_mw"].to_numpy())


def test_nonconverged_steps_are_recorded_and_run_goes_on(tmp_path, write_scenario):
    # residential shape (0.35..1.0) x 5: the feeder collapses above ~3.7 x nominal, so the evening peak
    # cannot be solved while the night can
    path = write_scenario(BASE.replace("duration: 2h", "duration: 24h").replace("noise: 0.03", "noise: 0.0, scale: 5.0"))
    outcome = run_scenario(load_scenario(path), tmp_path / "nc")
    assert outcome.status == "degraded" and "did not converge" in outcome.message
    ts = pd.read_parquet(tmp_path / "nc" / "timeseries.parquet")
    bad = ts["grid.converged"] == 0
    assert 0 < bad.sum() < len(ts) and ts.loc[bad, "bus.18.vm_pu"].isna().all()
    assert outcome.metrics["nonconverged_steps"] == bad.sum()
    events = pd.read_csv(tmp_path / "nc" / "events.csv")
    assert list(events.columns) == ["start", "end", "kind", "target", "detail"]
    assert len(events) == bad.sum() and set(events.kind) == {"nonconverged"}
    assert np.isfinite(outcome.metrics["loss_energy_kwh"])


def test_failure_part_way_keeps_recorded_rows(tmp_path, write_scenario, monkeypatch):
    original = GridModel.step
    calls = {"n": 0}

    def failing_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 10:
            raise RuntimeError("power-flow host lost")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GridModel, "step", failing_step)
    outcome = run_scenario(load_scenario(write_scenario(BASE)), tmp_path / "f")
    assert outcome.status == "failed" and "power-flow host lost" in outcome.message
    run = json.loads((tmp_path / "f" / "run.json").read_text())
    assert run["status"] == "failed" and run["steps_completed"] == 10 and run["steps_planned"] == 24
    assert len(pd.read_parquet(tmp_path / "f" / "timeseries.parquet")) == 10


def test_failed_run_exits_1_from_cli(tmp_path, write_scenario, monkeypatch, cli):
    monkeypatch.setattr(GridModel, "step", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    code, output, _ = cli("run", write_scenario(BASE), "--out", tmp_path / "x", "-q")
    assert code == 1 and "run failed" in output and "boom" in output


def test_recording_chunks_into_files(tmp_path):
    rec = Recording(tmp_path / "r.parquet", np.datetime64("2025-01-01T00:00"), 60.0, chunk_rows=4)
    for k in range(10):
        rec.append(k, {"a": float(k), "b": 2.0 * k})
    rec.append(10, {"b": 1.0})  # a missing value is NaN, not a shifted column
    rec.close()
    assert len(list((tmp_path / "r.parquet").glob("part-*.parquet"))) == 3  # one self-contained file per chunk
    df = pq.read_table(tmp_path / "r.parquet").to_pandas()
    assert df["a"].tolist()[:10] == list(map(float, range(10))) and np.isnan(df["a"].iloc[10])
    assert df["time"].iloc[3] == pd.Timestamp("2025-01-01T00:03")
