"""The scenario file as pydantic models: keys, types, defaults and feeder-independent checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from controllers.baselines import KINDS as BASELINE_KINDS
from cosim.grid.engines import ENGINES
from cosim.scenario.base import Seconds, Strict  # noqa: F401  (re-exported: other modules import them from here)
from cosim.scenario.forecast import Forecast
from cosim.scenario.placement import Placement, PlacementBlock
from cosim.scenario.storage import Storage
from cosim.scenario.units import format_duration, milliseconds


class Clock(Strict):
    """Simulated time: start, horizon and step (units s, min, h, d)."""

    start: datetime = datetime(2025, 6, 21)
    duration: Seconds
    step: Seconds

    @field_validator("duration", "step")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a positive duration such as 15min, 24h or 30s")
        return v

    @field_validator("step")
    @classmethod
    def _whole_milliseconds(cls, v: float) -> float:
        if milliseconds(v) is None or milliseconds(v) == 0:
            raise ValueError(f"must be a whole number of milliseconds (at least 1ms), got {v:g}s")
        return v

    @model_validator(mode="after")
    def _step_divides_duration(self) -> "Clock":
        duration = milliseconds(self.duration)
        if duration is None or duration % milliseconds(self.step) != 0:
            raise ValueError(
                f"step {format_duration(self.step)} does not divide duration "
                f"{format_duration(self.duration)}: the duration must be a whole number of steps"
            )
        return self

    @property
    def n_steps(self) -> int:
        return milliseconds(self.duration) // milliseconds(self.step)


class Grid(Strict):
    """Which feeder to simulate and how to judge its voltages."""

    feeder: str
    voltage_limits: tuple[float, float] = (0.95, 1.05)
    engine: Literal[tuple(ENGINES)] = "lightsim2grid"  # type: ignore[valid-type]
    line_max_i_ka: float | None = Field(default=None, gt=0)
    max_nonconverged_share: float = Field(default=0.0, ge=0, le=1, description="share of steps whose power flow "
                                          "may fail before the run is 'degraded' (default 0: any)")

    @field_validator("voltage_limits")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 < lo < hi:
            raise ValueError(f"expected [low, high] in pu with 0 < low < high, got [{lo}, {hi}]")
        return v


class Site(Strict):
    """Where the feeder is: sets the sun's path for PV."""

    latitude: float = Field(default=52.0, ge=-90, le=90)
    longitude: float = Field(default=0.0, ge=-180, le=180)


class Loads(Strict):
    """Time profile applied to every load of the feeder (nominal values times the profile)."""

    profile: str = "constant"
    scale: float = Field(default=1.0, ge=0)
    noise: float = Field(default=0.0, ge=0, le=1)

    @field_validator("profile")
    @classmethod
    def _known(cls, v: str) -> str:
        if v in ("constant", "residential", "commercial") or (v.startswith("csv:") and len(v) > 4):
            return v
        raise ValueError(f"expected constant, residential, commercial or csv:<path>, got {v!r}")


