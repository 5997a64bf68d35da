"""Power plots: grid losses, and generation against load with the external-grid exchange."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from cosim.report.data import ReportData, generator_names, numeric, sum_columns
from cosim.report.plots.figures import format_time_axis, legend, new_figure, shade
from cosim.report.plots.registry import plot

MAX_GENERATOR_LINES = 8


@plot("losses", "Losses", order=40, missing="no grid.loss_kw column")
def plot_losses(d: ReportData) -> Figure | None:
    """Grid losses over time."""
    axis, ts, spans = d.axis, d.ts, d.spans
    if "grid.loss_kw" not in ts.columns or not len(ts):
        return None
    loss = numeric(ts, "grid.loss_kw")
    fig, (ax,) = new_figure(3.2)
    shade(ax, spans)
    ax.fill_between(axis.x, 0, loss, color="firebrick", alpha=0.1, lw=0)
    ax.plot(axis.x, loss, color="firebrick", lw=1.4, label="active power losses")
    ax.set_title("Grid losses")
    ax.set_ylabel("Losses (kW)")
    ax.set_ylim(bottom=min(0.0, float(np.nanmin(loss)) if np.isfinite(loss).any() else 0.0))
    ax.grid(True, alpha=0.3)
    format_time_axis(ax, axis)
    legend(ax)
    return fig


@plot("generation-load", "Generation and load", order=50, missing="no load or generator power columns")
def plot_generation_load(d: ReportData) -> Figure | None:
    """Total load against injected (and available) generator power, and the external-grid exchange."""
    axis, ts, meta, spans = d.axis, d.ts, d.meta, d.spans
    gens = generator_names(ts, meta)
    have = [c for c in ("grid.load_p_mw", "grid.gen_p_mw", "grid.ext_p_mw") if c in ts.columns]
    if not len(ts) or not (gens or have):
        return None
    fig, (ax,) = new_figure(4.0)
    shade(ax, spans)
    x = axis.x
    if "grid.load_p_mw" in ts.columns:
        ax.plot(x, numeric(ts, "grid.load_p_mw"), color="black", lw=2.0, label="load (total)")
    if "grid.gen_p_mw" in ts.columns:
        ax.plot(x, numeric(ts, "grid.gen_p_mw"), color="tab:green", lw=2.0, label="generation (total)")
    elif len(gens) > 1:
        ax.plot(x, sum_columns(ts, [f"{g}.p_mw" for g in gens]), color="tab:green", lw=2.0,
                label="generation (sum of named)")
    if len(gens) > MAX_GENERATOR_LINES:
        groups = [(f"{len(gens)} generators", [f"{g}.p_mw" for g in gens],
                   [f"{g}.p_avail_mw" for g in gens if f"{g}.p_avail_mw" in ts.columns])]
    else:
        groups = [(g, [f"{g}.p_mw"], [f"{g}.p_avail_mw"] if f"{g}.p_avail_mw" in ts.columns else [])
                  for g in gens]
    colours = ["tab:orange", "tab:blue", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
               "tab:cyan", "tab:red"]
    for i, (name, pcols, acols) in enumerate(groups):
        c = colours[i % len(colours)]
        p = sum_columns(ts, pcols)
        ax.plot(x, p, color=c, lw=1.4, label=f"{name} injected")
        if acols:
            avail = sum_columns(ts, acols)
            ax.plot(x, avail, color=c, lw=1.2, ls="--", label=f"{name} available")
            ax.fill_between(x, p, avail, where=np.nan_to_num(avail - p) > 1e-9, color=c, alpha=0.18,
                            lw=0, label="curtailed (shaded)")
    if "grid.ext_p_mw" in ts.columns:
        ax.plot(x, numeric(ts, "grid.ext_p_mw"), color="0.4", lw=1.2, ls=":",
                label="external grid (+ import / − export)")
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_title("Generation and load")
    ax.set_ylabel("Active power (MW)")
    ax.grid(True, alpha=0.3)
    format_time_axis(ax, axis)
    legend(ax)
    return fig
