"""Load profiles: standard daily shapes, correlated noise and user CSV multipliers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .wind import _ar1

DAY_S = 86400
NOISE_TAU_S = 900.0  # autocorrelation time of the load noise (15 min)

_HOURS = np.arange(24.0)
# Multipliers of the peak load at 00:00, 01:00, ..., 23:00; interpolated periodically.
_RESIDENTIAL = np.array([
    0.45, 0.40, 0.37, 0.35, 0.35, 0.38, 0.50, 0.70, 0.72, 0.62, 0.57, 0.57,
    0.60, 0.58, 0.55, 0.56, 0.62, 0.74, 0.88, 0.98, 1.00, 0.90, 0.72, 0.55])
_COMMERCIAL_WEEKDAY = np.array([
    0.35, 0.35, 0.35, 0.35, 0.35, 0.36, 0.40, 0.55, 0.80, 0.95, 1.00, 1.00,
    0.95, 0.97, 1.00, 0.98, 0.95, 0.85, 0.65, 0.50, 0.42, 0.38, 0.36, 0.35])
_COMMERCIAL_WEEKEND = np.array([
    0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.36, 0.38, 0.42, 0.46, 0.48, 0.48,
    0.48, 0.48, 0.48, 0.48, 0.46, 0.43, 0.40, 0.37, 0.36, 0.35, 0.35, 0.35])
LOAD_KINDS = ("constant", "residential", "commercial")


class ProfileError(ValueError):
    """A profile (CSV) file is missing, malformed or does not cover the requested times."""


def _seconds_of_day(times: np.ndarray) -> np.ndarray:
    t = np.asarray(times, dtype="datetime64[s]")
    return (t - t.astype("datetime64[D]")).astype(np.int64).astype(float)


def load_shape(times: np.ndarray, kind: str) -> np.ndarray:
    """Deterministic daily multiplier of the peak load (max over a typical day = 1.0).

    `kind` is "constant" (exactly 1.0), "residential" or "commercial" (reduced on weekends).
    """
    times = np.asarray(times, dtype="datetime64[s]")
    if kind == "constant":
        return np.ones(times.shape)
    hour = _seconds_of_day(times) / 3600.0
    if kind == "residential":
        return np.interp(hour, _HOURS, _RESIDENTIAL, period=24.0)
    if kind == "commercial":
        weekday = (times.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        return np.where(weekday < 5,
                        np.interp(hour, _HOURS, _COMMERCIAL_WEEKDAY, period=24.0),
                        np.interp(hour, _HOURS, _COMMERCIAL_WEEKEND, period=24.0))
    raise ValueError(f"unknown load kind {kind!r}; allowed kinds: {', '.join(LOAD_KINDS)}")


def load_profile(times: np.ndarray, kind: str, rng: np.random.Generator, n_loads: int,
                 noise: float = 0.0) -> np.ndarray:
    """Per-load multipliers, shape (n_steps, n_loads): `load_shape` times (1 + noise * e), clipped at 0.

    e is unit-variance AR(1) noise (tau 15 min), independent per load; noise = 0 leaves `rng` untouched.
    """
    if n_loads < 0 or noise < 0:
        raise ValueError(f"need n_loads >= 0 and noise >= 0, got {n_loads}, {noise}")
    times = np.asarray(times, dtype="datetime64[s]")
    shape = load_shape(times, kind)[:, None]
    if noise == 0.0:
        return np.repeat(shape, n_loads, axis=1)
    step_s = float(np.median(np.diff(times).astype(np.int64))) if times.size > 1 else np.inf
    e = _ar1(rng, (times.size, n_loads), np.exp(-step_s / NOISE_TAU_S))
    return np.clip(shape * (1.0 + noise * e), 0.0, None)


_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def _parse_time_of_day(text: pd.Series, path: Path) -> np.ndarray:
    parts = text.str.extract(_TIME_OF_DAY).astype(float)
    h, m, s = parts[0], parts[1], parts[2].fillna(0.0)
    bad = (h > 23) | (m > 59) | (s > 59)
    if bad.any():
        raise ProfileError(f"{path}: invalid time of day {text[bad].iloc[0]!r}")
    seconds = (3600 * h + 60 * m + s).to_numpy()
    if np.unique(seconds).size != seconds.size:
        raise ProfileError(f"{path}: duplicate time of day in 'time' column")
    return seconds


def _parse_timestamps(text: pd.Series, path: Path) -> np.ndarray:
    try:
        stamps = pd.to_datetime(text, format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"{path}: unparsable timestamp in 'time' column ({exc})") from None
    seconds = stamps.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    if np.any(np.diff(seconds) <= 0):
        raise ProfileError(f"{path}: timestamps in 'time' column must be strictly increasing")
    return seconds


def csv_profile(path: str | Path, times: np.ndarray) -> np.ndarray:
    """Multiplier series, shape (n_steps,), interpolated from a CSV with a `time` and one value column.

    `time` is a time of day "HH:MM[:SS]" (daily profile, repeated every day) or ISO-8601 timestamps (UTC
    unless an offset is given; must cover `times`).
    """
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"{path}: profile file not found")
    try:
        df = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not a readable CSV file ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    if "time" not in df.columns:
        raise ProfileError(f"{path}: no 'time' column (columns: {list(df.columns)})")
    value_cols = [c for c in df.columns if c != "time"]
    if len(value_cols) != 1:
        raise ProfileError(f"{path}: need exactly one value column besides 'time', found {value_cols}")
    if df.empty:
        raise ProfileError(f"{path}: no data rows")

    raw = df[value_cols[0]].str.strip()
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ProfileError(f"{path}: unparsable value {raw[bad].iloc[0]!r} in column {value_cols[0]!r}")
    if (values < 0).any():
        raise ProfileError(f"{path}: negative value {values[values < 0][0]} in column {value_cols[0]!r}")

    text = df["time"].str.strip()
    if text.isna().any():
        raise ProfileError(f"{path}: empty entry in 'time' column")
    daily = text.str.fullmatch(_TIME_OF_DAY)
    times = np.asarray(times, dtype="datetime64[s]")
    if daily.all():
        return np.interp(_seconds_of_day(times), _parse_time_of_day(text, path), values, period=DAY_S)
    if daily.any():
        raise ProfileError(f"{path}: 'time' column mixes times of day and timestamps")

    stamps = _parse_timestamps(text, path)
    t = times.astype(np.int64)
    if t.size and (t.min() < stamps[0] or t.max() > stamps[-1]):
        covered = f"{stamps[0].astype('datetime64[s]')} .. {stamps[-1].astype('datetime64[s]')}"
        wanted = f"{times.min()} .. {times.max()}"
        raise ProfileError(f"{path}: timestamps cover {covered}, but {wanted} is requested")
    return np.interp(t.astype(float), stamps.astype(float), values)
