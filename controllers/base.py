"""The controller interface: given an observation, return actions (named setpoints).

Observation: the measurements as the controller sees them (after the channel), by signal
name (`bus.18.vm_pu`, `pv1.p_avail_mw`, ...), plus time features `time.hour_sin`,
`time.hour_cos`, `time.step`, and with a `forecast:` block `forecast.<signal>.+<lead>`
(`cosim.forecast.build`; `info.measurements` lists them). Actions: `<der>.p_limit_mw` and
`<der>.q_set_mvar` per DER,
`<battery>.p_set_mw` and `<battery>.q_set_mvar` per battery (load convention; observed as
`<battery>.p_mw`, `.q_mvar`, `.soc`), `cap.<n>.step`, `trafo.<n>.tap` where the feeder has them. Unknown names and NaN
are rejected (`cosim.kernel.check_actions`); the grid model clips every setpoint to device capability.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar, Mapping

import numpy as np

if TYPE_CHECKING:
    from cosim.grid.model import GridModel
    from cosim.inputs import Inputs
    from cosim.scenario.loader import LoadedScenario

TIME_FEATURES = ("time.hour_sin", "time.hour_cos", "time.step")


def time_features(t: np.datetime64, step: int) -> dict[str, float]:
    """The time part of an observation: hour of day on the unit circle and the step number."""
    t = np.datetime64(t, "s")
    hour = (t - t.astype("datetime64[D]")) / np.timedelta64(1, "h")
    angle = 2.0 * np.pi * hour / 24.0
    return {"time.hour_sin": float(np.sin(angle)), "time.hour_cos": float(np.cos(angle)), "time.step": float(step)}


class ControllerError(Exception):
    """A controller that cannot run with this scenario; the message is shown to the user as is."""


@dataclass(frozen=True)
class DERInfo:
    """What a controller may know about a DER it drives."""

    name: str
    kind: str
    bus: int
    p_mw: float
    s_mva: float


@dataclass(frozen=True)
class StorageInfo:
    """What a controller may know about a battery it drives (load convention: charging P > 0)."""

    name: str
    bus: int
    p_mw: float
    e_mwh: float
    soc_min: float
    soc_max: float
    efficiency: float  # one-way, charge and discharge
    s_mva: float


@dataclass(frozen=True)
class Truth:
    """Perfect knowledge for an oracle: the run's own grid model and its whole input series."""

    model: GridModel
    inputs: Inputs


@dataclass(frozen=True)
class ControllerInfo:
    """Static facts a controller gets once, before the first step."""

    feeder: str
    step_s: float
    voltage_limits: tuple[float, float]
    ders: tuple[DERInfo, ...]
    measurements: tuple[str, ...]
    params: Mapping[str, object] = field(default_factory=dict)
    truth: Truth | None = None  # only for controllers with `oracle = True`, and only inside a run
    # discrete setpoints where the feeder has them: (name, lowest, highest), e.g. ("trafo.1.tap", -9, 9)
    discrete: tuple[tuple[str, int, int], ...] = ()
    # the scenario itself, only for controllers with `uses_scenario = True`: a baseline tuned on the
    # scenario's other days, agents whose messages travel through its channels and events
    scenario: LoadedScenario | None = None
    storage: tuple[StorageInfo, ...] = ()  # batteries: setpoints <name>.p_set_mw, <name>.q_set_mvar

    @property
    def storage_actions(self) -> tuple[str, ...]:
        """The batteries' setpoint names."""
        return tuple(f"{s.name}.{a}" for s in self.storage for a in ("p_set_mw", "q_set_mvar"))

    @property
    def action_names(self) -> tuple[str, ...]:
        """Every setpoint name a controller may return."""
        continuous = tuple(f"{d.name}.{a}" for d in self.ders for a in ("p_limit_mw", "q_set_mvar"))
        return continuous + self.storage_actions + tuple(name for name, _, _ in self.discrete)


class Controller(ABC):
    """Subclass and implement `act`; `setup` is called once with the static facts."""

    # An oracle is handed `info.truth` (the true grid and future inputs) instead of seeing only
    # measurements; only reference baselines such as `opf` set this.
    oracle: ClassVar[bool] = False
    uses_scenario: ClassVar[bool] = False  # handed `info.scenario` (never the run's grid state or future inputs)
    # what each DER agent broadcasts to the others, as signals `msg.<der>.<quantity>` that events may target
    messages: ClassVar[tuple[str, ...]] = ()
    _event_sink: Callable[[str, str], None] | None = None

    def setup(self, info: ControllerInfo) -> None:
        """Remember what the controller needs from `info` (default: keep it as `self.info`)."""
        self.info = info

    @abstractmethod
    def act(self, observation: Mapping[str, float]) -> dict[str, float]:
        """Return setpoints by name for this step (an empty dict leaves the last ones in force)."""

    def report(self, kind: str, target: str = "") -> None:
        """Record an event of this step (e.g. a fallback) in the run's events.csv; ignored outside a run."""
        if self._event_sink is not None:
            self._event_sink(kind, target)
