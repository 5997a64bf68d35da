"""The scenario's devices as couplings: which register map each uses, and the grid elements they add (shunts).

What a device of each kind does is its kind module's business (`hil/kinds/<kind>.py`, see
`hil.kinds`); this module builds the couplings of a scenario from them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cosim.grid.model import Shunt
from cosim.scenario.schema import Device, Scenario
from hil import MAPS_DIR
from hil.coupling import Coupling
from hil.kinds import KINDS, module
from hil.registers import RegisterMap, load_map

__all__ = ["Coupling", "cached_map", "coupling", "couplings", "device_shunts", "map_path"]


def cached_map(path: Path) -> RegisterMap:
    """`load_map`, once per file version (a map is parsed and validated in a third of a second)."""
    path = path.resolve()
    return _load(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> RegisterMap:
    return load_map(path)


def map_path(spec: Device, base_dir: Path) -> Path:
    """The register map of a device: its `map:` (relative to the scenario) or the kind's shipped map."""
    if spec.map is not None:
        p = Path(spec.map)
        return p if p.is_absolute() else base_dir / p
    return MAPS_DIR / KINDS[spec.kind].map


def coupling(scn: Scenario, spec: Device, base_dir: Path) -> Coupling:
    """The coupling of one (already checked) scenario device."""
    return module(spec.kind).COUPLING.build(scn, spec, cached_map(map_path(spec, base_dir)), base_dir)


def couplings(scn: Scenario, base_dir: Path) -> list[Coupling]:
    """The couplings of every device of a scenario, in file order."""
    return [coupling(scn, d, base_dir) for d in scn.devices]


def device_shunts(scn: Scenario, base_dir: Path) -> list[Shunt]:
    """The switched shunts the devices add to the grid model (capacitor banks)."""
    return [s for c in couplings(scn, base_dir) if (s := c.shunt()) is not None]
