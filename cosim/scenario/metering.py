"""The scenario's `metering:` block: which meters the feeder has, the sigma state estimation assumes for
each class of meter, and the noise the channel actually draws (model error when they differ).

`metering: full` (every bus V, P, Q and every line P, Q: what runs without the block meter) or
`metering: sparse` (substation V, P, Q, voltages at the feeder ends, load pseudo-measurements);
a mapping starts from `preset` (default full) and replaces the placements it names. Places are bus
numbers (line numbers for `flows`), `substation` (the slack bus) or `ends` (the last bus of every
lateral). The block is the run's: every detector and a stealthy attacker see the same meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import Field, model_validator

from cosim.scenario.base import Strict

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
