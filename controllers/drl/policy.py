"""Run a trained policy as a co-simulation controller: torch only, deterministic, by signal name.

Format 1 checkpoints read a fixed list of named signals; format 2 (per-DER, `per_der_policy`)
applies one shared actor to every DER of whatever scenario it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from controllers.base import TIME_FEATURES, Controller, ControllerInfo
from controllers.drl.checkpoint import FORMAT_PER_DER, PolicyError, load_policy
from controllers.drl.layout import Layout
from controllers.drl.per_der_policy import PerDERRuntime


class PolicyMismatch(PolicyError):
    """The policy was trained for another grid: other feeder, DER buses, observation names or action names."""


def _feeder_key(spec: str) -> str:
    """Feeder identity for comparison: built-in names as is, pandapower JSON files by file name."""
    return Path(spec).name if spec.endswith(".json") else spec


class PolicyController(Controller):
    """A policy checkpoint (`.pt` + `.json`) acting on named observations; see `controllers.drl.checkpoint`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.net, self.meta = load_policy(path)
        self.per_der = PerDERRuntime(self.path, self.net, self.meta) if self.meta["format"] == FORMAT_PER_DER else None
        if self.per_der is None:
            self.layout = Layout.from_dict(self.meta["layout"])
            table = self.meta.get("action_table")
            self.table = None if table is None else np.asarray(table, np.float32)

    def setup(self, info: ControllerInfo) -> None:
        """Check the policy fits this scenario (feeder, DER buses, observations, actions); PolicyMismatch if not."""
        super().setup(info)
        if self.per_der is not None:
            self.per_der.setup(info)
            return
        trained = self.meta.get("feeder", "?")
        if _feeder_key(trained) != _feeder_key(info.feeder):
            self._mismatch("feeder", f"{info.feeder!r} (the scenario's feeder)", f"was trained on {trained!r}")
        trained_at = {d["name"]: d["bus"] for d in self.meta.get("ders", [])}
        moved = [f"{d.name} at bus {d.bus}" for d in info.ders if trained_at.get(d.name, d.bus) != d.bus]
        if moved:
            was = ", ".join(f"{name} at bus {bus}" for name, bus in trained_at.items())
            self._mismatch("ders", f"{', '.join(moved)} (as in the scenario)", f"was trained with {was}")
        available = set(info.measurements) | set(TIME_FEATURES)
        missing = [n for n in self.layout.obs_names if n not in available]
        if missing:
            self._mismatch("layout.obs_names", "signals this scenario measures",
                           f"reads {', '.join(missing)}, which this scenario does not have")
        allowed = set(info.action_names)
        unknown = [n for n in self.layout.action_names if n not in allowed]
        if unknown:
            ders = ", ".join(d.name for d in info.ders) or "none"
            self._mismatch("layout.action_names", f"setpoints of this scenario's DERs ({ders})",
                           f"commands {', '.join(unknown)}")

    def _mismatch(self, field: str, expected: str, got: str) -> None:
        raise PolicyMismatch(f"policy {self.path} does not match the scenario: field {field!r}: expected {expected}, "
                             f"but the policy {got}")

    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        """Setpoints by name; an observation with a missing or non-finite signal keeps the last setpoints
        (a per-DER policy instead acts on what it still sees)."""
        if self.per_der is not None:
            return self.per_der.act(observation)
        try:
            x = self.layout.obs_vector(observation)
        except KeyError:
            return {}
        if not np.all(np.isfinite(x)):
            return {}
        with torch.no_grad():
            y = self.net(torch.from_numpy(x)[None])[0].numpy()
        action = y if self.table is None else self.table[int(np.argmax(y))]
        return self.layout.named_setpoints(action)
