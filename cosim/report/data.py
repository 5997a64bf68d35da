"""What the report reads from a run: the time axis, entity columns, events and shaded spans.

Conventions shared by all time plots: sample ``i`` stands for the interval
``[x[i] - step/2, x[i] + step/2]`` (so non-converged steps and heat-map cells line up),
events are shaded over their ``[start, end)`` interval, all times are wall-clock time.
`prepare` turns the runner's inputs into one `ReportData` that every plot reads (with the
attack labels and the detectors' scores and alarms, for the detection section).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates

MAX_SPANS_PER_KIND = 300
FIG_WIDTH_IN = 11.0
DPI = 100
DEFAULT_STEP_DAYS = 15.0 / (24 * 60)

ENTITY_RE = {
    kind: re.compile(rf"^{kind}\.([^.]+)\.{attr}$")
    for kind, attr in (("bus", "vm_pu"), ("line", "loading_pct"), ("trafo", "loading_pct"))
}
RESERVED_ENTITIES = {"bus", "line", "trafo", "grid", "seen", "label", "time"}
UNITS = {"pu": "pu", "pct": "%", "ka": "kA", "mw": "MW", "mvar": "Mvar", "kw": "kW",
          "kvar": "kvar", "kwh": "kWh", "mwh": "MWh", "v": "V", "kv": "kV", "a": "A"}
# tab10 without its grey (reserved for non-converged steps)
# event shading colours, chosen apart from the line colours used in the plots
EVENT_COLOURS = ["goldenrod", "mediumorchid", "lightseagreen", "hotpink", "yellowgreen",
                  "steelblue", "sandybrown", "slateblue", "darkkhaki"]
NONCONV_COLOUR = "0.35"
ATTACK_COLOUR = "crimson"
NONCONV_KINDS = {"nonconverged", "notconverged", "nonconvergence", "divergence", "diverged"}


@dataclass(frozen=True)
class TimeAxis:
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
class Span:
    """One shaded x interval on time plots."""

    x0: float
    x1: float
    label: str
    colour: str
    hatch: str | None = None
    alpha: float = 0.25


def natural_key(label: str) -> tuple[int, float, str]:
    """Sort key putting numeric ids in numeric order before other ids."""
    return (0, float(label), "") if label.isdigit() else (1, 0.0, label)


def entity_columns(ts: pd.DataFrame, kind: str) -> list[tuple[str, str]]:
    """(id, column) pairs of ``<kind>.<id>.<attr>`` columns, in natural id order."""
    rx = ENTITY_RE[kind]
    found = [(m.group(1), c) for c in ts.columns if (m := rx.match(str(c)))]
    return sorted(found, key=lambda p: natural_key(p[0]))


def numeric(ts: pd.DataFrame, col: str) -> np.ndarray:
    """Column as a float array (non-numbers become NaN)."""
    return pd.to_numeric(ts[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def float_matrix(ts: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Columns as a (steps x columns) float array."""
    if not cols:
        return np.empty((len(ts), 0))
    try:
        return ts[list(cols)].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        return np.column_stack([numeric(ts, c) for c in cols])


def naive_times(values: Any, tz: Any = None) -> pd.Series:
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


def prepare_timeseries(timeseries: Any) -> pd.DataFrame:
    """The time series as a DataFrame sorted by time (input left untouched)."""
    ts = timeseries if isinstance(timeseries, pd.DataFrame) else pd.DataFrame(timeseries)
    if "time" in ts.columns and len(ts) > 1:
        t = naive_times(ts["time"], getattr(ts["time"].dtype, "tz", None))
        if not t.is_monotonic_increasing:
            ts = ts.iloc[np.argsort(t.to_numpy(), kind="stable")]
    return ts


def time_axis(ts: pd.DataFrame) -> TimeAxis:
    """x positions for the rows of ``ts``: clock times if a usable ``time`` column exists."""
    n = len(ts)
    if n and "time" in ts.columns:
        tz = getattr(ts["time"].dtype, "tz", None)
        t = naive_times(ts["time"], tz)
        if t.notna().all():
            x = np.asarray(mdates.date2num(t.to_numpy(dtype="datetime64[ns]")), dtype=float)
            return TimeAxis(x, True, typical_step(x, DEFAULT_STEP_DAYS), tz)
    x = np.arange(n, dtype=float)
    return TimeAxis(x, False, 1.0)


def typical_step(x: np.ndarray, default: float) -> float:
    """Median positive spacing of ``x`` (``default`` for fewer than two points)."""
    d = np.diff(x)
    d = d[d > 0]
    return float(np.median(d)) if d.size else default


def voltage_limits(meta: dict) -> tuple[float, float] | None:
    """(low, high) voltage limits in pu from ``meta``, or None if absent or malformed."""
    try:
        lo, hi = (float(v) for v in meta.get("voltage_limits"))
    except (TypeError, ValueError):
        return None
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def signal_unit(signal: str) -> str:
    """Unit of a signal from its attribute suffix (``bus.3.vm_pu`` -> ``pu``)."""
    return UNITS.get(str(signal).rsplit("_", 1)[-1].lower(), "")


