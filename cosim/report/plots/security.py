"""Security plots: the state-estimation detector's score and alarms, and what the controller saw."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from cosim.report.data import ATTACK_COLOUR, ReportData, mask_spans, numeric, seen_pairs, signal_unit
from cosim.report.plots.figures import format_time_axis, legend, legend_entries, new_figure, shade
from cosim.report.plots.registry import plot

MAX_SEEN_PLOTS = 6


@plot("detector", "Detector", order=60)
def plot_detector(d: ReportData) -> Figure | None:
    """Detector score (J over its chi-square threshold) with alarms, over the labelled attack steps."""
    axis, ts, spans = d.axis, d.ts, d.spans
    if "detector.score" not in ts.columns or not len(ts):
        return None
    fig, (ax,) = new_figure(3.4)
    attack = []
    if "label.attack" in ts.columns:
        attack = mask_spans(numeric(ts, "label.attack") >= 0.5, axis, "attack active (label)",
                             ATTACK_COLOUR, "\\\\", 0.08)
    shade(ax, [*spans, *attack])
    score = numeric(ts, "detector.score")
    ax.plot(axis.x, score, color="tab:purple", lw=1.0, label="score = J / chi-square threshold")
    ax.axhline(1.0, color="black", ls="--", lw=1.0, label="alarm threshold")
    if "detector.alarm" in ts.columns:
        hit = numeric(ts, "detector.alarm") >= 0.5
        ax.plot(axis.x[hit], score[hit], ls="none", marker="v", ms=4, color="crimson", label="alarm")
    if np.nanmax(score, initial=0.0) > 20:
        ax.set_yscale("log")
    ax.set_ylabel("Score")
    ax.grid(True, alpha=0.3)
    format_time_axis(ax, axis)
    legend(ax)
    fig.suptitle("State-estimation detector")
    return fig


# ----------------------------------------------------------------------------- HTML


@plot("seen-vs-true", "Seen vs. true", order=70)
def plot_seen_vs_true(d: ReportData) -> Figure | None:
    """True signal against what a controller saw, for up to MAX_SEEN_PLOTS signals."""
    axis, ts, spans = d.axis, d.ts, d.spans
    pairs = seen_pairs(ts)
    if not pairs or not len(ts):
        return None
    shown = pairs[:MAX_SEEN_PLOTS]
    attack = []
    if "label.attack" in ts.columns:
        attack = mask_spans(numeric(ts, "label.attack") >= 0.5, axis, "attack active (label)",
                             ATTACK_COLOUR, "\\\\", 0.08)
    fig, axes = new_figure(0.6 + 1.9 * len(shown), nrows=len(shown))
    for ax, (sig, diff) in zip(axes, shown):
        shade(ax, [*spans, *attack])
        if sig in ts.columns:
            ax.plot(axis.x, numeric(ts, sig), color="tab:blue", lw=1.6, label="true value")
        ax.plot(axis.x, numeric(ts, f"seen.{sig}"), color="tab:red", lw=1.2, ls="--",
                marker="." if len(ts) <= 200 else None, ms=3, label="seen by controller")
        unit = signal_unit(sig)
        txt = (f"max |seen − true| = {diff:.4g} {unit}".rstrip() if sig in ts.columns
               else "true value not recorded")
        ax.set_title(f"{sig}: {txt}", fontsize="medium", loc="left")
        ax.set_ylabel(f"Value ({unit})" if unit else "Value")
        ax.grid(True, alpha=0.3)
        format_time_axis(ax, axis, label=ax is axes[-1])
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*legend_entries(ax)):
            handles.setdefault(lab, h)
    axes[0].legend(list(handles.values()), list(handles.keys()), loc="upper left",
                   bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, borderaxespad=0.0)
    more = f" (showing the {len(shown)} most tampered of {len(pairs)})" if len(pairs) > len(shown) else ""
    fig.suptitle(f"Measurements: true value vs. value seen by the controller{more}")
    return fig
