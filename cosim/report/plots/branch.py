"""Branch loading: the most loaded line and transformer per step against the 100 % rating."""

from __future__ import annotations

from matplotlib.figure import Figure

from cosim.report.data import ReportData, entity_columns, float_matrix
from cosim.report.plots.figures import at_text, extreme, format_time_axis, legend, nan_stats, new_figure, shade
from cosim.report.plots.registry import plot


@plot("branch-loading", "Branch loading", order=30, missing="no line/trafo loading columns")
def plot_branch_loading(d: ReportData) -> Figure | None:
    """Highest line and transformer loading over time, with the 100 % limit."""
    axis, ts, spans = d.axis, d.ts, d.spans
    series = [(kind, entity_columns(ts, kind)) for kind in ("line", "trafo")]
    series = [(k, cols) for k, cols in series if cols]
    if not series or not len(ts):
        return None
    fig, (ax,) = new_figure(3.4)
    shade(ax, spans)
    for (kind, cols), colour in zip(series, ("tab:purple", "tab:brown")):
        m = float_matrix(ts, [c for _, c in cols])
        _, _, mx = nan_stats(m)
        peak = extreme(m, False)
        extra = f" (peak {peak[2]:.0f} % on {kind} {at_text(axis, [i for i, _ in cols], peak)})" if peak else ""
        name = ("line" if kind == "line" else "transformer") + ("s" if len(cols) > 1 else "")
        ax.plot(axis.x, mx, color=colour, lw=1.4, label=f"max over {len(cols)} {name}{extra}")
    ax.axhline(100.0, color="black", ls="--", lw=1.0, label="100 % rating")
    ax.set_title("Branch loading (most loaded line / transformer per step)")
    ax.set_ylabel("Loading (%)")
    ax.set_ylim(bottom=0.0)
    ax.grid(True, alpha=0.3)
    format_time_axis(ax, axis)
    legend(ax)
    return fig
