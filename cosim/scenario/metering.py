"""The scenario's `metering:` block: which meters the feeder has, the sigma state estimation assumes for
each class of meter, and the noise the channel actually draws (model error when they differ).

`metering: full` (every bus V, P, Q and every line P, Q: what runs without the block meter) or
`metering: sparse` (substation V, P, Q, voltages at the feeder ends, load pseudo-measurements);
a mapping starts from `preset` (default full) and replaces the placements it names. Places are bus
numbers (line numbers for `flows`), `substation` (the slack bus) or `ends` (the last bus of every
lateral). The block is the run's: every detector and a stealthy attacker see the same meters.
`model_error` perturbs the line impedances of the WLS detectors' own grid model (the true grid and
the stealthy attacker's model stay exact); `pseudo_loads.correlation_time` makes the pseudo-measurement
errors an AR(1) process in time.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
from pydantic import Field, model_validator

from cosim.scenario.base import Seconds, Strict

if TYPE_CHECKING:
    from cosim.grid.feeders import Feeder

Place = Union[int, Literal["substation", "ends"]]
Placement = Union[Literal["all"], list[Place]]


class Sigma(Strict):
    """Standard deviation state estimation assumes per class of meter (pu for voltages, MW / Mvar for powers)."""

    voltage: float = Field(default=0.002, gt=0)
    injection: float = Field(default=0.005, gt=0)
    flow: float = Field(default=0.005, gt=0)


class Noise(Strict):
    """Standard deviation of the noise the channel draws per class (default: the assumed sigma); `pseudo` is
    relative to the bus's nominal power like `pseudo_loads.error`. 0 switches a class's noise off."""

    voltage: float | None = Field(default=None, ge=0)
    injection: float | None = Field(default=None, ge=0)
    flow: float | None = Field(default=None, ge=0)
    pseudo: float | None = Field(default=None, ge=0, le=1)


class PseudoLoads(Strict):
    """P and Q pseudo-measurements at every load or generator bus that has no real injection meter: the load
    profile's forecast, with a relative error (standard deviation over the bus's nominal power)."""

    error: float = Field(default=0.3, gt=0, le=1, description="0.1-0.5 is typical of load forecasts")
    correlation_time: Seconds | None = Field(default=None, description="AR(1) time constant of the drawn "
                                                                       "error (e.g. 2h); default white per step")

    @model_validator(mode="after")
    def _positive_time(self) -> "PseudoLoads":
        if self.correlation_time is not None and self.correlation_time <= 0:
            raise ValueError("correlation_time must be a positive duration such as 2h")
        return self


class ModelError(Strict):
    """Relative standard deviation of seeded multiplicative errors on every line's resistance and reactance
    in the detector's grid model: r' = r (1 + line_r N(0, 1)), floored at 5 % of r (x likewise)."""

    line_r: float = Field(default=0.0, ge=0, le=1)
    line_x: float = Field(default=0.0, ge=0, le=1)
    seed: int = Field(default=0, ge=0, description="the model's error is fixed per feeder, not per run")

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        return {"line_r": value, "line_x": value} if isinstance(value, (int, float)) else value

    @property
    def active(self) -> bool:
        return self.line_r > 0 or self.line_x > 0


class Metering(Strict):
    """Which meters exist (placements left out come from `preset`), their assumed sigma and the channel's noise."""

    preset: Literal["full", "sparse"] = "full"
    voltage: Placement | None = Field(default=None, description="buses with a voltage magnitude meter")
    injections: Placement | None = Field(default=None, description="buses with P and Q injection meters")
    flows: Union[Literal["all"], list[int]] | None = Field(default=None, description="lines with P and Q "
                                                                                      "flow meters (from end)")
    pseudo_loads: PseudoLoads | None = None
    sigma: Sigma = Sigma()
    noise: Noise = Noise()
    model_error: ModelError = Field(default=ModelError(), description="error of the detector's line impedances "
                                                                      "(a number: line_r = line_x)")

    @model_validator(mode="before")
    @classmethod
    def _preset_name(cls, value: Any) -> Any:
        return {"preset": value} if isinstance(value, str) else value

    def resolved(self) -> "Metering":
        """This block with every placement the file leaves out taken from its preset."""
        preset = PRESETS[self.preset]
        return self.model_copy(update={k: v for k, v in preset.items() if k not in self.model_fields_set})

    def noise_of(self, cls: str) -> float:
        """The channel's standard deviation for class voltage / injection / flow, or the relative one of pseudo."""
        given = getattr(self.noise, cls)
        if given is not None:
            return given
        return self.pseudo_loads.error if cls == "pseudo" else getattr(self.sigma, cls)


PRESETS: dict[str, dict[str, Any]] = {
    "full": {"voltage": "all", "injections": "all", "flows": "all", "pseudo_loads": None},
    "sparse": {"voltage": ["substation", "ends"], "injections": ["substation"], "flows": [],
               "pseudo_loads": PseudoLoads(error=0.3)},
}


@dataclass(frozen=True)
class RunMetering:
    """A scenario's metering with what its pseudo-measurements need: the load scale and the generators
    as (bus, P nameplate MW, reactive capability Mvar)."""

    metering: Metering
    load_scale: float
    generators: tuple[tuple[int, float, float], ...]


def run_metering(scn: Any) -> RunMetering | None:
    """The scenario's `metering:` block resolved against its preset, None without the block."""
    if scn.metering is None:
        return None
    gens = tuple((g.bus, g.p_mw, (g.rating_mva**2 - g.p_mw**2) ** 0.5) for g in scn.generators)
    return RunMetering(scn.metering.resolved(), scn.loads.scale, gens)


def perturbed_feeder(feeder: "Feeder", error: ModelError) -> "Feeder":
    """A copy of `feeder` whose lines carry the block's seeded impedance errors (the detector's belief)."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy=error.seed, spawn_key=[0x6D65]))
    net = copy.deepcopy(feeder.net)
    n = len(net.line)
    r, x = rng.normal(0.0, 1.0, n), rng.normal(0.0, 1.0, n)
    net.line["r_ohm_per_km"] = net.line.r_ohm_per_km * np.maximum(1 + error.line_r * r, 0.05)
    net.line["x_ohm_per_km"] = net.line.x_ohm_per_km * np.maximum(1 + error.line_x * x, 0.05)
    return replace(feeder, net=net)


def noise_memory(run: RunMetering | None, feeder: "Feeder", names: tuple[str, ...], step_s: float) -> np.ndarray | None:
    """Per meter (ordered like `names`) the AR(1) coefficient exp(-step / correlation_time) of the channel's
    noise: the pseudo-measurements' with a correlation time, 0 for the rest; None when every meter is white."""
    if run is None or run.metering.pseudo_loads is None or run.metering.pseudo_loads.correlation_time is None:
        return None
    from cosim.detection.network import metering_plan

    real = replace(run, metering=run.metering.model_copy(update={"pseudo_loads": None}))
    pseudo = {m.name for m in metering_plan(run, feeder)} - {m.name for m in metering_plan(real, feeder)}
    rho = math.exp(-step_s / run.metering.pseudo_loads.correlation_time)
    return np.array([rho if n in pseudo else 0.0 for n in names])
