"""Self-contained HTML report of one co-simulation run: plots as embedded PNGs, events, KPIs.

`write_report` is the only public entry point. Every plot is a `matplotlib.figure.Figure`
rendered by the Agg canvas (never pyplot, so no global figure registry and no GUI backend),
embedded as a base64 ``data:`` URI; the page loads nothing from outside.

Conventions shared by all time plots: sample ``i`` stands for the interval
``[x[i] - step/2, x[i] + step/2]`` (so non-converged steps and heat-map cells line up),
events are shaded over their ``[start, end)`` interval, all times are wall-clock time.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import numbers
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, to_hex, to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

__all__ = ["write_report"]

log = logging.getLogger(__name__)

MAX_HEATMAP_BUSES = 400
MAX_HEATMAP_STEPS = 2000
MAX_EVENT_ROWS = 200
MAX_SEEN_PLOTS = 6
MAX_GENERATOR_LINES = 8
MAX_SPANS_PER_KIND = 300
MAX_META_CHARS = 300
FIG_WIDTH_IN = 11.0
DPI = 100
DEFAULT_STEP_DAYS = 15.0 / (24 * 60)

_ENTITY_RE = {
    kind: re.compile(rf"^{kind}\.([^.]+)\.{attr}$")
    for kind, attr in (("bus", "vm_pu"), ("line", "loading_pct"), ("trafo", "loading_pct"))
}
_RESERVED_ENTITIES = {"bus", "line", "trafo", "grid", "seen", "label", "time"}
_UNITS = {"pu": "pu", "pct": "%", "ka": "kA", "mw": "MW", "mvar": "Mvar", "kw": "kW",
          "kvar": "kvar", "kwh": "kWh", "mwh": "MWh", "v": "V", "kv": "kV", "a": "A"}
# tab10 without its grey (reserved for non-converged steps)
# event shading colours, chosen apart from the line colours used in the plots
_EVENT_COLOURS = ["goldenrod", "mediumorchid", "lightseagreen", "hotpink", "yellowgreen",
                  "steelblue", "sandybrown", "slateblue", "darkkhaki"]
_NONCONV_COLOUR = "0.35"
_ATTACK_COLOUR = "crimson"
_NONCONV_KINDS = {"nonconverged", "notconverged", "nonconvergence", "divergence", "diverged"}
_STATUS_CLASS = {"ok": "ok", "success": "ok", "done": "ok", "failed": "bad", "error": "bad"}


@dataclass(frozen=True)
class _TimeAxis:
    """x positions of the steps (matplotlib date numbers or step indices) and their spacing."""

    x: np.ndarray
    is_date: bool
    step: float
    tz: Any = None

    @property
    def lo(self) -> float:
        """Left x limit of every time plot."""
        return float(self.x[0] - self.step / 2)

    @property
    def hi(self) -> float:
        """Right x limit of every time plot."""
        return float(self.x[-1] + self.step / 2)


@dataclass(frozen=True)
class _Span:
    """One shaded x interval on time plots."""

    x0: float
    x1: float
    label: str
    colour: str
    hatch: str | None = None
    alpha: float = 0.25


# ----------------------------------------------------------------------------- data helpers


def _natural_key(label: str) -> tuple[int, float, str]:
    """Sort key putting numeric ids in numeric order before other ids."""
    return (0, float(label), "") if label.isdigit() else (1, 0.0, label)


def _entity_columns(ts: pd.DataFrame, kind: str) -> list[tuple[str, str]]:
    """(id, column) pairs of ``<kind>.<id>.<attr>`` columns, in natural id order."""
    rx = _ENTITY_RE[kind]
    found = [(m.group(1), c) for c in ts.columns if (m := rx.match(str(c)))]
    return sorted(found, key=lambda p: _natural_key(p[0]))


def _numeric(ts: pd.DataFrame, col: str) -> np.ndarray:
    """Column as a float array (non-numbers become NaN)."""
    return pd.to_numeric(ts[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _matrix(ts: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Columns as a (steps x columns) float array."""
    if not cols:
        return np.empty((len(ts), 0))
    try:
        return ts[list(cols)].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        return np.column_stack([_numeric(ts, c) for c in cols])


def _naive_times(values: Any, tz: Any = None) -> pd.Series:
    """Datetimes as naive wall-clock times (in ``tz`` if given, else in their own zone)."""
    s = pd.Series(values)
    try:
        s = pd.to_datetime(s, errors="coerce")
    except (TypeError, ValueError):
        s = pd.to_datetime(s, errors="coerce", utc=True)
    if not pd.api.types.is_datetime64_any_dtype(s):
        s = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if s.dt.tz is not None:
        s = s.dt.tz_convert(tz if tz is not None else s.dt.tz).dt.tz_localize(None)
    return s


