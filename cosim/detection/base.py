"""What every detector block shares: its name and the metering it reads (meters, noise), as pydantic models.

The metering of a run is one: the channel adds sensor noise once and every detector sees the same
`seen.*` values. A block that sets `measurements` or `noise` sets it for the run; blocks that leave
them out take it over (`cosim.detection.models.metering_of`). A scenario-level `metering:` block
(`cosim.scenario.metering`) replaces both; the run's block then carries it as `run_metering`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Union

from pydantic import Field, PrivateAttr

from cosim.scenario.base import Strict

if TYPE_CHECKING:
    from cosim.scenario.metering import RunMetering

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"


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


class DetectorBase(Strict):
    """Keys of every detector kind: a name (signals `detector.<name>.*` and metrics `<name>_detector_*` when
    a run has several detectors) and the run's metering."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN, description="default: the kind")
    noise: bool = Field(default=True, description="Gaussian sensor noise of each meter's sigma on what is seen")
    measurements: Measurements = Measurements()
    _run_metering: "RunMetering | None" = PrivateAttr(default=None)

    @property
    def run_metering(self) -> "RunMetering | None":
        """The scenario's `metering:` block when it has one (set by `metering_of`), else None."""
        return self._run_metering

    @property
    def label(self) -> str:
        """The detector's name (its kind unless named)."""
        return self.name or self.kind  # type: ignore[attr-defined]
