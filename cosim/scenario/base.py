"""Shared bases of the scenario models: the strict block and durations with units.

They live apart from `cosim.scenario.schema` so that modules the schema imports (the event kinds
in `cosim.events.kinds`) can build on them without an import cycle; the schema re-exports both.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator

from cosim.scenario.units import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    """Base for every block: unknown keys are errors, numbers must be finite, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class Window(Strict):
    """When something scheduled starts (time from the start of the run) and how long it lasts."""

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
