"""The controller interface: given an observation, return actions (named setpoints).

Observation: the measurements as the controller sees them (after the channel), by signal
name (`bus.18.vm_pu`, `pv1.p_avail_mw`, ...), plus time features `time.hour_sin`,
`time.hour_cos`, `time.step`. Actions: `<der>.p_limit_mw` and `<der>.q_set_mvar` per DER
(later `cap.<n>.step`, `trafo.<n>.tap` where the feeder has them). Unknown names and NaN
are rejected by the caller; the grid model clips every setpoint to device capability.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class DERInfo:
    """What a controller may know about a DER it drives."""

    name: str
    kind: str
    bus: int
    p_mw: float
    s_mva: float


@dataclass(frozen=True)
class ControllerInfo:
    """Static facts a controller gets once, before the first step."""

    feeder: str
    step_s: float
    voltage_limits: tuple[float, float]
    ders: tuple[DERInfo, ...]
    measurements: tuple[str, ...]
    params: Mapping[str, object] = field(default_factory=dict)

    @property
    def action_names(self) -> tuple[str, ...]:
        """Every setpoint name a controller may return."""
        return tuple(f"{d.name}.{a}" for d in self.ders for a in ("p_limit_mw", "q_set_mvar"))


class Controller(ABC):
    """Subclass and implement `act`; `setup` is called once with the static facts."""

    def setup(self, info: ControllerInfo) -> None:
        """Remember what the controller needs from `info` (default: keep it as `self.info`)."""
        self.info = info

    @abstractmethod
    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        """Return setpoints by name for this step (an empty dict leaves the last ones in force)."""
