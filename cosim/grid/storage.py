"""Batteries of a grid model: state of charge, and what each unit can deliver in one step.

Physics only (no mosaik). Load convention, as pandapower's storage: P > 0 charges, Q > 0
absorbs. Charging at P for dt raises the stored energy by P x eta x dt, discharging at |P| lowers
it by |P| / eta x dt (eta: one-way efficiency). A setpoint is clipped to |P| <= p_mw,
P^2 + Q^2 <= s_mva^2 and to what the SoC limits leave in this step. `dispatch` only computes;
`commit` makes a solved step's SoC the state, so trial power flows (the OPF oracle, MPC) leave it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class StorageUnit:
    """One battery at a bus (published bus number): ratings, SoC range (shares of e_mwh) and efficiency."""

    name: str
    bus: int
    p_mw: float
    e_mwh: float
    soc0: float
    efficiency: float
    soc_min: float
    soc_max: float
    s_mva: float


class StorageBank:
    """The state of charge of every unit and the step length it integrates over."""

    def __init__(self, units: Sequence[StorageUnit], step_s: float):
        self.units = tuple(units)
        self.step_h = float(step_s) / 3600.0
        a = lambda attr: np.array([getattr(u, attr) for u in self.units], float)  # noqa: E731
        self.p_max, self.s_max, self.e_mwh, self.eta = np.minimum(a("p_mw"), a("s_mva")), a("s_mva"), a("e_mwh"), a("efficiency")
        self.soc_min, self.soc_max, self.soc0 = a("soc_min"), a("soc_max"), a("soc0")
        self.soc = self.soc0.copy()

    def __len__(self) -> int:
        return len(self.units)

    def dispatch(self, p_set: np.ndarray, q_set: np.ndarray, online: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Delivered P and Q (MW, Mvar, load convention) of these setpoints and the SoC they leave; no state change.

        Units that are offline (a de-energised island) deliver nothing and keep their SoC."""
        dt = self.step_h
        charge_room = (self.soc_max - self.soc) * self.e_mwh / (self.eta * dt)
        discharge_room = (self.soc - self.soc_min) * self.e_mwh * self.eta / dt
        p = np.clip(np.asarray(p_set, float), -np.minimum(self.p_max, np.maximum(discharge_room, 0.0)),
                    np.minimum(self.p_max, np.maximum(charge_room, 0.0))) * online
        q_max = np.sqrt(np.maximum(self.s_max**2 - p**2, 0.0))
        q = np.clip(np.asarray(q_set, float), -q_max, q_max) * online
        return p, q, self.soc_after(p)

    def soc_after(self, p: np.ndarray) -> np.ndarray:
        """SoC after one step at P (charging raises it by P eta dt / E, discharging lowers it by |P| dt / (eta E))."""
        energy = np.where(p > 0, p * self.eta, p / self.eta) * self.step_h
        return np.clip(self.soc + energy / self.e_mwh, self.soc_min, self.soc_max)  # clip: rounding only

    def commit(self, soc: np.ndarray) -> None:
        """Make a solved step's SoC the state."""
        self.soc = np.array(soc, float)

    def reset(self) -> None:
        """Back to the initial state of charge."""
        self.soc = self.soc0.copy()
