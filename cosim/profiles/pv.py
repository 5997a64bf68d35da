"""Photovoltaic profiles: Haurwitz clear-sky irradiance with seeded cloud transients."""

from __future__ import annotations

import numpy as np

HAURWITZ_A = 1098.0  # W/m2
HAURWITZ_B = 0.057
STC_IRRADIANCE = 1000.0  # W/m2, irradiance at which a PV unit delivers its nameplate

CLOUD_EVENTS_PER_HOUR = 6.0  # event rate at cloudiness = 1
CLOUD_DURATION_S = (120.0, 1200.0)  # 2 to 20 minutes
CLOUD_DEPTH = (0.3, 0.8)  # fraction of irradiance removed at the core of an event
CLOUD_EDGE = 0.25  # each smooth edge spans this fraction of the event duration


def _cos_zenith(times: np.ndarray, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """Cosine of the solar zenith angle (Spencer declination and equation of time, times in UTC)."""
    t = np.asarray(times, dtype="datetime64[s]")
    day = t.astype("datetime64[D]")
    day_of_year = (day - t.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1
    hour_utc = (t - day).astype(np.int64) / 3600.0

    g = 2.0 * np.pi / 365.0 * (day_of_year - 1 + (hour_utc - 12.0) / 24.0)  # fractional year
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g)
            - 0.006758 * np.cos(2 * g) + 0.000907 * np.sin(2 * g)
            - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot_min = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                        - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    solar_hour = hour_utc + longitude_deg / 15.0 + eot_min / 60.0
    hour_angle = np.deg2rad(15.0 * (solar_hour - 12.0))
    lat = np.deg2rad(latitude_deg)
    return np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)


def clear_sky_ghi(times: np.ndarray, latitude_deg: float, longitude_deg: float = 0.0) -> np.ndarray:
    """Clear-sky global horizontal irradiance in W/m2 (Haurwitz model), 0 with the sun below the horizon.

    `times` are UTC; `longitude_deg` (east positive) sets the solar time.
    """
    cz = _cos_zenith(times, latitude_deg, longitude_deg)
    ghi = np.zeros(cz.shape)
    up = cz > 0.0
    ghi[up] = HAURWITZ_A * cz[up] * np.exp(-HAURWITZ_B / cz[up])
    return ghi


def _cloud_attenuation(t_s: np.ndarray, rng: np.random.Generator, cloudiness: float) -> np.ndarray:
    """Multiplicative irradiance factor in (0, 1] from Poisson-arriving cloud events with smooth edges."""
    lo_dur, hi_dur = CLOUD_DURATION_S
    start, stop = t_s[0] - hi_dur, t_s[-1]  # every event that can overlap the run
    n_events = rng.poisson(CLOUD_EVENTS_PER_HOUR * cloudiness * (stop - start) / 3600.0)
    onset = rng.uniform(start, stop, n_events)
    duration = rng.uniform(lo_dur, hi_dur, n_events)
    depth = rng.uniform(*CLOUD_DEPTH, n_events)

    # Flatten (event, step) pairs for the steps inside each event's window.
    first = np.searchsorted(t_s, onset, side="left")
    count = np.searchsorted(t_s, onset + duration, side="right") - first
    event = np.repeat(np.arange(n_events), count)
    step = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count - first, count)

    # Tukey-window shape: raised-cosine edges, flat core.
    u = t_s[step] - onset[event]
    edge = np.minimum(u, duration[event] - u) / (CLOUD_EDGE * duration[event])
    shape = 0.5 - 0.5 * np.cos(np.pi * np.clip(edge, 0.0, 1.0))
    log_factor = np.bincount(step, weights=np.log1p(-depth[event] * shape), minlength=t_s.size)
    return np.exp(log_factor)


def pv_profile(times: np.ndarray, rng: np.random.Generator, latitude_deg: float = 52.0,
               longitude_deg: float = 0.0, cloudiness: float = 0.3) -> np.ndarray:
    """Per-unit PV output in [0, 1]: clear-sky GHI / 1000 W/m2 attenuated by seeded cloud transients.

    `cloudiness` in [0, 1] scales the cloud-event rate; 0 gives exactly the clear-sky curve.
    """
    if not 0.0 <= cloudiness <= 1.0:
        raise ValueError(f"cloudiness must be in [0, 1], got {cloudiness}")
    times = np.asarray(times, dtype="datetime64[s]")
    p = clear_sky_ghi(times, latitude_deg, longitude_deg) / STC_IRRADIANCE
    if times.size and cloudiness > 0.0:
        t_s = (times - times[0]).astype(np.int64).astype(float)
        p = p * _cloud_attenuation(t_s, rng, cloudiness)
    return np.clip(p, 0.0, 1.0)
