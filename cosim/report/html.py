"""Page assembly: one self-contained HTML document (plots as PNG data URIs, no scripts, nothing external).

The header lists the scenario's metadata, then come the plots, the detection section (only in
runs with detectors: their confusion table, score and ROC plots), the events table and the KPI
table, whose units and descriptions come from the metric table of `cosim.metrics`.
"""

from __future__ import annotations

import html
import math
import numbers
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from cosim.events.impact import Confusion
from cosim.metrics import metric_info
from cosim.report.data import DetectorSeries, ReportData, TimeAxis, fmt_x
from cosim.report.plots.registry import RenderedPlot

MAX_EVENT_ROWS = 200
MAX_META_CHARS = 300
STATUS_CLASS = {"ok": "ok", "success": "ok", "done": "ok", "failed": "bad", "error": "bad"}


def esc(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def fmt_number(value: Any) -> str:
    """A KPI value formatted for a table."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        a = abs(v)
        if v == int(v) and a < 1e15:
            return f"{int(v):,}"
        if a >= 1e7 or a < 1e-4:
            return f"{v:.4g}"
        if a >= 1000:
            return f"{v:,.1f}"
        if a >= 1:
            return f"{v:.3f}"
        return f"{v:.4f}"
    return str(value)


def fmt_time(t: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` (dash if missing)."""
    return "–" if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start: Any, end: Any) -> str:
    """end - start as ``[Nd ]H:MM:SS`` (dash if either is missing)."""
    if pd.isna(start) or pd.isna(end):
        return "–"
    secs = int(round((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()))
    sign, secs = ("−" if secs < 0 else ""), abs(secs)
    days, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{f'{days}d ' if days else ''}{h}:{m:02d}:{s:02d}"


def meta_rows(meta: dict, ts: pd.DataFrame, axis: TimeAxis, n_buses: int) -> list[tuple[str, str]]:
    """(label, escaped value HTML) rows of the report header."""
    limits = meta.get("voltage_limits")
    try:
        limits_txt = " – ".join(f"{float(v):g}" for v in limits) + " pu"
    except (TypeError, ValueError):
        limits_txt = "n/a" if limits is None else str(limits)
    gens = meta.get("generators") or []
    gens_txt = ", ".join(map(str, [gens] if isinstance(gens, str) else gens)) or "none"
    rows = [("Scenario", esc(meta.get("name", "n/a"))), ("Feeder", esc(meta.get("feeder", "n/a"))),
            ("Seed", esc(meta.get("seed", "n/a"))), ("Voltage limits", esc(limits_txt)),
            ("Generators", esc(gens_txt))]
    if len(ts) and axis.is_date:
        step_min = axis.step * 24 * 60
        period = f"{fmt_x(axis, axis.x[0], True)} to {fmt_x(axis, axis.x[-1], True)}"
        rows.append(("Simulated period", esc(f"{period} · {len(ts)} steps of {step_min:g} min")))
    else:
        rows.append(("Steps", esc(len(ts))))
    if n_buses:
        rows.append(("Buses with voltage results", esc(n_buses)))
    known = {"name", "seed", "feeder", "voltage_limits", "status", "generators", "message"}
    for k, v in meta.items():
        if k not in known:
            txt = str(v)
            rows.append((esc(k), esc(txt if len(txt) <= MAX_META_CHARS else txt[:MAX_META_CHARS] + " …")))
    return rows


def events_table(ev: pd.DataFrame, colours: dict[str, str]) -> str:
    """HTML table of the events (at most MAX_EVENT_ROWS rows)."""
    if ev.empty:
        return "<p class=\"muted\">No events.</p>"
    rows = []
    for r in ev.head(MAX_EVENT_ROWS).itertuples(index=False):
        swatch = f"<span class=\"swatch\" style=\"background:{esc(to_hex(colours[r.kind]))}\"></span>"
        rows.append(f"<tr><td>{fmt_time(r.start)}</td><td>{fmt_time(r.end)}</td>"
                    f"<td class=\"num\">{fmt_duration(r.start, r.end)}</td>"
                    f"<td>{swatch}{esc(r.kind)}</td><td>{esc(r.target)}</td></tr>")
    more = len(ev) - MAX_EVENT_ROWS
    note = f"<p class=\"muted\">… and {more} more events not listed.</p>" if more > 0 else ""
    return ("<table><thead><tr><th>Start</th><th>End</th><th>Duration</th><th>Kind</th><th>Target</th>"
            "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>" + note)


def metrics_table(metrics: dict[str, Any]) -> str:
    """HTML table of all KPIs in the given order, with unit and description from the metric table."""
    if not metrics:
        return "<p class=\"muted\">No KPIs.</p>"
    rows = []
    for k, v in metrics.items():
        info = metric_info(str(k))
        unit, what = ("", "") if info is None else (info.unit, info.description)
        rows.append(f"<tr><td>{esc(k)}</td><td class=\"num\">{esc(fmt_number(v))}</td><td>{esc(unit)}</td>"
                    f"<td class=\"muted\">{esc(what)}</td></tr>")
    return ("<table><thead><tr><th>KPI</th><th>Value</th><th>Unit</th><th>Description</th></tr></thead><tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>")


def confusion_table(detectors: list[DetectorSeries], attack: np.ndarray) -> str:
    """HTML table of each detector's alarms against `label.attack`: step counts, TPR, FPR and precision."""
    head = "".join(f"<th>{h}</th>" for h in ("Detector", "TP", "FP", "FN", "TN", "TPR", "FPR", "Precision"))
    rows = []
    for det in detectors:
        if det.alarm is None:
            rows.append(f"<tr><td>{esc(det.name)}</td><td colspan=\"7\" class=\"muted\">no alarm column</td></tr>")
            continue
        c = Confusion.of(det.alarm, attack)
        cells = [fmt_number(v) for v in (c.tp, c.fp, c.fn, c.tn, c.tpr, c.fpr, c.precision)]
        rows.append(f"<tr><td>{esc(det.name)}</td>" + "".join(f"<td class=\"num\">{v}</td>" for v in cells) + "</tr>")
    clean = len(attack) - int(attack.sum())
    note = (f"<p class=\"muted\">Steps: {int(attack.sum())} attacked, {clean} clean (label.attack). TP = attacked "
            "steps with an alarm, FP = clean steps with one, FN / TN = attacked / clean steps without; "
            "TPR = TP / (TP + FN), FPR = FP / (FP + TN), precision = TP / (TP + FP).</p>")
    if not attack.any() or not clean:
        note += "<p class=\"muted\">No ROC curves: they need both attacked and clean steps.</p>"
    return (f"<table class=\"confusion\"><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows)
            + "\n</tbody></table>" + note)


def figures_html(figures: list[RenderedPlot]) -> str:
    """The figures as `<figure>` elements with their anchors."""
    return "\n".join(f"<figure id=\"{f.anchor}\"><img alt=\"{esc(f.caption)}\" src=\"{f.uri}\"></figure>"
                     for f in figures)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1200px;padding:1rem 1.5rem;color:#222;line-height:1.4}
h1{margin:.2rem 0 .6rem;font-size:1.6rem}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.4rem 0;font-size:.92rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} tbody tr:nth-child(even){background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums} table.meta th{width:13rem}
.status{display:inline-block;padding:.05rem .6rem;border-radius:.8rem;font-weight:600;color:#fff}
.status.ok{background:#2e7d32} .status.bad{background:#c62828} .status.other{background:#ef6c00}
.message{border-left:4px solid #ef6c00;background:#fff5e6;padding:.5rem .8rem;white-space:pre-wrap}
.message.bad{border-color:#c62828;background:#fdecea}
figure{margin:1rem 0 1.6rem} figure img{max-width:100%;height:auto;display:block}
.muted{color:#777} nav a{margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.35rem;border-radius:2px;vertical-align:-1px}
"""


def render_html(meta: dict, meta_rows: list[tuple[str, str]], figures: list[RenderedPlot],
                 notes: list[str], events_html: str, metrics_html: str, detection_html: str = "") -> str:
    """The whole page; ``meta_rows``/``events_html``/``metrics_html``/``detection_html`` are already escaped
    (no detection section without ``detection_html``)."""
    name = meta.get("name", "unnamed scenario")
    status = str(meta.get("status", "unknown"))
    cls = STATUS_CLASS.get(status.lower(), "other")
    message = meta.get("message")
    msg_html = f"<div class=\"message {cls}\">{esc(message)}</div>" if message else ""
    rows = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in meta_rows)
    plots = [f for f in figures if f.section == "plots"]
    nav = " ".join(f"<a href=\"#{f.anchor}\">{esc(f.caption)}</a>" for f in plots)
    if detection_html:
        nav += " <a href=\"#detection\">Detection</a>"
        detection_html = ("<section id=\"detection\">\n<h2>Detection</h2>\n" + detection_html + "\n"
                          + figures_html([f for f in figures if f.section == "detection"]) + "\n</section>")
    nav += " <a href=\"#events\">Events</a> <a href=\"#kpis\">KPIs</a>"
    figs = figures_html(plots)
    notes_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    notes_html = f"<ul class=\"muted\">{notes_html}</ul>" if notes else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Co-simulation report: {esc(name)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>Co-simulation report: {esc(name)} <span class="status {cls}">{esc(status)}</span></h1>
{msg_html}
<table class="meta"><tbody>
{rows}
</tbody></table>
<nav>{nav}</nav>
</header>
<section id="plots">
<h2>Plots</h2>
{figs if plots else '<p class="muted">No plottable time series.</p>'}
{notes_html}
</section>
{detection_html}
<section id="events">
<h2>Events</h2>
{events_html}
</section>
<section id="kpis">
<h2>KPIs</h2>
{metrics_html}
</section>
<footer><p class="muted">Generated by cosim.report.</p></footer>
</body>
</html>
"""


# ----------------------------------------------------------------------------- entry point


def render_page(d: ReportData, figures: list[RenderedPlot], notes: list[str], metrics: dict[str, Any]) -> str:
    """The report page of a run from its data, rendered plots, notes and KPIs (a detection section if it has detectors)."""
    detection = confusion_table(d.detectors, d.attack) if d.detectors else ""
    return render_html(d.meta, meta_rows(d.meta, d.ts, d.axis, len(d.bus_ids)), figures, notes,
                       events_table(d.events, d.colours), metrics_table(metrics), detection)