def fmt_x(axis: TimeAxis, x: float, with_date: bool = False) -> str:
    """A position on the time axis as clock time (or step number)."""
    if not axis.is_date:
        return f"step {int(round(x))}"
    return mdates.num2date(x).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True values in ``mask``."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def downsample_extreme(matrix: np.ndarray, factor: int, axis: int, centre: float = 1.0) -> np.ndarray:
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


def normalise_events(events: Any, tz: Any) -> pd.DataFrame:
    """Events as start/end (naive datetimes), kind/target (str), sorted by start."""
    out = pd.DataFrame({"start": pd.Series([], dtype="datetime64[ns]"),
                        "end": pd.Series([], dtype="datetime64[ns]"),
                        "kind": pd.Series([], dtype=object), "target": pd.Series([], dtype=object)})
    if not isinstance(events, pd.DataFrame) or events.empty:
        return out
    n = len(events)
    cols: dict[str, Any] = {}
    for c in ("start", "end"):
        cols[c] = (naive_times(events[c].to_numpy(), tz).to_numpy(dtype="datetime64[ns]")
                   if c in events.columns else np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"))
    for c in ("kind", "target"):
        cols[c] = (events[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                                 else str(v)).to_numpy(dtype=object)
                   if c in events.columns else np.full(n, "", dtype=object))
    out = pd.DataFrame(cols)
    return out.sort_values("start", kind="stable", na_position="last").reset_index(drop=True)


def kind_colours(kinds: Iterable[str]) -> dict[str, str]:
    """A fixed colour per event kind (alphabetical assignment, so stable across runs)."""
    return {k: EVENT_COLOURS[i % len(EVENT_COLOURS)] for i, k in enumerate(sorted(set(kinds)))}


def merge(intervals: list[tuple[float, float]], gap: float = 0.0) -> list[tuple[float, float]]:
    """Union of intervals that overlap or lie at most ``gap`` apart."""
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1] + gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def event_spans(ev: pd.DataFrame, axis: TimeAxis, colours: dict[str, str]) -> list[Span]:
    """Shaded intervals of the events, merged per kind (none without a clock-time axis)."""
    if not axis.is_date or ev.empty or not len(axis.x):
        return []
    spans: list[Span] = []
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
        merged = merge(pairs)
        if len(merged) > MAX_SPANS_PER_KIND:  # gaps narrower than ~1 px are invisible anyway
            merged = merge(merged, gap=(axis.hi - axis.lo) / (FIG_WIDTH_IN * DPI))
        spans += [Span(a, b, f"event: {kind or 'unnamed'}", colours[kind], None, 0.25) for a, b in merged]
    return spans


def mask_spans(mask: np.ndarray, axis: TimeAxis, label: str, colour: str, hatch: str | None,
                alpha: float) -> list[Span]:
    """Shaded intervals over the runs of steps where ``mask`` is True."""
    h = axis.step / 2
    return [Span(float(axis.x[a] - h), float(axis.x[b] + h), label, colour, hatch, alpha)
            for a, b in runs(mask)]


def nonconverged_spans(ts: pd.DataFrame, axis: TimeAxis, vm: np.ndarray) -> list[Span]:
    """Steps whose power flow did not converge (``grid.converged == 0``; else: no bus voltage at all)."""
    if "grid.converged" in ts.columns:
        mask = numeric(ts, "grid.converged") == 0
        label = "power flow not converged"
    elif vm.size:
        mask = np.isnan(vm).all(axis=1)
        label = "no voltage result"
    else:
        return []
    return mask_spans(mask, axis, label, NONCONV_COLOUR, "//", 0.28)


def all_spans(ts: pd.DataFrame, axis: TimeAxis, ev: pd.DataFrame, colours: dict[str, str],
               vm: np.ndarray) -> list[Span]:
    """Event spans plus non-converged spans; "nonconverged" events are not shaded twice."""
    nonconv = nonconverged_spans(ts, axis, vm)
    if "grid.converged" in ts.columns:
        same = ev["kind"].map(lambda k: re.sub(r"[^a-z]", "", k.lower()) in NONCONV_KINDS)
        ev = ev[~same.astype(bool)]
    return event_spans(ev, axis, colours) + nonconv


def generator_names(ts: pd.DataFrame, meta: dict) -> list[str]:
    """Generators with a ``<name>.p_mw`` column: those in ``meta`` first, else detected ones."""
    listed = meta.get("generators") or []
    if isinstance(listed, str):
        listed = [listed]
    names = [str(n) for n in listed if f"{n}.p_mw" in ts.columns]
    if names or listed:
        return names
    return [c[: -len(".p_mw")] for c in map(str, ts.columns)
            if c.endswith(".p_mw") and c.split(".", 1)[0] not in RESERVED_ENTITIES]


