"""The scenario's `forecast:` block: forecasts of every DER's available P and the feeder load that controllers
observe (`cosim.forecast`).

`kind` is one of `cosim.forecast.KINDS` (persistence, oracle, learned); `horizon` is how far ahead, a whole
number of clock steps (one forecast value per step of lead); `noise` is the relative standard deviation of a
seeded Gaussian error at the full horizon, growing as sqrt(lead / horizon) (any kind); `model` (learned
only) is a checkpoint file, trained on generated days and written there when it does not exist yet;
`train_days` is how many generated days a learned model trains on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from cosim.files import resolve_path
from cosim.forecast import KINDS
from cosim.scenario.base import Seconds, Strict
from cosim.scenario.units import format_duration, is_whole_steps, steps_in

if TYPE_CHECKING:
    from cosim.scenario.schema import Scenario

MAX_VALUES = 20_000_000  # forecast values of one run (160 MB of float64)


class Forecast(Strict):
    """Which forecaster, how far ahead, how much seeded error."""

    kind: Literal[KINDS]  # type: ignore[valid-type]
    horizon: Seconds = Field(description="how far ahead, a whole number of clock steps, e.g. 1h")
    noise: float = Field(default=0.0, ge=0, le=1, description="relative error std at the full horizon")
    model: str | None = Field(default=None, description="kind learned: checkpoint file, relative to the scenario")
    train_days: int = Field(default=8, ge=1, le=365, description="kind learned: generated days to train on")

    @field_validator("horizon")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a positive duration such as 1h or 30min")
        return v

    @model_validator(mode="after")
    def _learned_keys(self) -> "Forecast":
        if self.kind != "learned" and self.model is not None:
            raise ValueError(f"model is only for kind learned, not {self.kind}")
        return self


def forecast_problems(scn: Scenario, base_dir: Path) -> list[tuple[tuple, str]]:
    """The block's checks that need the clock or a file: a horizon of whole clock steps, and a
    learned model's checkpoint made for this horizon and step."""
    spec = scn.forecast
    if spec is None:
        return []
    step = scn.clock.step
    if not is_whole_steps(spec.horizon, step):
        return [(("forecast", "horizon"), f"horizon {format_duration(spec.horizon)} is not a multiple of "
                                          f"clock.step {format_duration(step)}: a forecast has one value per step "
                                          f"of lead (e.g. horizon: {format_duration(step * 12)})")]
    leads = steps_in(spec.horizon, step)
    values = scn.clock.n_steps * leads * (len(scn.generators) + 1)
    if values > MAX_VALUES:
        return [(("forecast", "horizon"), f"horizon {format_duration(spec.horizon)} asks for {values:,} forecast "
                                          f"values ({scn.clock.n_steps:,} steps x {leads:,} leads x "
                                          f"{len(scn.generators) + 1} signals); the limit is {MAX_VALUES:,} "
                                          "(MAX_VALUES): a shorter horizon or a coarser clock.step")]
    path = resolve_path(spec.model, base_dir) if spec.model else None
    if path is None or not path.is_file():
        return []  # no checkpoint yet: the run trains one and writes it there
    from cosim.forecast.kinds.learned import checkpoint_config

    try:
        config = checkpoint_config(path)
        made_for = (int(config["leads"]), float(config["step_s"]))
    except Exception as exc:  # torch raises many types for a file that is not its checkpoint
        return [(("forecast", "model"), f"{path} is not a forecast checkpoint ({type(exc).__name__}: {exc}); "
                                        "delete it to train a new one there")]
    wanted = (leads, float(step))
    if made_for != wanted:
        return [(("forecast", "model"), f"{path} was trained for {made_for[0]} leads of "
                                        f"{format_duration(made_for[1])}, this scenario asks for {wanted[0]} leads "
                                        f"of {format_duration(step)} (horizon {format_duration(spec.horizon)}); "
                                        "point model at another file to train one for this scenario")]
    return []
