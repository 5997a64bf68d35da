"""Tests of the self-contained HTML run report (cosim.report)."""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.report import data, plots, write_report
from cosim.report import html as page

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI_RE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
METRICS = {
    "loss_energy_kwh": 1234.5678,
    "vm_min_pu": 0.9312,
    "vm_max_pu": 1.0481,
    "voltage_violation_bus_minutes": 450,
    "curtailed_energy_mwh": 0.0,
    "nan_metric": float("nan"),
}


def _meta(name: str = "ieee33-pv-day", **extra) -> dict:
    """Scenario metadata as the runner passes it."""
    return {"name": name, "seed": 42, "feeder": "ieee33", "voltage_limits": (0.95, 1.05),
            "status": "ok", "generators": ["pv1", "wind1"], **extra}


def _timeseries(n_buses: int = 33, n_steps: int = 96, nonconverged_step: int | None = 50,
                seen: bool = True) -> pd.DataFrame:
    """One day at 15-min steps: sine-shaped voltages, two generators, one non-converged step."""
    time = pd.date_range("2024-06-01", periods=n_steps, freq="15min")
    hours = np.arange(n_steps) * 0.25
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    depth = np.linspace(0, 1, n_buses)[None, :]
    vm = 1.0 - 0.06 * depth * (0.6 + 0.4 * np.cos(hours / 24 * 2 * np.pi))[:, None] + 0.07 * depth * sun[:, None]
    cols: dict[str, np.ndarray] = {f"bus.{b + 1}.vm_pu": vm[:, b] for b in range(n_buses)}
    load = 3.0 + 0.8 * np.sin(hours / 24 * 2 * np.pi - 1.5)
    pv_avail = 2.5 * sun
    pv = np.minimum(pv_avail, 1.8)
    wind_avail = 0.6 + 0.2 * np.cos(hours)
    wind = wind_avail.copy()
    cols |= {
        "grid.loss_kw": 80 + 40 * (load - 3.0) ** 2 + 30 * sun,
        "grid.load_p_mw": load,
        "grid.gen_p_mw": pv + wind,
        "grid.ext_p_mw": load - pv - wind,
        "grid.ext_q_mvar": 0.3 * load,
        "grid.converged": np.ones(n_steps),
        "pv1.p_mw": pv, "pv1.p_avail_mw": pv_avail, "pv1.q_mvar": np.zeros(n_steps),
        "wind1.p_mw": wind, "wind1.p_avail_mw": wind_avail, "wind1.q_mvar": np.zeros(n_steps),
        "line.1.loading_pct": 40 + 30 * sun, "line.2.loading_pct": 60 + 50 * sun,
        "trafo.0.loading_pct": 50 + 20 * np.abs(load - pv - wind),
    }
    df = pd.DataFrame({"time": time, **cols})
    if nonconverged_step is not None:
        signal_cols = [c for c in df.columns if c not in ("time", "grid.converged")]
        df.loc[nonconverged_step, signal_cols] = np.nan
        df.loc[nonconverged_step, "grid.converged"] = 0.0
    if seen:
        bus = f"bus.{min(18, n_buses)}.vm_pu"
        tampered = df[bus].to_numpy().copy()
        tampered[40:48] += 0.04
        df[f"seen.{bus}"] = tampered
        df["label.attack"] = np.where((np.arange(n_steps) >= 40) & (np.arange(n_steps) < 48), 1.0, 0.0)
    return df


def _events() -> pd.DataFrame:
    """One false-data-injection event."""
    return pd.DataFrame({"start": pd.to_datetime(["2024-06-01 10:00"]),
                         "end": pd.to_datetime(["2024-06-01 12:00"]),
                         "kind": ["fdi_bias"], "target": ["bus.18.vm_pu"]})


