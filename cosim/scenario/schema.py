"""The scenario file as pydantic models: keys, types, defaults and feeder-independent checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

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
    """Which controller drives the DER setpoints."""

    kind: Literal["none"] = "none"


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
