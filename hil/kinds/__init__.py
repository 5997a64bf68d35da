"""The device kinds: one module per kind, named after the kind (`inverter`, `capbank`, ...).

A kind module declares everything about its kind in one place:

- `SCHEMA` — a dict *literal* (the scenario schema reads it with `ast.literal_eval`, without
  importing hil; see `cosim.scenario.devices`): the shipped register map in `hil/maps/`, the
  firmware stub module, the kind's own device keys and its `limits:` keys with the guard
  rule each becomes (`point`: a range clamp of that point; `rate_of`: a rate limit);
- `COUPLING` — its `hil.coupling.Coupling` subclass: reads, writable points, physics inputs,
  setpoint translation, published signals, effect on the grid, stub options;
- `check(ctx, device, at)` (optional) — its loader checks, as (path, message) pairs.

Adding a kind is adding a module here (plus its test and its lines in docs/hil.md); the
schema, the loader checks, the bridge and `cosim devices` find it by its file name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cosim.scenario.devices import KINDS, KindSchema

__all__ = ["KINDS", "KindSchema", "module"]


def module(kind: str) -> ModuleType:
    """The module of a device kind (imported on first use)."""
    if kind not in KINDS:
        raise KeyError(f"unknown device kind {kind!r} (kinds: {', '.join(KINDS)})")
    return importlib.import_module(f"{__name__}.{kind}")
