"""Run a per-DER policy (checkpoint format 2): one shared actor applied to every DER of any scenario.

The checkpoint describes the per-DER layout (`controllers.drl.features`), not signal names, so the
runtime maps the scenario's DERs onto it: it builds each DER's features from the DER's own bus, its
neighbours on the feeder tree, its rating and the time, and returns each DER's setpoints. It refuses
only what it cannot read: features or actions it does not know, a network of another shape, a
scenario without DERs, or signals the scenario does not measure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from controllers.base import TIME_FEATURES, ControllerInfo
from controllers.drl.checkpoint import MLP, PolicyError
from controllers.drl.features import CONST, FeatureMap, LayoutUnreadable, PerDERSpec
from controllers.drl.tree import FeederTree, feeder_tree


class PerDERMismatch(PolicyError):
    """A per-DER policy that cannot be mapped onto the scenario; the message names the field."""


def read_spec(path: Path, net: MLP, meta: Mapping[str, Any]) -> PerDERSpec:
    """The per-DER layout of a format-2 checkpoint, checked against its network's shape."""
    try:
        spec = PerDERSpec.from_dict(meta.get("per_der"))
    except LayoutUnreadable as exc:
        raise PerDERMismatch(f"policy {path} has a per-DER layout this runtime cannot read: field {exc}") from None
    shape = (len(spec.features), len(spec.actions) if meta.get("action_table") is None else None)
    if net.sizes[0] != shape[0] or (shape[1] is not None and net.sizes[-1] != shape[1]):
        raise PerDERMismatch(f"policy {path}: field 'network.sizes' {net.sizes} does not fit field 'per_der' "
                             f"({shape[0]} features in, {len(spec.actions)} actions out)")
    return spec


def scenario_tree(feeder: str) -> FeederTree | None:
    """The feeder tree of a scenario's feeder spec (None when it cannot be loaded from here: own voltage then)."""
    from cosim.grid.feeders import FeederError, load_feeder

    try:
        return feeder_tree(load_feeder(feeder))
    except (FeederError, OSError, ValueError):
        return None


class PerDERRuntime:
    """The shared actor over one scenario's DERs (set up by `setup`)."""

    def __init__(self, path: Path, net: MLP, meta: Mapping[str, Any]):
        self.path, self.net = path, net
        self.spec = read_spec(path, net, meta)
        table = meta.get("action_table")
        self.table = None if table is None else np.asarray(table, np.float32)
        self.map: FeatureMap | None = None

    def setup(self, info: ControllerInfo) -> None:
        """Map the scenario's DERs onto the layout; PerDERMismatch names what cannot be read."""
        if not info.ders:
            raise PerDERMismatch(f"policy {self.path} does not match the scenario: field 'generators': expected at "
                                 "least one DER for the per-DER policy to drive, but the scenario has none")
        try:
            self.map = fm = FeatureMap(self.spec, info.ders, scenario_tree(info.feeder), info.voltage_limits)
        except LayoutUnreadable as exc:
            raise PerDERMismatch(f"policy {self.path} does not match the scenario: field {exc}") from None
        available = set(info.measurements) | set(TIME_FEATURES) | {CONST}
        missing = [n for n in fm.names if n not in available]
        if missing:
            raise PerDERMismatch(f"policy {self.path} does not match the scenario: field 'per_der.features': the "
                                 f"policy reads {', '.join(missing)}, which this scenario does not measure")
        self._x = np.empty(len(fm.names))

    def actions(self, features: np.ndarray) -> np.ndarray:
        """(DERs, actions) in [-1, 1] from (DERs, features): the actor row by row (or the best table row)."""
        with torch.no_grad():
            y = self.net(torch.from_numpy(features)).numpy()
        return y if self.table is None else self.table[np.argmax(y, axis=1)]

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        """Every DER's setpoints by name; a signal missing from the observation reads as NaN (0 in policy units)."""
        fm, x = self.map, self._x
        for i, name in enumerate(fm.names):
            x[i] = 1.0 if name == CONST else observation.get(name, np.nan)
        return fm.named_setpoints(self.actions(fm.features(x)))
