"""Measurements as the learned detector reads them: standardised per signal and laid out as an image.

Two scalings (`SCALINGS`): `std`, each signal's mean and standard deviation; `asinh`, each signal's median and
its family's typical spread (the median of the family's standard deviations) through asinh. Under `std` a
2 MW PV bus's injection spreads 20 times a load bus's, so a 0.2 MW shift there is a fraction of one unit;
`asinh` keeps that resolution where a bus behaves as a load (at night) and compresses the large swings.

Each step's seen values become one small image: a row per signal family (`bus.<n>.vm_pu`,
`line.<n>.p_mw`, ...), a column per element in published order, zero where a family has fewer
elements or a value is missing. The CNN finds patterns along the feeder in it, the RNN over time.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

_NUMBER = re.compile(r"\d+")
SCALINGS = ("std", "asinh")
CLOCK = ("clock.day_sin", "clock.day_cos", "clock.year_sin", "clock.year_cos")


def family(name: str) -> str:
    """`bus.18.vm_pu` -> `bus.<n>.vm_pu`; the clock inputs are one family."""
    return "clock" if name in CLOCK else _NUMBER.sub("<n>", name)


def clock_features(times: pd.DatetimeIndex) -> np.ndarray:
    """(n, 4): sine and cosine of the time of day and of the time of year (`CLOCK` order)."""
    day = (times.hour * 3600 + times.minute * 60 + times.second).to_numpy(float) / 86400.0
    year = (times.dayofyear.to_numpy(float) - 1 + day) / 365.25
    day, year = 2 * np.pi * day, 2 * np.pi * year
    return np.column_stack([np.sin(day), np.cos(day), np.sin(year), np.cos(year)])


@dataclass(frozen=True)
class Layout:
    """Signal names with their standardisation (a centre and a scale per signal) and image position."""

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    row: np.ndarray
    col: np.ndarray
    scaling: str = "std"

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.row.max()) + 1, int(self.col.max()) + 1

    @classmethod
    def fit(cls, names: Sequence[str], values: np.ndarray, scaling: str = "std") -> "Layout":
        """The layout of `names` with centre and scale from `values` (samples x names) by `scaling`."""
        if scaling not in SCALINGS:
            raise ValueError(f"scaling: expected one of {', '.join(SCALINGS)}, got {scaling!r}")
        fams = list(dict.fromkeys(family(n) for n in names))
        row = np.array([fams.index(family(n)) for n in names])
        col = np.zeros(len(names), int)
        for r in range(len(fams)):
            members = np.flatnonzero(row == r)
            order = sorted(range(len(members)), key=lambda m: [int(x) for x in _NUMBER.findall(names[members[m]])])
            col[members[order]] = np.arange(len(members))
        with warnings.catch_warnings():  # an all-NaN column (a meter that never reports) is standardised as zero
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nanmedian if scaling == "asinh" else np.nanmean
            mean = np.nan_to_num(centre(values, axis=0)) if len(values) else np.zeros(len(names))
            std = np.nan_to_num(np.nanstd(values, axis=0)) if len(values) else np.ones(len(names))
        std = np.where(std > 1e-9, std, 1.0)
        if scaling == "asinh":  # one scale per family: its signals' typical spread
            std = np.array([np.median(std[row == r]) for r in row])
        return cls(tuple(names), mean, std, row, col, scaling)

    def images(self, windows: np.ndarray) -> np.ndarray:
        """(n, length, names) seen values -> (n, length, rows, cols) standardised images (float32)."""
        z = (windows - self.mean) / self.std
        z = np.nan_to_num(np.arcsinh(z) if self.scaling == "asinh" else z).astype(np.float32)
        out = np.zeros((*windows.shape[:2], *self.shape), np.float32)
        out[:, :, self.row, self.col] = z
        return out

    def to_dict(self) -> dict:
        """Plain lists, for a checkpoint that loads with `weights_only=True`."""
        return {"names": list(self.names), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "row": self.row.tolist(), "col": self.col.tolist(), "scaling": self.scaling}

    @classmethod
    def from_dict(cls, d: dict) -> "Layout":
        return cls(tuple(d["names"]), np.array(d["mean"], float), np.array(d["std"], float),
                   np.array(d["row"], int), np.array(d["col"], int), d.get("scaling", "std"))
