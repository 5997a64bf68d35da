"""Windows of seen measurements: the last `length` steps of a fixed list of signals, oldest first.

Used alike in a run (`WindowBuffer`, one step at a time) and on a dataset (`frame_windows`, every
step of every run at once), so a detector trained on a dataset meets the same windows in a run.
Before `length` steps exist the window is padded with its first row; a missing value is NaN.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd


class WindowBuffer:
    """The window ending at the latest step pushed."""

    def __init__(self, names: Sequence[str], length: int):
        self.names, self.length = tuple(names), int(length)
        self.rows: np.ndarray | None = None

    def push(self, seen: Mapping[str, float]) -> np.ndarray:
        """Add one step's seen values; returns the window (length x len(names)), a view valid until the next push."""
        row = np.array([seen.get(n, math.nan) for n in self.names], float)
        if self.rows is None:
            self.rows = np.repeat(row[None, :], self.length, axis=0)
        else:
            self.rows = np.roll(self.rows, -1, axis=0)
            self.rows[-1] = row
        return self.rows


def frame_windows(frame: pd.DataFrame, columns: Sequence[str], length: int, run: str = "run") -> np.ndarray:
    """Every step's window (steps x length x columns) of a dataset frame, runs kept apart (ordered by step)."""
    out = []
    for _, part in frame.groupby(run, sort=False):
        values = part[list(columns)].to_numpy(float)
        padded = np.concatenate([np.repeat(values[:1], length - 1, axis=0), values])
        index = np.arange(len(values))[:, None] + np.arange(length)[None, :]
        out.append(padded[index])
    return np.concatenate(out) if out else np.empty((0, length, len(columns)))
