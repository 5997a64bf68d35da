"""The scenario file as pydantic models: keys, types, defaults and feeder-independent checks."""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator,
                      model_validator)

from cosim.scenario.units import format_duration, parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    """Base for every block: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
    def _whole_seconds(cls, v: float) -> float:
        if v != int(v):
            raise ValueError(f"must be a whole number of seconds, got {v:g}s")
        return v

    @model_validator(mode="after")
    def _step_divides_duration(self) -> "Clock":
        if self.duration % self.step != 0:
            raise ValueError(
                f"step {format_duration(self.step)} does not divide duration "
                f"{format_duration(self.duration)}: the duration must be a whole number of steps"
            )
        return self

    @property
    def n_steps(self) -> int:
        return int(self.duration // self.step)


class Grid(Strict):
    """Which feeder to simulate and how to judge its voltages."""

    feeder: str
    voltage_limits: tuple[float, float] = (0.95, 1.05)
    engine: Literal["lightsim2grid", "pandapower"] = "lightsim2grid"
    line_max_i_ka: float | None = Field(default=None, gt=0)

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
    p_mw: float = Field(gt=0, description="nameplate active power")
    s_mva: float | None = Field(default=None, gt=0, description="inverter rating; default 1.1 x p_mw")

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

    kind: Literal["none", "droop", "volt_watt", "opf", "python", "drl"] = "none"
    path: str | None = Field(default=None, description="kind python: <file.py>:<ClassName>, relative to the scenario")
    policy: str | None = Field(default=None, description="kind drl: the policy file, relative to the scenario")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the controller's constructor")

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

PHYSICAL_KINDS = ("line_outage", "trafo_outage", "dg_trip", "load_step", "cloud_transient")
MEASUREMENT_KINDS = ("fdi", "fdi_stealthy", "replay", "delay", "drop", "sensor_stuck", "timestamp_skew")
COMMAND_KINDS = ("command_injection", "command_tamper", "delay", "drop")
EVENT_KINDS = tuple(dict.fromkeys(PHYSICAL_KINDS + MEASUREMENT_KINDS + COMMAND_KINDS))
EventKind = Literal[EVENT_KINDS]  # type: ignore[valid-type]
Target = Union[str, list[str]]


class _Event(Strict):
    """When an event starts (time from the start of the run) and how long it lasts."""

    at: Seconds
    duration: Seconds

    @field_validator("at")
    @classmethod
    def _not_negative(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must be a time from the start of the run such as 10h or 90min")
        return v

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a positive duration such as 20min or 2h")
        return v


class LineOutage(_Event):
    """A line (published number) out of service; buses it cuts off lose supply."""

    kind: Literal["line_outage"]
    line: int


class TrafoOutage(_Event):
    """A transformer (published number) out of service."""

    kind: Literal["trafo_outage"]
    trafo: int


class DGTrip(_Event):
    """Scenario generators (name or wildcard) disconnect: no P, no Q."""

    kind: Literal["dg_trip"]
    generator: str


class LoadStep(_Event):
    """The loads at one or more buses are multiplied by `factor`."""

    kind: Literal["load_step"]
    bus: Union[int, list[int]]
    factor: float = Field(ge=0)


class CloudTransient(_Event):
    """A cloud over PV generators (name or wildcard): available power drops by `depth` (0..1)."""

    kind: Literal["cloud_transient"]
    generator: str = "*"
    depth: float = Field(default=0.7, ge=0, le=1)


class FDI(_Event):
    """False data on measured signals: seen = true * scale + bias + ramp * elapsed fraction + N(0, random)."""

    kind: Literal["fdi"]
    target: Target
    bias: float = 0.0
    scale: float = 1.0
    ramp: float = 0.0
    random: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _does_something(self) -> "FDI":
        if self.bias == 0 and self.scale == 1 and self.ramp == 0 and self.random == 0:
            raise ValueError("fdi needs at least one of bias, scale (other than 1), ramp or random")
        return self


class FDIStealthy(_Event):
    """False data consistent with the grid model (a = H c): buses seem to inject delta_p / delta_q more."""

    kind: Literal["fdi_stealthy"]
    buses: list[int] = Field(min_length=1)
    delta_p_mw: float = 0.0
    delta_q_mvar: float = 0.0

    @model_validator(mode="after")
    def _does_something(self) -> "FDIStealthy":
        if self.delta_p_mw == 0 and self.delta_q_mvar == 0:
            raise ValueError("fdi_stealthy needs a non-zero delta_p_mw or delta_q_mvar")
        return self


class Replay(_Event):
    """The signals replay what they showed over `window` before the attack (looped)."""

    kind: Literal["replay"]
    target: Target
    window: Seconds

    @field_validator("window")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a positive duration such as 15min")
        return v


class Delay(_Event):
    """Measurements (or, with target `commands`, setpoints) arrive `steps` steps late."""

    kind: Literal["delay"]
    target: Target
    steps: int = Field(ge=1)


class Drop(_Event):
    """Each update of the signals (or setpoints) is lost with probability `rate`."""

    kind: Literal["drop"]
    target: Target
    rate: float = Field(default=1.0, ge=0, le=1)
    fill: Literal["hold", "nan"] = "hold"


class SensorStuck(_Event):
    """The sensors freeze at their reading when the fault starts (or at `value`)."""

    kind: Literal["sensor_stuck"]
    target: Target
    value: float | None = None


class TimestampSkew(_Event):
    """The meters' clocks run `skew` ahead: the receiver takes samples that are `skew` old for current."""

    kind: Literal["timestamp_skew"]
    target: Target
    skew: Seconds

    @field_validator("skew")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a positive duration such as 2min")
        return v


