"""Figure helpers shared by the plots: stacked axes, event shading, legends, time ticks, PNG data URIs.

Every plot is a `matplotlib.figure.Figure` rendered by the Agg canvas (never pyplot, so no
global figure registry and no GUI backend), embedded as a base64 ``data:`` URI.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cosim.report.data import DPI, FIG_WIDTH_IN, Span, TimeAxis, fmt_x


def shade(ax: Axes, spans: Sequence[Span], strip: bool = False) -> None:
    """Shade spans on ``ax``: full height, or as a thin strip along the top (for heat maps)."""
    ymin = 0.955 if strip else 0.0
    for s in spans:
        if s.x1 <= s.x0:
            ax.axvline(s.x0, ymin=ymin, color=s.colour, lw=1.5, label=s.label, zorder=0.5)
            continue
        ax.axvspan(s.x0, s.x1, ymin=ymin, facecolor=to_rgba(s.colour, 0.9 if strip else s.alpha),
                   edgecolor=to_rgba(s.colour, 0.7) if s.hatch else "none", hatch=s.hatch,
                   lw=0, label=s.label, zorder=3 if strip else 0.5)
        if strip and not s.hatch:  # mark event bounds across the whole heat map
            for xb in (s.x0, s.x1):
                ax.axvline(xb, color=s.colour, ls="--", lw=1.0, alpha=0.9, zorder=3)


def new_figure(height_in: float, nrows: int = 1) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure with ``nrows`` stacked axes sharing the time axis."""
    fig = Figure(figsize=(FIG_WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def legend_entries(ax: Axes) -> tuple[list[Any], list[str]]:
    """Legend handles and labels of ``ax`` with duplicate labels removed."""
    seen: dict[str, Any] = {}
    for h, lab in zip(*ax.get_legend_handles_labels()):
        if lab and not lab.startswith("_"):
            seen.setdefault(lab, h)
    return list(seen.values()), list(seen.keys())


def legend(ax: Axes) -> None:
    """Legend outside the axes, on the right, without duplicate labels."""
    handles, labels = legend_entries(ax)
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize="small", frameon=False, borderaxespad=0.0)


def format_time_axis(ax: Axes, axis: TimeAxis, label: bool = True) -> None:
    """Clock-time ticks, common x limits and the x label."""
    ax.set_xlim(axis.lo, axis.hi)
    if not axis.is_date:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if label:
            ax.set_xlabel("Step (no time column)")
        return
    first, last = mdates.num2date(axis.x[0]), mdates.num2date(axis.x[-1])
    tz = f", {axis.tz}" if axis.tz is not None else ""
    loc = mdates.AutoDateLocator(minticks=5, maxticks=14)
    ax.xaxis.set_major_locator(loc)
    if first.date() == last.date():
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        text = f"Time of day, hh:mm ({first:%Y-%m-%d}{tz})"
    else:
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        text = f"Time ({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}{tz})"
    if label:
        ax.set_xlabel(text)


def figure_to_data_uri(fig: Figure) -> str:
    """Render ``fig`` to PNG (Agg) and return it as a base64 data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def nan_stats(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise NaN-ignoring min, mean, max (NaN for all-NaN rows, no warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(m, axis=1), np.nanmean(m, axis=1), np.nanmax(m, axis=1)


def at_text(axis: TimeAxis, ids: Sequence[str], hit: tuple[int, int, float]) -> str:
    """``<id> at <clock time>`` for a (row, column, value) hit of `extreme`."""
    return f"{ids[hit[1]]} at {fmt_x(axis, axis.x[hit[0]])}"


def extreme(m: np.ndarray, lowest: bool) -> tuple[int, int, float] | None:
    """(row, column, value) of the lowest or highest finite entry of ``m``."""
    finite = np.isfinite(m)
    if not finite.any():
        return None
    flat = np.where(finite, m, np.inf if lowest else -np.inf)
    r, c = np.unravel_index(int(flat.argmin() if lowest else flat.argmax()), m.shape)
    return int(r), int(c), float(m[r, c])
