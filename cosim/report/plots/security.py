"""Security plots: what the controller saw against the true values (the detectors are in `detection`)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from cosim.report.data import ReportData, attack_spans, numeric, seen_pairs, signal_unit
from cosim.report.plots.figures import format_time_axis, legend_entries, new_figure, shade
from cosim.report.plots.registry import plot

MAX_SEEN_PLOTS = 6


@plot("seen-vs-true", "Seen vs. true", order=70)
def plot_seen_vs_true(d: ReportData) -> Figure | None:
    """True signal against what a controller saw, for up to MAX_SEEN_PLOTS signals."""
    axis, ts, spans = d.axis, d.ts, d.spans
    pairs = seen_pairs(ts)
    if not pairs or not len(ts):
        return None
    shown = pairs[:MAX_SEEN_PLOTS]
    attack = attack_spans(d.attack, axis)
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