def sum_columns(ts: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Row sums of ``cols`` (NaN where all of them are NaN)."""
    return pd.DataFrame(float_matrix(ts, cols)).sum(axis=1, min_count=1).to_numpy(dtype=float)


def seen_pairs(ts: pd.DataFrame) -> list[tuple[str, float]]:
    """Signals with a ``seen.`` column, most tampered (largest |seen - true|) first."""
    pairs = []
    for c in map(str, ts.columns):
        if c.startswith("seen.") and len(c) > 5:
            sig = c[5:]
            diff = 0.0
            if sig in ts.columns:
                d = np.abs(numeric(ts, c) - numeric(ts, sig))
                diff = float(np.nanmax(d)) if np.isfinite(d).any() else 0.0
            pairs.append((sig, diff))
    return sorted(pairs, key=lambda p: -p[1])


# ----------------------------------------------------------------------------- detection

DETECTOR_SCORE_RE = re.compile(r"^detector\.(?:(.+)\.)?score$")


@dataclass(frozen=True)
class DetectorSeries:
    """One detector's per-step score and alarm (None without an alarm column), under its name."""

    name: str
    score: np.ndarray
    alarm: np.ndarray | None
    wls: bool  # the score is J over the chi-square threshold (the detector publishes `chi2`)


def detector_series(ts: pd.DataFrame) -> list[DetectorSeries]:
    """The detectors of a run: `detector.score` (one, named "detector") or `detector.<name>.score` (several)."""
    found = []
    for c in map(str, ts.columns):
        if m := DETECTOR_SCORE_RE.match(c):
            prefix = c[: -len(".score")]
            alarm = numeric(ts, f"{prefix}.alarm") >= 0.5 if f"{prefix}.alarm" in ts.columns else None
            found.append(DetectorSeries(m.group(1) or "detector", numeric(ts, c), alarm,
                                        f"{prefix}.chi2" in ts.columns))
    return found


def attack_mask(ts: pd.DataFrame) -> np.ndarray:
    """Steps labelled as attacked (`label.attack` >= 0.5; none without labels)."""
    return numeric(ts, "label.attack") >= 0.5 if "label.attack" in ts.columns else np.zeros(len(ts), bool)


def physical_kinds() -> set[str]:
    """Event kinds that only ever act on the grid (disruptions, never attacks)."""
    from cosim.events.base import PHYSICAL
    from cosim.events.registry import all_kinds

    return {k.name for k in all_kinds() if set(k.paths) == {PHYSICAL}}


def attack_kind_masks(ts: pd.DataFrame, attack: np.ndarray) -> dict[str, np.ndarray]:
    """Per attack kind on the attacked steps' `label.kind` ('+'-joined active kinds), the steps it is active on."""
    if "label.kind" not in ts.columns or not attack.any():
        return {}
    labels = ts["label.kind"].map(lambda v: v if isinstance(v, str) else "").to_numpy(dtype=object)
    physical = physical_kinds()
    parts = {lab: {k for k in lab.split("+") if k and k not in physical} for lab in set(labels[attack])}
    kinds = sorted(set().union(*parts.values()))
    return {k: attack & np.isin(labels, [lab for lab, ks in parts.items() if k in ks]) for k in kinds}


def attack_spans(attack: np.ndarray, axis: TimeAxis) -> list[Span]:
    """Hatched shading over the runs of labelled attack steps."""
    return mask_spans(attack, axis, "attack active (label)", ATTACK_COLOUR, "\\\\", 0.08)


@dataclass(frozen=True)
class ReportData:
    """Everything the plots and the page read, derived once from the runner's inputs."""

    ts: pd.DataFrame
    meta: dict
    axis: TimeAxis
    events: pd.DataFrame
    colours: dict[str, str]
    limits: tuple[float, float] | None
    bus_ids: list[str]
    vm: np.ndarray
    spans: list[Span]
    attack: np.ndarray  # steps labelled as attacked
    attack_kinds: dict[str, np.ndarray]  # steps of each attack kind present
    detectors: list[DetectorSeries]


def prepare(timeseries: pd.DataFrame | None, events: pd.DataFrame | None, meta: dict | None) -> ReportData:
    """The report's view of a run: sorted series, time axis, events with colours, bus voltages, shaded spans, detectors."""
    meta = dict(meta or {})
    ts = prepare_timeseries(timeseries if timeseries is not None else pd.DataFrame())
    axis = time_axis(ts)
    ev = normalise_events(events, axis.tz)
    colours = kind_colours(ev["kind"])
    buses = entity_columns(ts, "bus")
    vm = float_matrix(ts, [c for _, c in buses])
    attack = attack_mask(ts)
    return ReportData(ts, meta, axis, ev, colours, voltage_limits(meta), [b for b, _ in buses], vm,
                      all_spans(ts, axis, ev, colours, vm), attack, attack_kind_masks(ts, attack),
                      detector_series(ts))