def _prepare_timeseries(timeseries: Any) -> pd.DataFrame:
    """The time series as a DataFrame sorted by time (input left untouched)."""
    ts = timeseries if isinstance(timeseries, pd.DataFrame) else pd.DataFrame(timeseries)
    if "time" in ts.columns and len(ts) > 1:
        t = _naive_times(ts["time"], getattr(ts["time"].dtype, "tz", None))
        if not t.is_monotonic_increasing:
            ts = ts.iloc[np.argsort(t.to_numpy(), kind="stable")]
    return ts


def _time_axis(ts: pd.DataFrame) -> _TimeAxis:
    """x positions for the rows of ``ts``: clock times if a usable ``time`` column exists."""
    n = len(ts)
    if n and "time" in ts.columns:
        tz = getattr(ts["time"].dtype, "tz", None)
        t = _naive_times(ts["time"], tz)
        if t.notna().all():
            x = np.asarray(mdates.date2num(t.to_numpy(dtype="datetime64[ns]")), dtype=float)
            return _TimeAxis(x, True, _typical_step(x, DEFAULT_STEP_DAYS), tz)
    x = np.arange(n, dtype=float)
    return _TimeAxis(x, False, 1.0)


def _typical_step(x: np.ndarray, default: float) -> float:
    """Median positive spacing of ``x`` (``default`` for fewer than two points)."""
    d = np.diff(x)
    d = d[d > 0]
    return float(np.median(d)) if d.size else default


def _voltage_limits(meta: dict) -> tuple[float, float] | None:
    """(low, high) voltage limits in pu from ``meta``, or None if absent or malformed."""
    try:
        lo, hi = (float(v) for v in meta.get("voltage_limits"))
    except (TypeError, ValueError):
        return None
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _unit(signal: str) -> str:
    """Unit of a signal from its attribute suffix (``bus.3.vm_pu`` -> ``pu``)."""
    return _UNITS.get(str(signal).rsplit("_", 1)[-1].lower(), "")


