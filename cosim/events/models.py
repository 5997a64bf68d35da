"""The scenario's `events:` entries as pydantic models, generated from the kind registry.

`Event` is the discriminated union of every registered kind's model (by rank) and the `random:`
entry; the kind lists and the kinds a random schedule may draw come from the registry too.
`cosim.scenario.schema` re-exports all of it.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator

import cosim.events.kinds  # noqa: F401  (registers every kind)
from cosim.events.base import COMMAND, MEASUREMENT, PHYSICAL, _Event
from cosim.events.registry import all_kinds, kinds_on
from cosim.scenario.base import Seconds, Strict

PHYSICAL_KINDS = kinds_on(PHYSICAL)
MEASUREMENT_KINDS = kinds_on(MEASUREMENT)
COMMAND_KINDS = kinds_on(COMMAND)
EVENT_KINDS = tuple(k.name for k in all_kinds())
RANDOM_KINDS = tuple(k.name for k in all_kinds() if k.randomizable)
EventKind = Literal[EVENT_KINDS]  # type: ignore[valid-type]
RandomKind = Literal[RANDOM_KINDS]  # type: ignore[valid-type]
EVENT_MODELS: tuple[type[_Event], ...] = tuple(k.model for k in all_kinds())


class RandomSpec(Strict):
    """A seeded random schedule: Poisson arrivals of the listed kinds, random targets and parameters."""

    kinds: list[RandomKind] = Field(min_length=1)
    rate_per_day: float = Field(gt=0)
    seed: int | None = None
    duration: tuple[Seconds, Seconds] = (600.0, 3600.0)
    buses: list[int] | None = Field(None, min_length=1)  # kinds that pick a bus, bus voltage or load pick among these

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


def _event_tag(value: Any) -> str | None:
    """The kind of an events entry; an entry with a `random` key and no kind is a random schedule."""
    if isinstance(value, dict):
        return value.get("kind", "random" if "random" in value else None)
    return getattr(value, "kind", None)


def _kind_of(model: type[BaseModel]) -> str:
    return typing.get_args(model.model_fields["kind"].annotation)[0]


Event = Annotated[Union[tuple(Annotated[m, Tag(_kind_of(m))] for m in EVENT_MODELS + (RandomEvents,))],  # type: ignore
                  Discriminator(_event_tag)]
