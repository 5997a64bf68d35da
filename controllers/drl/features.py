"""The per-DER layout: what one shared actor reads about one DER and what it sets, in the DER's own units.

Every feature is an affine map of one named signal (or the constant 1): feature = (signal - offset) / scale,
so the same table serves the environment (signals by column) and the runtime (signals by name).

| feature | signal | offset, scale |
|---|---|---|
| `v_own` | `bus.<own bus>.vm_pu` | middle of the voltage limits, half their width |
| `v_parent` | the bus one branch nearer the substation | as `v_own` |
| `v_child` | the next bus away from the substation (own bus at a feeder end) | as `v_own` |
| `v_substation` | the external grid's bus | as `v_own` |
| `p_avail`, `p`, `q` | `<der>.p_avail_mw`, `<der>.p_mw`, `<der>.q_mvar` | 0, the DER's rating S |
| `rating` | the constant 1 | 0, 1 / S in MVA (the feature is S) |
| `hour_sin`, `hour_cos` | `time.hour_sin`, `time.hour_cos` | 0, 1 |
| `feeder_p`, `feeder_q` | `grid.ext_p_mw`, `grid.ext_q_mvar` (feeder-head flow) | 0, the summed DER ratings |
| `dv_dp`, `dv_dq` | the constant 1 | 0, 1 / (R or X of the own bus's path to the substation x S / half the limits' width) |

`dv_dp` and `dv_dq` are how far the DER's own full-rating P and Q move its voltage (LinDistFlow, in
the units of `v_own`), so one actor can tell a stiff bus from a weak one on any feeder.

Actions, each in [-1, 1]: `q` sets `<der>.q_set_mvar` = a * S; `p` sets `<der>.p_limit_mw` = (a + 1) / 2 * P nameplate.
A signal that reads NaN (a de-energised bus) is 0 after normalisation, so the DER still acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from controllers.base import DERInfo
from controllers.drl.layout import OBS_BOUND
from controllers.drl.tree import FeederTree
from cosim import signals as sig

VOLTAGES = ("v_own", "v_parent", "v_child", "v_substation")
SENSITIVITIES = ("dv_dp", "dv_dq")
FEATURES = (*VOLTAGES, "p_avail", "p", "q", "rating", "hour_sin", "hour_cos", "feeder_p", "feeder_q", *SENSITIVITIES)
ACTIONS = ("q", "p")
DEFAULT_FEATURES = ("v_own", "v_parent", "v_child", "p_avail", "p", "q", "rating", "hour_sin", "hour_cos",
                    "feeder_p")
CONST = "1"  # the constant signal of the `rating` feature


class LayoutUnreadable(ValueError):
    """A per-DER layout naming features or actions this runtime does not know."""


@dataclass(frozen=True)
class PerDERSpec:
    """Which features the actor reads and which actions it returns, in order; stored in the checkpoint."""

    features: tuple[str, ...] = DEFAULT_FEATURES
    actions: tuple[str, ...] = ("q",)

    def __post_init__(self) -> None:
        for field, names, known in (("features", self.features, FEATURES), ("actions", self.actions, ACTIONS)):
            unknown = [n for n in names if n not in known]
            if unknown or not names or len(set(names)) != len(names):
                what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "an empty or repeated list"
                raise LayoutUnreadable(f"per_der.{field}: {what} (known: {', '.join(known)})")

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"features": list(self.features), "actions": list(self.actions)}

    @classmethod
    def from_dict(cls, data: object) -> "PerDERSpec":
        """Inverse of `to_dict`; LayoutUnreadable says what is wrong."""
        if not isinstance(data, Mapping) or not set(data) <= {"features", "actions"} or "features" not in data:
            raise LayoutUnreadable(f"per_der: expected a mapping with 'features' and 'actions', got {data!r}")
        try:
            return cls(tuple(data["features"]), tuple(data.get("actions", ("q",))))
        except TypeError:
            raise LayoutUnreadable(f"per_der: features and actions must be lists of names, got {data!r}") from None


class FeatureMap:
    """The features of every DER of one scenario as one gather: `features(x)` with x[i] = value of `names[i]`."""

    def __init__(self, spec: PerDERSpec, ders: Sequence[DERInfo], tree: FeederTree | None,
                 voltage_limits: tuple[float, float]):
        lo, hi = voltage_limits
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        total = sum(d.s_mva for d in ders) or 1.0
        if tree is None and set(spec.features) & set(SENSITIVITIES):
            raise LayoutUnreadable(f"per_der.features: {', '.join(SENSITIVITIES)} need the feeder's impedances, "
                                   "and the feeder cannot be loaded here")
        parent = tree.parent if tree else {}
        child = tree.child if tree else {}
        root = tree.root if tree else None

        def source(feature: str, d: DERInfo) -> tuple[str, float, float]:
            bus = {"v_own": d.bus, "v_parent": parent.get(d.bus, d.bus), "v_child": child.get(d.bus, d.bus),
                   "v_substation": root if root is not None else d.bus}.get(feature)
            if bus is not None:
                return sig.bus(bus), mid, half
            if feature in ("p_avail", "p", "q"):
                return sig.der(d.name, {"p_avail": "p_avail_mw", "p": "p_mw", "q": "q_mvar"}[feature]), 0.0, d.s_mva
            if feature == "rating":
                return CONST, 0.0, 1.0 / d.s_mva
            if feature in SENSITIVITIES:
                z = (tree.r_path if feature == "dv_dp" else tree.x_path)[d.bus] * d.s_mva / half
                return CONST, 0.0, 1.0 / z if z > 0 else np.inf  # a DER at the substation: 0
            if feature in ("hour_sin", "hour_cos"):
                return f"time.{feature}", 0.0, 1.0
            return sig.grid("ext_p_mw" if feature == "feeder_p" else "ext_q_mvar"), 0.0, total

        table = [[source(f, d) for f in spec.features] for d in ders]
        self.names: tuple[str, ...] = tuple(dict.fromkeys(name for row in table for name, _, _ in row))
        index = {name: i for i, name in enumerate(self.names)}
        self.columns = np.array([[index[name] for name, _, _ in row] for row in table], np.int64).reshape(len(ders), -1)
        self.offset = np.array([[o for _, o, _ in row] for row in table]).reshape(self.columns.shape)
        self.scale = np.array([[s for _, _, s in row] for row in table]).reshape(self.columns.shape)
        self.spec, self.ders = spec, tuple(ders)
        q_names = [sig.der(d.name, "q_set_mvar") for d in ders]
        p_names = [sig.der(d.name, "p_limit_mw") for d in ders]
        self.action_names = tuple(q_names if a == "q" else p_names for a in spec.actions)
        self._s = np.array([d.s_mva for d in ders])
        self._p = np.array([d.p_mw for d in ders])

    def features(self, x: np.ndarray) -> np.ndarray:
        """(DERs, features) in policy units, float32, clipped to +-OBS_BOUND; NaN reads as 0."""
        f = (x[self.columns] - self.offset) / self.scale
        return np.nan_to_num(np.clip(f, -OBS_BOUND, OBS_BOUND), nan=0.0).astype(np.float32)

    def setpoints(self, actions: np.ndarray) -> list[np.ndarray]:
        """Per action kind, the physical setpoints of every DER from (DERs, actions) in [-1, 1]."""
        a = np.clip(np.asarray(actions, np.float64).reshape(len(self.ders), -1), -1.0, 1.0)
        return [a[:, j] * self._s if kind == "q" else (a[:, j] + 1.0) * 0.5 * self._p
                for j, kind in enumerate(self.spec.actions)]

    def named_setpoints(self, actions: np.ndarray) -> dict[str, float]:
        """Setpoints by name, as `Controller.act` returns them."""
        out: dict[str, float] = {}
        for names, values in zip(self.action_names, self.setpoints(actions)):
            out.update(zip(names, values.tolist()))
        return out
