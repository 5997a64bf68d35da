"""Shipped baseline controllers, one module each; a module's file name is its `controller: {kind: ...}`.

A module registers its class as `CONTROLLER`. The kinds are found by file name, without
importing the modules, so the scenario schema can list them cheaply; modules whose name
starts with `_` are helpers. Adding a baseline is adding one module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

_found = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
KINDS: tuple[str, ...] = tuple(sorted(_found, key=lambda name: name != "none"))  # `none` first, then by name


def baseline_class(kind: str) -> type:
    """The controller class of a baseline kind."""
    return importlib.import_module(f"{__name__}.{kind}").CONTROLLER


def message_signals(kind: str, ders: list[str]) -> tuple[str, ...]:
    """The agent-to-agent message signals of a baseline kind over DERs `ders` (none for most kinds)."""
    from cosim.signals import message

    quantities = baseline_class(kind).messages if kind in KINDS else ()
    return tuple(message(d, q) for d in ders for q in quantities)
