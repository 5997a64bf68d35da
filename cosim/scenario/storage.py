"""The `storage:` block: batteries a scenario adds at feeder buses (feeder-independent checks).

Sign convention is pandapower's storage (load convention): P > 0 charges, P < 0 discharges;
Q > 0 absorbs reactive power. `efficiency` is the one-way efficiency of both charging and
discharging (round trip = efficiency squared): charging at P for dt raises the stored energy by
P x efficiency x dt, discharging at |P| lowers it by |P| / efficiency x dt.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from cosim.grid.storage import StorageUnit
from cosim.scenario.base import Strict


class Storage(Strict):
    """One battery: power and energy ratings, state of charge (share of e_mwh) and efficiency."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    bus: int
    p_mw: float = Field(gt=0, le=10_000, description="largest charge or discharge power")
    e_mwh: float = Field(gt=0, le=100_000, description="energy capacity")
    soc0: float = Field(default=0.5, ge=0, le=1, description="state of charge at the start (share of e_mwh)")
    efficiency: float = Field(default=0.95, gt=0, le=1, description="one-way charge and discharge efficiency")
    soc_min: float = Field(default=0.1, ge=0, le=1)
    soc_max: float = Field(default=0.9, ge=0, le=1)
    s_mva: float | None = Field(default=None, gt=0, le=10_000, description="converter rating; default p_mw")

    @model_validator(mode="after")
    def _soc_range(self) -> "Storage":
        if self.soc_min >= self.soc_max:
            raise ValueError(f"soc_min {self.soc_min:g} must be below soc_max {self.soc_max:g}")
        if not self.soc_min <= self.soc0 <= self.soc_max:
            raise ValueError(f"soc0 {self.soc0:g} is outside [soc_min, soc_max] = [{self.soc_min:g}, {self.soc_max:g}]")
        return self

    @property
    def rating_mva(self) -> float:
        return self.s_mva if self.s_mva is not None else self.p_mw


def storage_units(scn) -> list[StorageUnit]:
    """A scenario's batteries as the grid model takes them."""
    return [StorageUnit(b.name, b.bus, b.p_mw, b.e_mwh, b.soc0, b.efficiency, b.soc_min, b.soc_max, b.rating_mva)
            for b in scn.storage]
