"""A device of your own register map (`map:` is required): reads `points`, writes only what `writable` lists.

`points` defaults to every numeric point; each is published as `<name>.<Point>`. There is
no firmware stub, so a custom device is always a real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hil.coupling import Coupling, num

# read by cosim.scenario.devices without importing hil: keep it a literal
SCHEMA = {
    "map": None,
    "stub": None,
    "keys": {
        "points": {"type": "names", "doc": "the points read and published (default: every numeric point)"},
    },
}


@dataclass
class CustomCoupling(Coupling):
    """A device of your own map: reads `points` (default every numeric point), writes only `writable`."""

    def __post_init__(self) -> None:
        numeric = [p.name for p in self.regmap.points if p.type not in ("string", "sunssf")]
        self.reads = tuple(self.spec.points) if self.spec.points is not None else tuple(numeric)

    def signals(self, values: Mapping[str, Any] | None) -> dict[str, float]:
        return {f"{self.name}.{p}": num(values, p) for p in self.reads}


COUPLING = CustomCoupling