def _empty_events() -> pd.DataFrame:
    """Zero events, same columns."""
    return pd.DataFrame({"start": pd.Series([], dtype="datetime64[ns]"),
                         "end": pd.Series([], dtype="datetime64[ns]"),
                         "kind": pd.Series([], dtype=object), "target": pd.Series([], dtype=object)})


def _pngs(doc: str) -> list[bytes]:
    """Decoded PNG data URIs of a report."""
    return [base64.b64decode(m) for m in DATA_URI_RE.findall(doc)]


def _assert_self_contained(doc: str) -> None:
    """One HTML document that references nothing outside itself."""
    assert doc.startswith("<!DOCTYPE html>")
    assert doc.count("<html") == 1 and doc.rstrip().endswith("</html>")
    assert "http://" not in doc and "https://" not in doc
    for src in re.findall(r'src="([^"]*)"', doc):
        assert src.startswith("data:image/png;base64,"), src[:60]
    assert "<script" not in doc.lower()
    assert "<link" not in doc.lower()
    assert "url(" not in doc.lower()


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of the standard synthetic day, rendered once for several tests."""
    path = tmp_path_factory.mktemp("full") / "report.html"
    write_report(path, _timeseries(), _events(), METRICS, _meta())
    assert path.is_file()
    return path.read_text(encoding="utf-8")


def test_full_report_is_self_contained(full_report: str) -> None:
    _assert_self_contained(full_report)


def test_full_report_embeds_all_plots(full_report: str) -> None:
    pngs = _pngs(full_report)
    # envelope, heat map, branch loading, losses, generation/load, seen vs. true
    assert len(pngs) == 6
    assert full_report.count("data:image/png;base64,") == 6
    assert all(p.startswith(PNG_SIGNATURE) for p in pngs)
    for anchor in ("voltage-envelope", "voltage-heatmap", "branch-loading", "losses",
                   "generation-load", "seen-vs-true"):
        assert f'id="{anchor}"' in full_report


def test_full_report_lists_events_metrics_and_meta(full_report: str) -> None:
    assert "fdi_bias" in full_report and "bus.18.vm_pu" in full_report
    assert "2024-06-01 10:00:00" in full_report and "2:00:00" in full_report
    for name in METRICS:
        assert name in full_report
    assert "1,234.6" in full_report and "0.9312" in full_report and "n/a" in full_report
    for text in ("ieee33-pv-day", "ieee33", "42", "0.95", "1.05", "pv1, wind1", ">ok<"):
        assert text in full_report


def test_scenario_name_and_strings_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    evil = "<script>alert('x')</script>"
    events = _events().assign(kind=["<b>kind</b>"], target=[evil])
    write_report(path, _timeseries(n_buses=5, n_steps=8, nonconverged_step=None, seen=False), events,
                 {"<i>metric</i>": 1.0}, _meta(name=evil, message=evil, status="<failed>",
                                               generators=[evil], extra_key=evil))
    doc = path.read_text(encoding="utf-8")
    _assert_self_contained(doc)
    assert "&lt;script&gt;" in doc
    assert "&lt;b&gt;kind&lt;/b&gt;" in doc and "&lt;i&gt;metric&lt;/i&gt;" in doc
    assert "<b>" not in doc and "<i>" not in doc


def test_empty_events_and_minimal_frame(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(path, _timeseries(n_buses=4, n_steps=12, nonconverged_step=5), _empty_events(), METRICS, _meta())
    doc = path.read_text(encoding="utf-8")
    _assert_self_contained(doc)
    assert "No events." in doc
    assert len(_pngs(doc)) == 6

    ts = pd.DataFrame({"time": pd.date_range("2024-06-01", periods=24, freq="1h"),
                       "grid.loss_kw": np.r_[np.linspace(10, 30, 23), np.nan]})
    write_report(path, ts, _empty_events(), {}, _meta(generators=[]))
    doc = path.read_text(encoding="utf-8")
    _assert_self_contained(doc)
    pngs = _pngs(doc)
    assert len(pngs) == 1 and pngs[0].startswith(PNG_SIGNATURE)
    assert "No KPIs." in doc


@pytest.mark.parametrize("ts", [
    pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns]")}),
    pd.DataFrame(),
    pd.DataFrame({"time": pd.date_range("2024-06-01", periods=3, freq="15min"),
                  "bus.1.vm_pu": [np.nan] * 3, "bus.2.vm_pu": [np.nan] * 3,
                  "grid.converged": [0.0] * 3}),
    pd.DataFrame({"grid.loss_kw": [1.0, 2.0, np.nan], "bus.1.vm_pu": [1.0, 0.99, 0.98]}),
    pd.DataFrame({"time": [pd.Timestamp("2024-06-01")], "bus.1.vm_pu": [1.01]}),
])
def test_degenerate_frames_render(tmp_path: Path, ts: pd.DataFrame) -> None:
    path = tmp_path / "report.html"
    write_report(path, ts, _events(), {}, {"name": "degenerate"})
    doc = path.read_text(encoding="utf-8")
    _assert_self_contained(doc)
    assert "plot failed" not in doc
    assert "fdi_bias" in doc


def test_timezone_aware_times_and_open_events(tmp_path: Path) -> None:
    ts = _timeseries(n_buses=6, n_steps=96 * 2, nonconverged_step=None)
    ts["time"] = pd.date_range("2024-06-01", periods=len(ts), freq="15min", tz="Europe/Berlin")
    events = pd.DataFrame({"start": pd.to_datetime(["2024-06-01T08:00Z", "2024-06-02T01:00Z"]),
                           "end": [pd.Timestamp("2024-06-01T09:00Z"), pd.NaT],
                           "kind": ["trip", None], "target": ["line.2", None]})
    path = tmp_path / "report.html"
    write_report(path, ts, events, METRICS, _meta())
    doc = path.read_text(encoding="utf-8")
    _assert_self_contained(doc)
    assert "plot failed" not in doc
    assert "2024-06-01 10:00:00" in doc  # 08:00 UTC shown as Berlin wall time


def test_events_table_is_capped(tmp_path: Path) -> None:
    n = page.MAX_EVENT_ROWS + 57
    start = pd.date_range("2024-06-01", periods=n, freq="5min")
    events = pd.DataFrame({"start": start, "end": start + pd.Timedelta("2min"),
                           "kind": ["bias", "replay"] * (n // 2) + ["bias"] * (n % 2), "target": "x"})
    path = tmp_path / "report.html"
    write_report(path, _timeseries(n_buses=3, n_steps=96, seen=False), events, {}, _meta())
    doc = path.read_text(encoding="utf-8")
    assert "57 more events" in doc
    assert doc.count("<tr><td>2024-06-01") == page.MAX_EVENT_ROWS


def test_large_feeder_renders(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(path, _timeseries(n_buses=2000, n_steps=96), _events(), METRICS, _meta(feeder="simbench"))
    doc = path.read_text(encoding="utf-8")
    _assert_self_contained(doc)
    assert len(_pngs(doc)) == 6
    assert len(doc) < 3_000_000


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "report.html"
    path.parent.mkdir()
    path.write_text("old")
    write_report(path, _timeseries(n_buses=3, n_steps=8, seen=False), _events(), METRICS, _meta())
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_downsample_keeps_most_extreme_value() -> None:
    m = np.array([[1.0, 0.9, 1.01, np.nan, 1.2],
                  [1.0, 1.0, np.nan, np.nan, 0.99]])
    out = data.downsample_extreme(m, 2, axis=1)
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out[0], [0.9, 1.01, 1.2])
    assert out[1, 0] == 1.0 and math.isnan(out[1, 1]) and out[1, 2] == 0.99
    assert data.downsample_extreme(m, 1, axis=1) is m


def test_number_formatting() -> None:
    f = page.fmt_number
    assert f(1234.5678) == "1,234.6"
    assert f(0.93124) == "0.9312"
    assert f(12.34567) == "12.346"
    assert f(450) == "450" and f(3.0) == "3" and f(np.int64(7)) == "7"
    assert f(float("nan")) == "n/a" and f(None) == "n/a"
    assert f(2.5e-7) == "2.5e-07" and f(True) == "true"


def test_nonconverged_steps_are_shaded() -> None:
    ts = _timeseries(n_buses=3, n_steps=10, nonconverged_step=4, seen=False)
    axis = data.time_axis(ts)
    vm = data.float_matrix(ts, [c for _, c in data.entity_columns(ts, "bus")])
    spans = data.nonconverged_spans(ts, axis, vm)
    assert len(spans) == 1
    assert spans[0].x0 < axis.x[4] < spans[0].x1
    assert spans[0].x1 - spans[0].x0 == pytest.approx(axis.step)


def test_nonconverged_events_are_not_shaded_twice() -> None:
    ts = _timeseries(n_buses=3, n_steps=10, nonconverged_step=4, seen=False)
    t4 = ts["time"].iloc[4]
    events = pd.concat([_events(), pd.DataFrame({"start": [t4], "end": [t4 + pd.Timedelta("15min")],
                                                 "kind": ["nonconverged"], "target": ["grid"]})])
    axis = data.time_axis(ts)
    ev = data.normalise_events(events, axis.tz)
    vm = data.float_matrix(ts, [c for _, c in data.entity_columns(ts, "bus")])
    labels = [s.label for s in data.all_spans(ts, axis, ev, data.kind_colours(ev["kind"]), vm)]
    assert labels == ["event: fdi_bias", "power flow not converged"]


def test_kpi_table_shows_units_and_descriptions(tmp_path: Path) -> None:
    from cosim.metrics import METRICS as TABLE

    path = tmp_path / "report.html"
    write_report(path, _timeseries(n_buses=3, n_steps=8, seen=False), _empty_events(),
                 {"loss_energy_kwh": 12.5, "efficiency_incl_curtailment": 0.95, "detector_tpr_fdi": 0.5,
                  "unknown_metric": 1.0}, _meta())
    doc = path.read_text(encoding="utf-8")
    assert "<th>Unit</th><th>Description</th>" in doc
    assert '<td>loss_energy_kwh</td><td class="num">12.500</td><td>kWh</td>' in doc
    assert TABLE["efficiency_incl_curtailment"].description.split(":")[0] in doc
    assert TABLE["detector_tpr_<kind>"].description in doc  # per-kind keys share one entry
    assert '<td>unknown_metric</td><td class="num">1</td><td></td><td class="muted"></td>' in doc


def test_a_registered_plot_appears_on_the_page(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    @plots.plot("load-only", "Load only", order=45, missing="no grid.load_p_mw column")
    def plot_load(d: data.ReportData) -> Figure | None:
        if "grid.load_p_mw" not in d.ts.columns:
            return None
        fig = Figure(figsize=(4, 2))
        fig.subplots().plot(d.axis.x, data.numeric(d.ts, "grid.load_p_mw"))
        return fig

    try:
        assert [p.anchor for p in plots.registered()][3:5] == ["losses", "load-only"]
        path = tmp_path / "report.html"
        write_report(path, _timeseries(n_buses=3, n_steps=8, seen=False), _events(), METRICS, _meta())
        doc = path.read_text(encoding="utf-8")
        assert 'id="load-only"' in doc and len(_pngs(doc)) == 6
        assert doc.index('id="losses"') < doc.index('id="load-only"') < doc.index('id="generation-load"')
        write_report(path, pd.DataFrame({"grid.loss_kw": [1.0, 2.0]}), _events(), {}, _meta())
        assert "Load only: not shown (no grid.load_p_mw column)." in path.read_text(encoding="utf-8")
    finally:
        del plots.PLOTS["load-only"]
