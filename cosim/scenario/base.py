"""Shared bases of the scenario models: the strict block and durations with units.

They live apart from `cosim.scenario.schema` so that modules the schema imports (the event kinds
in `cosim.events.kinds`) can build on them without an import cycle; the schema re-exports both.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from cosim.scenario.units import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    """Base for every block: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
