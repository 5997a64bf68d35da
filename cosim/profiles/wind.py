"""Wind profiles: autocorrelated Weibull wind speed (Gaussian copula) and a turbine power curve."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from scipy.special import gamma, log_ndtr


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """Stationary unit-variance Gaussian AR(1) along axis 0 with lag-one correlation `phi`."""
    e = rng.standard_normal(shape)
    if e.shape[0] == 0:
        return e
    drive = np.sqrt(1.0 - phi * phi) * e
    drive[0] = e[0]  # start from the stationary N(0, 1) distribution
    return lfilter([1.0], [1.0, -phi], drive, axis=0)


def wind_speed(n_steps: int, step_s: float, rng: np.random.Generator, mean_speed: float = 7.5,
               weibull_k: float = 2.0, tau_s: float = 3600.0) -> np.ndarray:
    """Wind speed in m/s with an exact Weibull(k, c) marginal and autocorrelation time `tau_s`.

    Gaussian AR(1) with lag-one correlation exp(-step_s / tau_s), mapped to Weibull by a Gaussian copula.
    """
    if n_steps < 0 or step_s <= 0 or mean_speed <= 0 or weibull_k <= 0 or tau_s < 0:
        raise ValueError("need n_steps >= 0, step_s > 0, mean_speed > 0, weibull_k > 0, tau_s >= 0")
    phi = np.exp(-step_s / tau_s) if tau_s > 0 else 0.0
    x = _ar1(rng, (n_steps,), phi)
    c = mean_speed / gamma(1.0 + 1.0 / weibull_k)
    # Weibull inverse CDF c * (-ln(1 - U))^(1/k) with U = ndtr(x); ln(1 - U) = log_ndtr(-x) stays
    # finite in the far tail.
    return c * (-log_ndtr(-x)) ** (1.0 / weibull_k)


def power_curve(speed: np.ndarray, cut_in: float = 3.0, rated: float = 12.0,
                cut_out: float = 25.0) -> np.ndarray:
    """Per-unit turbine output: cubic from cut-in to rated speed, 1 up to cut-out, 0 outside."""
    if not 0.0 <= cut_in < rated <= cut_out:
        raise ValueError(f"need 0 <= cut_in < rated <= cut_out, got {cut_in}, {rated}, {cut_out}")
    v = np.asarray(speed, dtype=float)
    cubic = (v**3 - cut_in**3) / (rated**3 - cut_in**3)
    return np.select([v < cut_in, v < rated, v < cut_out], [0.0, cubic, 1.0], default=0.0)


def wind_profile(n_steps: int, step_s: float, rng: np.random.Generator, mean_speed: float = 7.5,
                 weibull_k: float = 2.0, tau_s: float = 3600.0, cut_in: float = 3.0,
                 rated: float = 12.0, cut_out: float = 25.0) -> np.ndarray:
    """Per-unit wind-turbine output in [0, 1]: `power_curve` applied to `wind_speed`."""
    v = wind_speed(n_steps, step_s, rng, mean_speed, weibull_k, tau_s)
    return power_curve(v, cut_in, rated, cut_out)
