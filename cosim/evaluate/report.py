"""Tables and files of an evaluation: evaluation.json, runs, summary, comparison and gap tables (CSV and Parquet),
report.html (with one box plot per metric over the per-run rows, by controller).

The unit of the statistics is the held-out day for a scenario file (every run is an independent
day). For a distribution with two seeds or more it is the seed: days of one seed share a feeder
and layout, so they are averaged per seed first and the interval is over seeds (one seed: days).
The gap to the OPF oracle is the paired difference controller - oracle on the same units.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib import cbook
from matplotlib.figure import Figure

from cosim.evaluate.runner import Run
from cosim.evaluate.stats import LEVEL, adjust, paired, summarize
from cosim.files import write_atomic

METRICS = ("voltage_violation_bus_minutes", "loss_energy_kwh", "curtailed_energy_kwh", "reactive_energy_kvarh",
           "vm_max_pu", "vm_min_pu")
# KPIs where a gap to the oracle means something: energies and violations the oracle minimises or keeps at zero
GAP_METRICS = ("loss_energy_kwh", "voltage_violation_bus_minutes", "curtailed_energy_kwh")


def runs_table(runs: Sequence[Run], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per run: controller, seed, day, seeds, feeder, DER count, status, message and the metrics."""
    rows = [{"controller": r.controller, "seed": r.seed, "day": r.day, "layout_seed": r.layout_seed,
             "day_seed": r.day_seed, "feeder": r.feeder, "ders": r.ders, "status": r.status, "message": r.message,
             **{m: r.kpis.get(m, math.nan) for m in metrics}} for r in runs]
    columns = ["controller", "seed", "day", "layout_seed", "day_seed", "feeder", "ders", "status", "message", *metrics]
    return pd.DataFrame(rows, columns=columns).sort_values(["controller", "seed", "day"], kind="stable")


def units(runs: pd.DataFrame, metrics: Sequence[str], by_seed: bool) -> pd.DataFrame:
    """The statistical units of the ok runs: runs as they are, or per-seed means."""
    ok = runs[runs["status"] == "ok"]
    if not by_seed:
        return ok[["controller", "seed", "day", *metrics]]
    return ok.groupby(["controller", "seed"], sort=False)[list(metrics)].mean().reset_index().assign(day=-1)


def summary_table(unit: pd.DataFrame, metrics: Sequence[str], level: float = LEVEL) -> pd.DataFrame:
    """One row per controller and metric: n, mean, std, median, quantiles, t and bootstrap intervals."""
    rows = [{"controller": c, "metric": m, **summarize(g[m].to_numpy(float), level)}
            for c, g in unit.groupby("controller", sort=False) for m in metrics]
    return pd.DataFrame(rows)


def _pairs(unit: pd.DataFrame, against: str):
    """(controller, its units joined with the reference's on seed and day; reference columns end in __ref)."""
    key = ["seed", "day"]
    ref = unit[unit["controller"] == against].set_index(key)
    for c, g in unit.groupby("controller", sort=False):
        yield c, g.set_index(key).join(ref, rsuffix="__ref", how="inner")


def comparison_table(unit: pd.DataFrame, metrics: Sequence[str], against: str, level: float = LEVEL) -> pd.DataFrame:
    """One row per other controller and metric: paired difference (controller - against) and tests."""
    rows = []
    for c, both in _pairs(unit, against):
        if c == against:
            continue
        for m in metrics:
            rows.append({"controller": c, "against": against, "metric": m,
                         **paired(both[m].to_numpy(float), both[f"{m}__ref"].to_numpy(float), level)})
    table = pd.DataFrame(rows)
    if len(table):
        table["wilcoxon_p_adjusted"] = adjust(table["wilcoxon_p"].tolist())
    return table


def gap_table(unit: pd.DataFrame, metrics: Sequence[str], oracle: str, level: float = LEVEL) -> pd.DataFrame:
    """One row per controller (the oracle too) and GAP_METRICS KPI: the paired gap controller - oracle, its t
    interval, and the gap relative to the oracle's mean (NaN when that mean is 0)."""
    rows = []
    for c, both in _pairs(unit, oracle):
        for m in (m for m in GAP_METRICS if m in metrics):
            r = paired(both[m].to_numpy(float), both[f"{m}__ref"].to_numpy(float), level)
            ref = float(both[f"{m}__ref"].mean()) if r["n_pairs"] else math.nan
            rows.append({"controller": c, "metric": m, "oracle": oracle, "n_pairs": r["n_pairs"], "oracle_mean": ref,
                         "gap": r["mean_diff"], "gap_low": r["diff_low"], "gap_high": r["diff_high"],
                         "gap_rel": r["mean_diff"] / abs(ref) if ref else math.nan})
    columns = ["controller", "metric", "oracle", "n_pairs", "oracle_mean", "gap", "gap_low", "gap_high", "gap_rel"]
    return pd.DataFrame(rows, columns=columns)


def with_gap(summary: pd.DataFrame, gap: pd.DataFrame) -> pd.DataFrame:
    """The summary with each row's gap to the oracle (gap, gap_low, gap_high, gap_rel; NaN for other KPIs)."""
    return summary.merge(gap[["controller", "metric", "gap", "gap_low", "gap_high", "gap_rel"]],
                         on=["controller", "metric"], how="left")


def _cell(v: object) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:,.4g}"
    return html.escape(str(v))