class _Generator(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    bus: int
    p_mw: float = Field(gt=0, le=10_000, description="nameplate active power (at most 10 GW)")
    s_mva: float | None = Field(default=None, gt=0, le=10_000, description="inverter rating; default 1.1 x p_mw")

    @property
    def rating_mva(self) -> float:
        return self.s_mva if self.s_mva is not None else 1.1 * self.p_mw


class PVGenerator(_Generator):
    """A PV plant: clear-sky irradiance with seeded cloud transients."""

    kind: Literal["pv"]
    cloudiness: float = Field(default=0.3, ge=0, le=1)


class WindGenerator(_Generator):
    """A wind turbine: Weibull wind speed through a power curve."""

    kind: Literal["wind"]
    mean_speed: float = Field(default=7.5, gt=0)
    weibull_k: float = Field(default=2.0, gt=0)
    tau: Seconds = 3600.0
    cut_in: float = Field(default=3.0, ge=0)
    rated: float = Field(default=12.0, gt=0)
    cut_out: float = Field(default=25.0, gt=0)

    @model_validator(mode="after")
    def _curve(self) -> "WindGenerator":
        if not self.cut_in < self.rated < self.cut_out:
            raise ValueError("power curve needs cut_in < rated < cut_out (m/s)")
        return self


Generator = Annotated[Union[PVGenerator, WindGenerator], Field(discriminator="kind")]


class Controller(Strict):
    """Which controller drives the DER setpoints: a shipped baseline, a user's Python class or a trained policy."""

    kind: Literal[(*BASELINE_KINDS, "python", "drl")] = "none"  # type: ignore[valid-type]
    path: str | None = Field(default=None, description="kind python: <file.py>:<ClassName>, relative to the scenario")
    policy: str | None = Field(default=None, description="kind drl: the policy file, relative to the scenario")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the controller's constructor")
    timeout: float = Field(default=10.0, gt=0, le=3600,
                           description="wall seconds one call of act may take; then the last setpoints hold")

    @model_validator(mode="before")
    @classmethod
    def _params_at_top(cls, data: Any) -> Any:
        """`{kind: mpc, horizon: 1h}` is `{kind: mpc, params: {horizon: 1h}}`: keys that are not the block's own
        are the controller's constructor parameters (checked against its signature when it is built)."""
        if not isinstance(data, dict):
            return data
        extra = {k: v for k, v in data.items() if k not in cls.model_fields}
        if not extra:
            return data
        params = data.get("params") or {}
        if not isinstance(params, dict):
            return data  # the params field reports it
        twice = sorted(set(extra) & set(params))
        if twice:
            raise ValueError(f"{', '.join(twice)} given both at the top of the block and under params: give it once")
        return {**{k: v for k, v in data.items() if k not in extra}, "params": {**params, **extra}}

    @model_validator(mode="after")
    def _kind_keys(self) -> "Controller":
        for key, owner, example in (("path", "python", "my_ctrl.py:MyController"), ("policy", "drl", "policies/x.pt")):
            given = getattr(self, key) is not None
            if self.kind == owner and not given:
                raise ValueError(f"kind {owner} needs {key}, e.g. {key}: {example}")
            if self.kind != owner and given:
                raise ValueError(f"{key} is only for kind {owner}, not {self.kind}")
        return self


class Bound(Strict):
    """Pass/fail thresholds on one metric (inclusive)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> "Bound":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both, e.g. {max: 5}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


# -- events (disruptions and attacks) and the detector -------------------------------------------
# Each event kind's model lives in its module under cosim/events/kinds/ (see cosim/events/registry.py);
# the union, the kind lists and the random-schedule models are generated from that registry.
from cosim.events.models import Event  # noqa: E402
from cosim.events.failures import Failures  # noqa: E402


# The detector blocks live in cosim/detection/ (one module per kind under cosim/detection/kinds/).
from cosim.detection.models import Detector, DetectorSpec, Measurements, Meters, check_detectors  # noqa: E402,F401
from cosim.scenario.metering import Metering  # noqa: E402


class Impact(Strict):
    """How the physical impact of events is measured."""

    baseline: bool = Field(default=True, description="also run without events; report differences and "
                                                        "recovery against that run")
    after: Seconds | None = Field(default=None, description="window after each event (default: as long as the event)")

    @field_validator("after")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("must be a positive duration such as 30min")
        return v


# -- hardware in the loop: field devices over Modbus-TCP and the grid's own Modbus server ----------
# The models live in cosim/scenario/devices.py (the device kinds come from the registry hil/kinds/).

from cosim.scenario.devices import (DEVICE_KINDS, Device, DeviceLimits, GridServer, ModbusTarget,  # noqa: E402,F401
                                    WireAttack, WireDelay, WireDrop, WireFDI, WireInjection, WireReplay, WireTamper)


class Scenario(Strict):
    """A whole scenario file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    description: str = ""
    clock: Clock
    grid: Grid
    site: Site = Site()
    loads: Loads = Loads()
    generators: list[Generator] = []
    storage: list[Storage] = []  # batteries (cosim/scenario/storage.py)
    controller: Controller = Controller()
    events: list[Event] = []
    failures: Failures | None = None
    detector: DetectorSpec | None = None
    detectors: list[DetectorSpec] = []
    metering: Metering | None = Field(default=None, description="the feeder's meters (cosim/scenario/metering.py)")
    impact: Impact = Impact()
    devices: list[Device] = []
    grid_server: GridServer | None = None
    criteria: dict[str, Bound] = Field(default_factory=dict, description="metric name -> thresholds for `cosim regress`")
    placement: PlacementBlock = Placement()  # where each mosaik simulator runs (cosim/scenario/placement.py)
    forecast: Forecast | None = None  # forecasts controllers observe (cosim/scenario/forecast.py)

    @model_validator(mode="after")
    def _detectors(self) -> "Scenario":
        check_detectors(self.detector, self.detectors)
        return self
