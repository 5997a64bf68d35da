"""DIR/report.html of a sweep: controllers side by side, mean and 95 % interval over seeds, per case.

A case is a scenario with one combination of override values. For each case there is a table
(one row per metric, one column per controller: mean ± half-width (n seeds)) and a plot with
one panel per metric (the mean as a marker, the interval as an error bar). Failed runs are listed
with their messages and left out of the statistics. Self-contained: plots are PNG data URIs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cosim.metrics import metric_info, worse_directions
from cosim.report.html import esc, fmt_number
from cosim.report.plots.figures import figure_to_data_uri
from cosim.sweep.stats import LEVEL, compare

#: The metrics compared: those a regression baseline keeps (with a direction), in the metric table's order.
METRICS = list(worse_directions())
PANELS_PER_ROW = 5

CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3}.bad{color:#b00}img{max-width:100%}"""


def _cell(mean: float, half: float, n: int) -> str:
    if n == 0:
        return "n/a"
    spread = f" ± {fmt_number(half)}" if not math.isnan(half) else ""
    return f"{fmt_number(mean)}{spread} <small>(n={n})</small>"


def _case_title(scenario: str, overrides: dict) -> str:
    shown = ", ".join(f"{k} = {v}" for k, v in overrides.items())
    return f"{scenario}" + (f" — {shown}" if shown else "")


def _plot(stats: pd.DataFrame, controllers: list[str], metrics: list[str]) -> str:
    """Mean (marker) and interval (error bar) per controller, one panel per metric."""
    cols = min(PANELS_PER_ROW, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(2.6 * cols, 2.4 * rows), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    x = np.arange(len(controllers))
    for ax, metric in zip(axes, metrics):
        part = stats[stats["metric"] == metric].set_index("controller").reindex(controllers)
        half = part["half_width"].fillna(0.0).to_numpy()
        ax.errorbar(x, part["mean"].to_numpy(), yerr=half, fmt="o", capsize=4, color="#4c78a8")
        ax.set_xlim(-0.5, len(controllers) - 0.5)
        info = metric_info(metric)
        ax.set_title(metric + (f" [{info.unit}]" if info and info.unit != "ratio" else ""), fontsize="small")
        ax.set_xticks(x, controllers, rotation=30, ha="right", fontsize="x-small")
        ax.tick_params(axis="y", labelsize="x-small")
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    return figure_to_data_uri(fig)


def render(name: str, table: pd.DataFrame, override_keys: list[str]) -> str:
    """The report page of a summary table."""
    case_columns = ["scenario"] + override_keys
    metrics = [m for m in METRICS if m in table.columns]
    controllers = list(dict.fromkeys(table["controller"]))
    failed = table[table["status"] != "ok"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>sweep {esc(name)}</title>"
             f"<style>{CSS}</style></head><body><h1>Sweep {esc(name)}</h1>",
             f"<p>{len(table)} runs: {len(table) - len(failed)} ok, {len(failed)} failed. Cells: mean ± half-width "
             f"of the {LEVEL:.0%} Student-t interval over seeds (n = successful runs).</p>"]
    if len(failed):
        parts.append("<h2 class='bad'>Failed runs</h2><table><tr><th>run</th><th>status</th><th>message</th></tr>"
                     + "".join(f"<tr><td>{esc(r.run_id)}</td><td class='bad'>{esc(r.status)}</td>"
                               f"<td style='text-align:left'>{esc(r.message)}</td></tr>" for r in failed.itertuples())
                     + "</table>")
    for keys, case in table.groupby(case_columns, sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        title = _case_title(keys[0], dict(zip(override_keys, keys[1:])))
        part = compare(case, case_columns, metrics)
        parts.append(f"<h2>{esc(title)}</h2>")
        if not len(part):
            parts.append("<p class='bad'>no successful run</p>")
            continue
        head = "".join(f"<th>{esc(c)}</th>" for c in controllers)
        body = []
        for metric in metrics:
            info = metric_info(metric)
            unit = f" [{info.unit}]" if info and info.unit != "ratio" else ""
            cells = []
            for c in controllers:
                hit = part[(part["metric"] == metric) & (part["controller"] == c)]
                cells.append(_cell(hit["mean"].iloc[0], hit["half_width"].iloc[0], int(hit["n"].iloc[0]))
                             if len(hit) else "n/a")
            body.append(f"<tr><td>{esc(metric + unit)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append(f"<table><tr><th>metric</th>{head}</tr>{''.join(body)}</table>")
        parts.append(f"<img alt='{esc(title)}' src='{_plot(part, controllers, metrics)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, name: str, table: pd.DataFrame, override_keys: list[str]) -> None:
    """Write the sweep's report page."""
    path.write_text(render(name, table, override_keys), encoding="utf-8")