def _html_table(df: pd.DataFrame, columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r[c])}</td>" for c in columns) + "</tr>" for _, r in df.iterrows())
    return f"<table><tr>{head}</tr>{body}</table>"


def box_data(runs: pd.DataFrame, metrics: Sequence[str]) -> dict[str, list[dict]]:
    """Per metric, per controller (in table order): matplotlib's box statistics of the ok per-run values.

    Quartiles are numpy's linear percentiles; whiskers reach the furthest value within 1.5 IQR.
    Controllers with no finite value for a metric are left out of its plot.
    """
    ok = runs[runs["status"] == "ok"]
    out: dict[str, list[dict]] = {}
    for m in metrics:
        boxes = []
        for c, g in ok.groupby("controller", sort=False):
            x = g[m].to_numpy(float)
            x = x[np.isfinite(x)]
            if len(x):
                boxes.append({**cbook.boxplot_stats(x)[0], "label": c, "n": len(x), "values": x})
        out[m] = boxes
    return out


def box_plot_uri(metric: str, boxes: Sequence[dict]) -> str:
    """One metric's box plot (a box per controller, every run as a dot) as a PNG data URI."""
    from cosim.report.plots.figures import figure_to_data_uri  # the report package pulls in plotting only here

    fig = Figure(figsize=(max(4.0, 1.2 * len(boxes) + 2.0), 3.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.bxp([{k: v for k, v in b.items() if k not in ("values", "n")} for b in boxes], showfliers=False)
    for i, b in enumerate(boxes, start=1):
        ax.plot(np.full(len(b["values"]), i), b["values"], "o", ms=3, alpha=0.5, color="tab:blue")
    ax.set_xticks(range(1, len(boxes) + 1), [f"{b['label']}\n(n={b['n']})" for b in boxes])
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    return figure_to_data_uri(fig)


def _box_section(runs: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    parts = ["<h2>Per-run distributions</h2>",
             "<p>One box per controller over its per-run rows: median, quartiles, whiskers to the furthest run "
             "within 1.5 IQR; dots are the runs.</p>"]
    for m, boxes in box_data(runs, metrics).items():
        if boxes:
            parts.append(f"<figure class='box' data-metric='{html.escape(m)}'><img alt='{html.escape(m)}' "
                         f"src='{box_plot_uri(m, boxes)}'></figure>")
    return parts


def report_html(meta: dict, summary: pd.DataFrame, comparison: pd.DataFrame, gap: pd.DataFrame,
                runs: pd.DataFrame | None = None) -> str:
    """A self-contained page: the summary, box plots of the per-run rows, the gap to the oracle, the comparison."""
    cols = ["controller", "metric", "n", "mean", "t_low", "t_high", "boot_low", "boot_high", "median", "q05", "q95",
            "gap", "gap_rel"]
    parts = [f"<h1>Evaluation of {html.escape(meta['source'])}</h1>",
             f"<p>{meta['seeds']} seeds × {meta['days']} held-out days; unit of the statistics: "
             f"{html.escape(meta['unit'])}; {100 * meta['level']:.0f} % intervals of the mean.</p>",
             "<h2>Summary</h2>", _html_table(summary, [c for c in cols if c in summary])]
    if runs is not None:
        parts += _box_section(runs, meta["metrics"])
    if len(gap):
        parts += [f"<h2>Gap to the OPF oracle ({html.escape(meta['oracle'])})</h2>",
                  "<p>Paired gap = controller − oracle on the same units, with its t interval; relative gap = gap / "
                  "|oracle mean| (– when the oracle's mean is 0).</p>",
                  _html_table(gap, ["controller", "metric", "n_pairs", "oracle_mean", "gap", "gap_low", "gap_high",
                                    "gap_rel"])]
    else:
        parts.append(f"<p>{html.escape(meta.get('oracle_note') or 'No OPF oracle.')}</p>")
    if len(comparison):
        ccols = ["controller", "against", "metric", "n_pairs", "mean_diff", "diff_low", "diff_high", "wilcoxon_p",
                 "wilcoxon_p_adjusted", "ttest_p", "effect_dz"]
        parts += [f"<h2>Paired comparison against {html.escape(meta['against'])}</h2>",
                  "<p>Differences are controller − reference; Wilcoxon signed-rank on paired units, "
                  "p-values adjusted (Benjamini–Hochberg) over all rows.</p>", _html_table(comparison, ccols)]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}")
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def write_outputs(out_dir: Path, meta: dict, runs: pd.DataFrame, summary: pd.DataFrame,
                  comparison: pd.DataFrame, gap: pd.DataFrame) -> None:
    """evaluation.json (meta and every table), the four tables as CSV and Parquet, and report.html."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = lambda df: json.loads(df.to_json(orient="records"))  # noqa: E731 - NaN becomes null
    tables = {"runs": runs, "summary": summary, "comparison": comparison, "gap": gap}
    doc = {**meta, **{name: records(df) for name, df in tables.items()}}
    write_atomic(out_dir / "evaluation.json", json.dumps(doc, indent=1) + "\n")
    for name, df in tables.items():
        df.to_csv(out_dir / f"{name}.csv", index=False)
        df.to_parquet(out_dir / f"{name}.parquet", index=False)
    write_atomic(out_dir / "report.html", report_html(meta, summary, comparison, gap, runs))
