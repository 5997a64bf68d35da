"""Seeded time-series profiles (PV, wind, load) as per-unit multipliers on a run's time grid."""

from .load import LOAD_KINDS, ProfileError, csv_profile, load_profile, load_shape
from .pv import clear_sky_ghi, pv_profile
from .wind import power_curve, wind_profile, wind_speed

__all__ = [
    "LOAD_KINDS",
    "ProfileError",
    "clear_sky_ghi",
    "csv_profile",
    "load_profile",
    "load_shape",
    "power_curve",
    "pv_profile",
    "wind_profile",
    "wind_speed",
]
