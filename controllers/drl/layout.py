"""The contract between environment, checkpoint and runtime: observation and action names, scaling, bounds.

A policy works on vectors in [-1, 1]-ish units; the co-simulation speaks named signals in
physical units. `Layout` converts both ways and is stored verbatim in the policy metadata,
so a policy trained in the environment reads the co-simulation's observation by name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

from controllers.base import DERInfo, StorageInfo
from cosim import signals as sig

VOLTAGE_SCALE_PU = 0.05  # a voltage observation is (V - 1) / 0.05: +-1 at the usual limits
OBS_BOUND = 20.0  # normalised observations are clipped to +-OBS_BOUND (a voltage of 0 or 2 pu)


@dataclass(frozen=True)
class Layout:
    """Observation i is (obs[name_i] - offset_i) / scale_i; action j in [-1, 1] maps linearly onto [low_j, high_j]."""

    obs_names: tuple[str, ...]
    obs_offset: tuple[float, ...]
    obs_scale: tuple[float, ...]
    action_names: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    def obs_vector(self, observation: Mapping[str, float]) -> np.ndarray:
        """Normalised observation vector from named values (KeyError names a missing signal)."""
        raw = np.array([observation[name] for name in self.obs_names], dtype=float)
        return self.normalise(raw)

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        """Physical observation values (in `obs_names` order, last axis) to policy units, clipped, float32."""
        scaled = (raw - np.asarray(self.obs_offset)) / np.asarray(self.obs_scale)
        return np.clip(scaled, -OBS_BOUND, OBS_BOUND).astype(np.float32)

    def setpoints(self, action: np.ndarray) -> np.ndarray:
        """Policy actions in [-1, 1] (clipped) to physical setpoints in `action_names` order."""
        low, high = np.asarray(self.action_low), np.asarray(self.action_high)
        return low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (high - low)

    def named_setpoints(self, action: np.ndarray) -> dict[str, float]:
        """Policy actions to the named setpoints a `Controller.act` returns."""
        return dict(zip(self.action_names, self.setpoints(action).tolist()))

    def to_dict(self) -> dict:
        """JSON-ready form (lists)."""
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence]) -> "Layout":
        """Inverse of `to_dict`."""
        return cls(**{k: tuple(data[k]) for k in cls.__dataclass_fields__})


def voltvar_layout(ders: Sequence[DERInfo], curtail: bool = False, storage: Sequence[StorageInfo] = ()) -> Layout:
    """The standard layout: DER-bus voltages, available and delivered power, time of day -> Q (and P limits).

    Observations: `bus.<b>.vm_pu` for each DER bus, `<der>.p_avail_mw`, `<der>.q_mvar` (and
    `<der>.p_mw` when curtailing), `time.hour_sin`, `time.hour_cos`. Actions: `<der>.q_set_mvar`
    in [-S, S] of the inverter rating, and `<der>.p_limit_mw` in [0, P nameplate] when curtailing.
    Batteries in `storage` add `<battery>.soc` and `<battery>.p_mw` to the observations (before the time
    features) and `<battery>.p_set_mw` in [-p_mw, p_mw] (charging > 0) to the actions.
    """
    buses = list(dict.fromkeys(d.bus for d in ders))
    obs: list[tuple[str, float, float]] = [(sig.bus(b), 1.0, VOLTAGE_SCALE_PU) for b in buses]
    obs += [(f"{d.name}.p_avail_mw", 0.0, d.p_mw) for d in ders]
    obs += [(f"{d.name}.q_mvar", 0.0, d.s_mva) for d in ders]
    if curtail:
        obs += [(f"{d.name}.p_mw", 0.0, d.p_mw) for d in ders]
    obs += [(f"{b.name}.soc", 0.5, 0.5) for b in storage] + [(f"{b.name}.p_mw", 0.0, b.p_mw) for b in storage]
    obs += [("time.hour_sin", 0.0, 1.0), ("time.hour_cos", 0.0, 1.0)]
    act = [(f"{d.name}.q_set_mvar", -d.s_mva, d.s_mva) for d in ders]
    if curtail:
        act += [(f"{d.name}.p_limit_mw", 0.0, d.p_mw) for d in ders]
    act += [(f"{b.name}.p_set_mw", -b.p_mw, b.p_mw) for b in storage]
    names, offsets, scales = zip(*obs)
    a_names, lows, highs = zip(*act)
    return Layout(names, offsets, scales, a_names, lows, highs)