class CommandInjection(_Event):
    """An unauthorised setpoint `value` written to the targets every step of the event."""

    kind: Literal["command_injection"]
    target: Target
    value: float


class CommandTamper(_Event):
    """The controller's setpoints arrive as setpoint * scale + offset."""

    kind: Literal["command_tamper"]
    target: Target
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _does_something(self) -> "CommandTamper":
        if self.scale == 1 and self.offset == 0:
            raise ValueError("command_tamper needs a scale other than 1 or a non-zero offset")
        return self


class RandomSpec(Strict):
    """A seeded random schedule: Poisson arrivals of the listed kinds, random targets and parameters."""

    kinds: list[EventKind] = Field(min_length=1)
    rate_per_day: float = Field(gt=0)
    seed: int | None = None
    duration: tuple[Seconds, Seconds] = (600.0, 3600.0)

    @field_validator("duration")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1]:
            raise ValueError(f"expected [shortest, longest] with 0 < shortest <= longest, got {list(v)}")
        return v


class RandomEvents(Strict):
    """An events entry `{random: {...}}` that expands into generated events."""

    kind: Literal["random"] = "random"
    random: RandomSpec


EVENT_MODELS: tuple[type[_Event], ...] = (LineOutage, TrafoOutage, DGTrip, LoadStep, CloudTransient, FDI, FDIStealthy,
                                          Replay, Delay, Drop, SensorStuck, TimestampSkew, CommandInjection,
                                          CommandTamper)


def _event_tag(value: Any) -> str | None:
    """The kind of an events entry; an entry with a `random` key and no kind is a random schedule."""
    if isinstance(value, dict):
        return value.get("kind", "random" if "random" in value else None)
    return getattr(value, "kind", None)


def _kind_of(model: type[BaseModel]) -> str:
    return typing.get_args(model.model_fields["kind"].annotation)[0]


Event = Annotated[Union[tuple(Annotated[m, Tag(_kind_of(m))] for m in EVENT_MODELS + (RandomEvents,))],  # type: ignore
                  Discriminator(_event_tag)]


class Meters(Strict):
    """One family of meters: noise standard deviation (signal units) and where they are."""

    sigma: float = Field(gt=0)
    at: Union[Literal["all"], list[int]] = "all"


class Measurements(Strict):
    """The measurement set of state estimation; `null` switches a family off."""

    vm_pu: Meters | None = Meters(sigma=0.002)
    p_mw: Meters | None = Meters(sigma=0.005)
    q_mvar: Meters | None = Meters(sigma=0.005)
    line_p_mw: Meters | None = Meters(sigma=0.005)
    line_q_mvar: Meters | None = Meters(sigma=0.005)


class Detector(Strict):
    """WLS state estimation on the seen measurements with a chi-square and a largest-normalised-residual test."""

    kind: Literal["wls"] = "wls"
    significance: float = Field(default=0.01, gt=0, lt=0.5)
    alarm: Literal["chi2", "lnr", "any"] = "chi2"
    lnr_threshold: float | None = Field(default=None, gt=0)
    noise: bool = True
    measurements: Measurements = Measurements()


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
    seed: int = 0
    description: str = ""
    clock: Clock
    grid: Grid
    site: Site = Site()
    loads: Loads = Loads()
    generators: list[Generator] = []
    controller: Controller = Controller()
    events: list[Event] = []
    detector: Detector | None = None
    impact: Impact = Impact()
    devices: list[Device] = []
    grid_server: GridServer | None = None
    criteria: dict[str, Bound] = Field(default_factory=dict, description="metric name -> thresholds for `cosim regress`")