def _fmt_x(axis: _TimeAxis, x: float, with_date: bool = False) -> str:
    """A position on the time axis as clock time (or step number)."""
    if not axis.is_date:
        return f"step {int(round(x))}"
    return mdates.num2date(x).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True values in ``mask``."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _downsample_extreme(matrix: np.ndarray, factor: int, axis: int, centre: float = 1.0) -> np.ndarray:
    """Shrink ``axis`` by blocks of ``factor``, keeping per block the value farthest from ``centre``."""
    if factor <= 1 or matrix.shape[axis] == 0:
        return matrix
    m = np.moveaxis(matrix, axis, 0)
    nblocks = -(-m.shape[0] // factor)
    pad = nblocks * factor - m.shape[0]
    if pad:
        m = np.concatenate([m, np.full((pad, *m.shape[1:]), np.nan)], axis=0)
    blocks = m.reshape((nblocks, factor, *m.shape[1:]))
    dev = np.abs(blocks - centre)
    dev[np.isnan(dev)] = -1.0
    pick = np.expand_dims(dev.argmax(axis=1), 1)
    return np.moveaxis(np.take_along_axis(blocks, pick, axis=1)[:, 0], 0, axis)


# ----------------------------------------------------------------------------- events & shading


def _normalise_events(events: Any, tz: Any) -> pd.DataFrame:
    """Events as start/end (naive datetimes), kind/target (str), sorted by start."""
    out = pd.DataFrame({"start": pd.Series([], dtype="datetime64[ns]"),
                        "end": pd.Series([], dtype="datetime64[ns]"),
                        "kind": pd.Series([], dtype=object), "target": pd.Series([], dtype=object)})
    if not isinstance(events, pd.DataFrame) or events.empty:
        return out
    n = len(events)
    cols: dict[str, Any] = {}
    for c in ("start", "end"):
        cols[c] = (_naive_times(events[c].to_numpy(), tz).to_numpy(dtype="datetime64[ns]")
                   if c in events.columns else np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"))
    for c in ("kind", "target"):
        cols[c] = (events[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                                 else str(v)).to_numpy(dtype=object)
                   if c in events.columns else np.full(n, "", dtype=object))
    out = pd.DataFrame(cols)
    return out.sort_values("start", kind="stable", na_position="last").reset_index(drop=True)


def _kind_colours(kinds: Iterable[str]) -> dict[str, str]:
    """A fixed colour per event kind (alphabetical assignment, so stable across runs)."""
    return {k: _EVENT_COLOURS[i % len(_EVENT_COLOURS)] for i, k in enumerate(sorted(set(kinds)))}


def _merge(intervals: list[tuple[float, float]], gap: float = 0.0) -> list[tuple[float, float]]:
    """Union of intervals that overlap or lie at most ``gap`` apart."""
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1] + gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _event_spans(ev: pd.DataFrame, axis: _TimeAxis, colours: dict[str, str]) -> list[_Span]:
    """Shaded intervals of the events, merged per kind (none without a clock-time axis)."""
    if not axis.is_date or ev.empty or not len(axis.x):
        return []
    spans: list[_Span] = []
    for kind, grp in ev.groupby("kind", sort=True):
        grp = grp[grp["start"].notna()]
        if grp.empty:
            continue
        start = grp["start"].to_numpy(dtype="datetime64[ns]")
        end = grp["end"].to_numpy(dtype="datetime64[ns]")
        open_ended = np.isnat(end)
        x0 = np.asarray(mdates.date2num(start), dtype=float)
        x1 = np.asarray(mdates.date2num(np.where(open_ended, start, end)), dtype=float)
        x1[open_ended] = axis.hi
        pairs = [(float(min(a, b)), float(max(a, b))) for a, b in zip(x0, x1)]
        merged = _merge(pairs)
        if len(merged) > MAX_SPANS_PER_KIND:  # gaps narrower than ~1 px are invisible anyway
            merged = _merge(merged, gap=(axis.hi - axis.lo) / (FIG_WIDTH_IN * DPI))
        spans += [_Span(a, b, f"event: {kind or 'unnamed'}", colours[kind], None, 0.25) for a, b in merged]
    return spans


def _mask_spans(mask: np.ndarray, axis: _TimeAxis, label: str, colour: str, hatch: str | None,
                alpha: float) -> list[_Span]:
    """Shaded intervals over the runs of steps where ``mask`` is True."""
    h = axis.step / 2
    return [_Span(float(axis.x[a] - h), float(axis.x[b] + h), label, colour, hatch, alpha)
            for a, b in _runs(mask)]


def _nonconverged_spans(ts: pd.DataFrame, axis: _TimeAxis, vm: np.ndarray) -> list[_Span]:
    """Steps whose power flow did not converge (``grid.converged == 0``; else: no bus voltage at all)."""
    if "grid.converged" in ts.columns:
        mask = _numeric(ts, "grid.converged") == 0
        label = "power flow not converged"
    elif vm.size:
        mask = np.isnan(vm).all(axis=1)
        label = "no voltage result"
    else:
        return []
    return _mask_spans(mask, axis, label, _NONCONV_COLOUR, "//", 0.28)


def _all_spans(ts: pd.DataFrame, axis: _TimeAxis, ev: pd.DataFrame, colours: dict[str, str],
               vm: np.ndarray) -> list[_Span]:
    """Event spans plus non-converged spans; "nonconverged" events are not shaded twice."""
    nonconv = _nonconverged_spans(ts, axis, vm)
    if "grid.converged" in ts.columns:
        same = ev["kind"].map(lambda k: re.sub(r"[^a-z]", "", k.lower()) in _NONCONV_KINDS)
        ev = ev[~same.astype(bool)]
    return _event_spans(ev, axis, colours) + nonconv


def _shade(ax: Axes, spans: Sequence[_Span], strip: bool = False) -> None:
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


# ----------------------------------------------------------------------------- figure helpers


def _new_figure(height_in: float, nrows: int = 1) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure with ``nrows`` stacked axes sharing the time axis."""
    fig = Figure(figsize=(FIG_WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def _legend_entries(ax: Axes) -> tuple[list[Any], list[str]]:
    """Legend handles and labels of ``ax`` with duplicate labels removed."""
    seen: dict[str, Any] = {}
    for h, lab in zip(*ax.get_legend_handles_labels()):
        if lab and not lab.startswith("_"):
            seen.setdefault(lab, h)
    return list(seen.values()), list(seen.keys())


def _legend(ax: Axes) -> None:
    """Legend outside the axes, on the right, without duplicate labels."""
    handles, labels = _legend_entries(ax)
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize="small", frameon=False, borderaxespad=0.0)


def _format_time_axis(ax: Axes, axis: _TimeAxis, label: bool = True) -> None:
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


def _figure_to_data_uri(fig: Figure) -> str:
    """Render ``fig`` to PNG (Agg) and return it as a base64 data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _nan_stats(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise NaN-ignoring min, mean, max (NaN for all-NaN rows, no warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(m, axis=1), np.nanmean(m, axis=1), np.nanmax(m, axis=1)


def _at(axis: _TimeAxis, ids: Sequence[str], hit: tuple[int, int, float]) -> str:
    """``<id> at <clock time>`` for a (row, column, value) hit of `_extreme`."""
    return f"{ids[hit[1]]} at {_fmt_x(axis, axis.x[hit[0]])}"


def _extreme(m: np.ndarray, lowest: bool) -> tuple[int, int, float] | None:
    """(row, column, value) of the lowest or highest finite entry of ``m``."""
    finite = np.isfinite(m)
    if not finite.any():
        return None
    flat = np.where(finite, m, np.inf if lowest else -np.inf)
    r, c = np.unravel_index(int(flat.argmin() if lowest else flat.argmax()), m.shape)
    return int(r), int(c), float(m[r, c])


# ----------------------------------------------------------------------------- plots


def plot_voltage_envelope(axis: _TimeAxis, vm: np.ndarray, bus_ids: Sequence[str],
                          limits: tuple[float, float] | None, spans: Sequence[_Span]) -> Figure | None:
    """Min / mean / max bus voltage over time, with the voltage limits dashed."""
    if vm.shape[1] == 0 or vm.shape[0] == 0:
        return None
    vmin, vmean, vmax = _nan_stats(vm)
    fig, (ax,) = _new_figure(3.8)
    _shade(ax, spans)
    low, high = _extreme(vm, True), _extreme(vm, False)
    lo_txt = f" (lowest {low[2]:.3f} pu, bus {_at(axis, bus_ids, low)})" if low else ""
    hi_txt = f" (highest {high[2]:.3f} pu, bus {_at(axis, bus_ids, high)})" if high else ""
    ax.fill_between(axis.x, vmin, vmax, color="tab:blue", alpha=0.12, lw=0, label="_band")
    ax.plot(axis.x, vmax, color="tab:red", lw=1.4, label="max over buses" + hi_txt)
    ax.plot(axis.x, vmean, color="tab:blue", lw=1.2, label="mean over buses")
    ax.plot(axis.x, vmin, color="navy", lw=1.4, label="min over buses" + lo_txt)
    if limits:
        for v in limits:
            ax.axhline(v, color="black", ls="--", lw=1.0, label=f"limits {limits[0]:g} / {limits[1]:g} pu")
    ax.set_title(f"Bus voltage envelope ({vm.shape[1]} buses)")
    ax.set_ylabel("Voltage magnitude (pu)")
    ax.grid(True, alpha=0.3)
    _format_time_axis(ax, axis)
    _legend(ax)
    return fig


def plot_voltage_heatmap(axis: _TimeAxis, vm: np.ndarray, bus_ids: Sequence[str],
                         limits: tuple[float, float] | None, spans: Sequence[_Span]) -> Figure | None:
    """Bus x time heat map of the voltage, diverging colours centred on 1.0 pu."""
    if vm.shape[1] == 0 or vm.shape[0] == 0:
        return None
    bus_factor = max(1, -(-vm.shape[1] // MAX_HEATMAP_BUSES))
    step_factor = max(1, -(-vm.shape[0] // MAX_HEATMAP_STEPS))
    img = _downsample_extreme(_downsample_extreme(vm, step_factor, 0), bus_factor, 1).T
    limit_dev = max((abs(v - 1.0) for v in limits), default=0.05) if limits else 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        data_dev = float(np.nanmax(np.abs(img - 1.0))) if np.isfinite(img).any() else 0.0
    half = min(max(data_dev, limit_dev, 1e-3), 3 * max(limit_dev, 1e-3))
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.75")
    fig, (ax,) = _new_figure(4.6 if img.shape[0] > 40 else 4.0)
    im = ax.imshow(img, aspect="auto", origin="lower", interpolation="nearest", cmap=cmap,
                   norm=Normalize(1.0 - half, 1.0 + half),
                   extent=(axis.lo, axis.hi, -0.5, img.shape[0] - 0.5))
    nrows = img.shape[0]
    ax.yaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, _pos: bus_ids[int(round(v)) * bus_factor] if 0 <= round(v) < nrows else ""))
    _shade(ax, spans, strip=True)
    cbar = fig.colorbar(im, ax=ax, extend="both" if data_dev > half else "neither", pad=0.01)
    cbar.set_label("Voltage magnitude (pu)")
    if limits:
        for v in limits:
            cbar.ax.axhline(v, color="black", lw=1.5)
    parts = []
    if bus_factor > 1:
        parts.append(f"blocks of {bus_factor} buses")
    if step_factor > 1:
        parts.append(f"blocks of {step_factor} steps")
    note = f"; {', '.join(parts)}, most extreme value shown" if parts else ""
    ax.set_title(f"Bus voltage heat map ({vm.shape[1]} buses{note}; grey = no value)")
    ax.set_ylabel("Bus" + (f" (first of each block of {bus_factor})" if bus_factor > 1 else ""))
    _format_time_axis(ax, axis)
    handles, labels = _legend_entries(ax)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
                   fontsize="small", frameon=False)
    return fig


def plot_losses(axis: _TimeAxis, ts: pd.DataFrame, spans: Sequence[_Span]) -> Figure | None:
    """Grid losses over time."""
    if "grid.loss_kw" not in ts.columns or not len(ts):
        return None
    loss = _numeric(ts, "grid.loss_kw")
    fig, (ax,) = _new_figure(3.2)
    _shade(ax, spans)
    ax.fill_between(axis.x, 0, loss, color="firebrick", alpha=0.1, lw=0)
    ax.plot(axis.x, loss, color="firebrick", lw=1.4, label="active power losses")
    ax.set_title("Grid losses")
    ax.set_ylabel("Losses (kW)")
    ax.set_ylim(bottom=min(0.0, float(np.nanmin(loss)) if np.isfinite(loss).any() else 0.0))
    ax.grid(True, alpha=0.3)
    _format_time_axis(ax, axis)
    _legend(ax)
    return fig


def _generator_names(ts: pd.DataFrame, meta: dict) -> list[str]:
    """Generators with a ``<name>.p_mw`` column: those in ``meta`` first, else detected ones."""
    listed = meta.get("generators") or []
    if isinstance(listed, str):
        listed = [listed]
    names = [str(n) for n in listed if f"{n}.p_mw" in ts.columns]
    if names or listed:
        return names
    return [c[: -len(".p_mw")] for c in map(str, ts.columns)
            if c.endswith(".p_mw") and c.split(".", 1)[0] not in _RESERVED_ENTITIES]


def _sum_columns(ts: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Row sums of ``cols`` (NaN where all of them are NaN)."""
    return pd.DataFrame(_matrix(ts, cols)).sum(axis=1, min_count=1).to_numpy(dtype=float)


def plot_generation_load(axis: _TimeAxis, ts: pd.DataFrame, meta: dict,
                         spans: Sequence[_Span]) -> Figure | None:
    """Total load against injected (and available) generator power, and the external-grid exchange."""
    gens = _generator_names(ts, meta)
    have = [c for c in ("grid.load_p_mw", "grid.gen_p_mw", "grid.ext_p_mw") if c in ts.columns]
    if not len(ts) or not (gens or have):
        return None
    fig, (ax,) = _new_figure(4.0)
    _shade(ax, spans)
    x = axis.x
    if "grid.load_p_mw" in ts.columns:
        ax.plot(x, _numeric(ts, "grid.load_p_mw"), color="black", lw=2.0, label="load (total)")
    if "grid.gen_p_mw" in ts.columns:
        ax.plot(x, _numeric(ts, "grid.gen_p_mw"), color="tab:green", lw=2.0, label="generation (total)")
    elif len(gens) > 1:
        ax.plot(x, _sum_columns(ts, [f"{g}.p_mw" for g in gens]), color="tab:green", lw=2.0,
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
        p = _sum_columns(ts, pcols)
        ax.plot(x, p, color=c, lw=1.4, label=f"{name} injected")
        if acols:
            avail = _sum_columns(ts, acols)
            ax.plot(x, avail, color=c, lw=1.2, ls="--", label=f"{name} available")
            ax.fill_between(x, p, avail, where=np.nan_to_num(avail - p) > 1e-9, color=c, alpha=0.18,
                            lw=0, label="curtailed (shaded)")
    if "grid.ext_p_mw" in ts.columns:
        ax.plot(x, _numeric(ts, "grid.ext_p_mw"), color="0.4", lw=1.2, ls=":",
                label="external grid (+ import / − export)")
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_title("Generation and load")
    ax.set_ylabel("Active power (MW)")
    ax.grid(True, alpha=0.3)
    _format_time_axis(ax, axis)
    _legend(ax)
    return fig


def plot_branch_loading(axis: _TimeAxis, ts: pd.DataFrame, spans: Sequence[_Span]) -> Figure | None:
    """Highest line and transformer loading over time, with the 100 % limit."""
    series = [(kind, _entity_columns(ts, kind)) for kind in ("line", "trafo")]
    series = [(k, cols) for k, cols in series if cols]
    if not series or not len(ts):
        return None
    fig, (ax,) = _new_figure(3.4)
    _shade(ax, spans)
    for (kind, cols), colour in zip(series, ("tab:purple", "tab:brown")):
        m = _matrix(ts, [c for _, c in cols])
        _, _, mx = _nan_stats(m)
        peak = _extreme(m, False)
        extra = f" (peak {peak[2]:.0f} % on {kind} {_at(axis, [i for i, _ in cols], peak)})" if peak else ""
        name = ("line" if kind == "line" else "transformer") + ("s" if len(cols) > 1 else "")
        ax.plot(axis.x, mx, color=colour, lw=1.4, label=f"max over {len(cols)} {name}{extra}")
    ax.axhline(100.0, color="black", ls="--", lw=1.0, label="100 % rating")
    ax.set_title("Branch loading (most loaded line / transformer per step)")
    ax.set_ylabel("Loading (%)")
    ax.set_ylim(bottom=0.0)
    ax.grid(True, alpha=0.3)
    _format_time_axis(ax, axis)
    _legend(ax)
    return fig


def _seen_pairs(ts: pd.DataFrame) -> list[tuple[str, float]]:
    """Signals with a ``seen.`` column, most tampered (largest |seen - true|) first."""
    pairs = []
    for c in map(str, ts.columns):
        if c.startswith("seen.") and len(c) > 5:
            sig = c[5:]
            diff = 0.0
            if sig in ts.columns:
                d = np.abs(_numeric(ts, c) - _numeric(ts, sig))
                diff = float(np.nanmax(d)) if np.isfinite(d).any() else 0.0
            pairs.append((sig, diff))
    return sorted(pairs, key=lambda p: -p[1])


def plot_seen_vs_true(axis: _TimeAxis, ts: pd.DataFrame, spans: Sequence[_Span]) -> Figure | None:
    """True signal against what a controller saw, for up to MAX_SEEN_PLOTS signals."""
    pairs = _seen_pairs(ts)
    if not pairs or not len(ts):
        return None
    shown = pairs[:MAX_SEEN_PLOTS]
    attack = []
    if "label.attack" in ts.columns:
        attack = _mask_spans(_numeric(ts, "label.attack") >= 0.5, axis, "attack active (label)",
                             _ATTACK_COLOUR, "\\\\", 0.08)
    fig, axes = _new_figure(0.6 + 1.9 * len(shown), nrows=len(shown))
    for ax, (sig, diff) in zip(axes, shown):
        _shade(ax, [*spans, *attack])
        if sig in ts.columns:
            ax.plot(axis.x, _numeric(ts, sig), color="tab:blue", lw=1.6, label="true value")
        ax.plot(axis.x, _numeric(ts, f"seen.{sig}"), color="tab:red", lw=1.2, ls="--",
                marker="." if len(ts) <= 200 else None, ms=3, label="seen by controller")
        unit = _unit(sig)
        txt = (f"max |seen − true| = {diff:.4g} {unit}".rstrip() if sig in ts.columns
               else "true value not recorded")
        ax.set_title(f"{sig}: {txt}", fontsize="medium", loc="left")
        ax.set_ylabel(f"Value ({unit})" if unit else "Value")
        ax.grid(True, alpha=0.3)
        _format_time_axis(ax, axis, label=ax is axes[-1])
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*_legend_entries(ax)):
            handles.setdefault(lab, h)
    axes[0].legend(list(handles.values()), list(handles.keys()), loc="upper left",
                   bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, borderaxespad=0.0)
    more = f" (showing the {len(shown)} most tampered of {len(pairs)})" if len(pairs) > len(shown) else ""
    fig.suptitle(f"Measurements: true value vs. value seen by the controller{more}")
    return fig


def plot_detector(axis: _TimeAxis, ts: pd.DataFrame, spans: Sequence[_Span]) -> Figure | None:
    """Detector score (J over its chi-square threshold) with alarms, over the labelled attack steps."""
    if "detector.score" not in ts.columns or not len(ts):
        return None
    fig, (ax,) = _new_figure(3.4)
    attack = []
    if "label.attack" in ts.columns:
        attack = _mask_spans(_numeric(ts, "label.attack") >= 0.5, axis, "attack active (label)",
                             _ATTACK_COLOUR, "\\\\", 0.08)
    _shade(ax, [*spans, *attack])
    score = _numeric(ts, "detector.score")
    ax.plot(axis.x, score, color="tab:purple", lw=1.0, label="score = J / chi-square threshold")
    ax.axhline(1.0, color="black", ls="--", lw=1.0, label="alarm threshold")
    if "detector.alarm" in ts.columns:
        hit = _numeric(ts, "detector.alarm") >= 0.5
        ax.plot(axis.x[hit], score[hit], ls="none", marker="v", ms=4, color="crimson", label="alarm")
    if np.nanmax(score, initial=0.0) > 20:
        ax.set_yscale("log")
    ax.set_ylabel("Score")
    ax.grid(True, alpha=0.3)
    _format_time_axis(ax, axis)
    _legend(ax)
    fig.suptitle("State-estimation detector")
    return fig


# ----------------------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def _fmt_number(value: Any) -> str:
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


def _fmt_time(t: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` (dash if missing)."""
    return "–" if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_duration(start: Any, end: Any) -> str:
    """end - start as ``[Nd ]H:MM:SS`` (dash if either is missing)."""
    if pd.isna(start) or pd.isna(end):
        return "–"
    secs = int(round((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()))
    sign, secs = ("−" if secs < 0 else ""), abs(secs)
    days, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{f'{days}d ' if days else ''}{h}:{m:02d}:{s:02d}"


def _meta_rows(meta: dict, ts: pd.DataFrame, axis: _TimeAxis, n_buses: int) -> list[tuple[str, str]]:
    """(label, escaped value HTML) rows of the report header."""
    limits = meta.get("voltage_limits")
    try:
        limits_txt = " – ".join(f"{float(v):g}" for v in limits) + " pu"
    except (TypeError, ValueError):
        limits_txt = "n/a" if limits is None else str(limits)
    gens = meta.get("generators") or []
    gens_txt = ", ".join(map(str, [gens] if isinstance(gens, str) else gens)) or "none"
    rows = [("Scenario", _e(meta.get("name", "n/a"))), ("Feeder", _e(meta.get("feeder", "n/a"))),
            ("Seed", _e(meta.get("seed", "n/a"))), ("Voltage limits", _e(limits_txt)),
            ("Generators", _e(gens_txt))]
    if len(ts) and axis.is_date:
        step_min = axis.step * 24 * 60
        period = f"{_fmt_x(axis, axis.x[0], True)} to {_fmt_x(axis, axis.x[-1], True)}"
        rows.append(("Simulated period", _e(f"{period} · {len(ts)} steps of {step_min:g} min")))
    else:
        rows.append(("Steps", _e(len(ts))))
    if n_buses:
        rows.append(("Buses with voltage results", _e(n_buses)))
    known = {"name", "seed", "feeder", "voltage_limits", "status", "generators", "message"}
    for k, v in meta.items():
        if k not in known:
            txt = str(v)
            rows.append((_e(k), _e(txt if len(txt) <= MAX_META_CHARS else txt[:MAX_META_CHARS] + " …")))
    return rows


def _events_table(ev: pd.DataFrame, colours: dict[str, str]) -> str:
    """HTML table of the events (at most MAX_EVENT_ROWS rows)."""
    if ev.empty:
        return "<p class=\"muted\">No events.</p>"
    rows = []
    for r in ev.head(MAX_EVENT_ROWS).itertuples(index=False):
        swatch = f"<span class=\"swatch\" style=\"background:{_e(to_hex(colours[r.kind]))}\"></span>"
        rows.append(f"<tr><td>{_fmt_time(r.start)}</td><td>{_fmt_time(r.end)}</td>"
                    f"<td class=\"num\">{_fmt_duration(r.start, r.end)}</td>"
                    f"<td>{swatch}{_e(r.kind)}</td><td>{_e(r.target)}</td></tr>")
    more = len(ev) - MAX_EVENT_ROWS
    note = f"<p class=\"muted\">… and {more} more events not listed.</p>" if more > 0 else ""
    return ("<table><thead><tr><th>Start</th><th>End</th><th>Duration</th><th>Kind</th><th>Target</th>"
            "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>" + note)


def _metrics_table(metrics: dict[str, Any]) -> str:
    """HTML table of all KPIs, in the given order."""
    if not metrics:
        return "<p class=\"muted\">No KPIs.</p>"
    rows = "\n".join(f"<tr><td>{_e(k)}</td><td class=\"num\">{_e(_fmt_number(v))}</td></tr>"
                     for k, v in metrics.items())
    return f"<table><thead><tr><th>KPI</th><th>Value</th></tr></thead><tbody>\n{rows}\n</tbody></table>"


_CSS = """
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


def _render_html(meta: dict, meta_rows: list[tuple[str, str]], figures: list[tuple[str, str, str]],
                 notes: list[str], events_html: str, metrics_html: str) -> str:
    """The whole page; ``meta_rows``/``events_html``/``metrics_html`` are already escaped."""
    name = meta.get("name", "unnamed scenario")
    status = str(meta.get("status", "unknown"))
    cls = _STATUS_CLASS.get(status.lower(), "other")
    message = meta.get("message")
    msg_html = f"<div class=\"message {cls}\">{_e(message)}</div>" if message else ""
    rows = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in meta_rows)
    nav = " ".join(f"<a href=\"#{a}\">{_e(cap)}</a>" for a, cap, _ in figures)
    nav += " <a href=\"#events\">Events</a> <a href=\"#kpis\">KPIs</a>"
    figs = "\n".join(f"<figure id=\"{a}\"><img alt=\"{_e(cap)}\" src=\"{uri}\"></figure>"
                     for a, cap, uri in figures)
    notes_html = "".join(f"<li>{_e(n)}</li>" for n in notes)
    notes_html = f"<ul class=\"muted\">{notes_html}</ul>" if notes else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Co-simulation report: {_e(name)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>Co-simulation report: {_e(name)} <span class="status {cls}">{_e(status)}</span></h1>
{msg_html}
<table class="meta"><tbody>
{rows}
</tbody></table>
<nav>{nav}</nav>
</header>
<section id="plots">
<h2>Plots</h2>
{figs if figures else '<p class="muted">No plottable time series.</p>'}
{notes_html}
</section>
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


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------- entry point


def write_report(path: Path, timeseries: pd.DataFrame, events: pd.DataFrame,
                 metrics: dict[str, float], meta: dict) -> None:
    """Write one self-contained HTML report (plots, events, KPIs) of a run to ``path``, atomically."""
    path = Path(path)
    meta = dict(meta or {})
    ts = _prepare_timeseries(timeseries if timeseries is not None else pd.DataFrame())
    axis = _time_axis(ts)
    ev = _normalise_events(events, axis.tz)
    colours = _kind_colours(ev["kind"])
    limits = _voltage_limits(meta)
    buses = _entity_columns(ts, "bus")
    bus_ids = [b for b, _ in buses]
    vm = _matrix(ts, [c for _, c in buses])
    spans = _all_spans(ts, axis, ev, colours, vm)

    builders: list[tuple[str, str, Callable[[], Figure | None], str]] = [
        ("voltage-envelope", "Voltage envelope",
         lambda: plot_voltage_envelope(axis, vm, bus_ids, limits, spans), "no bus.*.vm_pu columns"),
        ("voltage-heatmap", "Voltage heat map",
         lambda: plot_voltage_heatmap(axis, vm, bus_ids, limits, spans), "no bus.*.vm_pu columns"),
        ("branch-loading", "Branch loading",
         lambda: plot_branch_loading(axis, ts, spans), "no line/trafo loading columns"),
        ("losses", "Losses", lambda: plot_losses(axis, ts, spans), "no grid.loss_kw column"),
        ("generation-load", "Generation and load",
         lambda: plot_generation_load(axis, ts, meta, spans), "no load or generator power columns"),
        ("detector", "Detector", lambda: plot_detector(axis, ts, spans), None),
        ("seen-vs-true", "Seen vs. true",
         lambda: plot_seen_vs_true(axis, ts, spans), None),
    ]
    figures: list[tuple[str, str, str]] = []
    notes: list[str] = []
    for anchor, caption, build, why_missing in builders:
        try:
            fig = build() if len(ts) else None
        except Exception as exc:  # a broken plot must not cost the rest of the report
            log.exception("report plot %r failed", caption)
            notes.append(f"{caption}: plot failed ({type(exc).__name__}: {exc})")
            continue
        if fig is None:
            if why_missing and len(ts):
                notes.append(f"{caption}: not shown ({why_missing}).")
            continue
        figures.append((anchor, caption, _figure_to_data_uri(fig)))
    if not len(ts):
        notes.append("The time series is empty: nothing to plot.")

    doc = _render_html(meta, _meta_rows(meta, ts, axis, len(buses)), figures, notes,
                       _events_table(ev, colours), _metrics_table(metrics or {}))
    _write_atomic(path, doc)
