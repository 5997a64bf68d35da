"""The catalogue of detector kinds: each kind is one module under `cosim.detection.kinds` that registers itself.

A `DetectorKind` carries its scenario model (a `DetectorBase` subclass with a `kind` literal) and
`build`, which turns a validated block into a running `Detector` for one run. Kind modules import
nothing heavy at module level (the schema imports them); `build` imports what it needs.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from cosim.assembly import Assembly
    from cosim.detection.base import DetectorBase


class DetectorError(ValueError):
    """A detector block that cannot run: `field` names the key (relative to the block), the text says why."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class Detector(Protocol):
    """A running detector: one call per step with what the channel delivered, never ground truth."""

    def step(self, k: int, seen: Mapping[str, float]) -> dict[str, float | str]:
        """At least `alarm` (1.0 / 0.0) and `score` (higher = more suspicious) for step k; kinds may add more."""


@dataclass(frozen=True)
class DetectorKind:
    """One detector kind: its scenario model and how a block of it becomes a running detector."""

    model: type["DetectorBase"]
    build: Callable[["DetectorBase", "Assembly", Path], Detector]  # (block, run assembly, scenario folder)

    @property
    def name(self) -> str:
        return typing.get_args(self.model.model_fields["kind"].annotation)[0]


_KINDS: dict[str, DetectorKind] = {}


def register(model: type["DetectorBase"]) -> Callable[[Callable], Callable]:
    """Decorator on a kind's build function: registers (model, build) under the model's `kind` literal."""

    def wrap(build: Callable) -> Callable:
        kind = DetectorKind(model, build)
        _KINDS[kind.name] = kind
        return build
    return wrap


def all_kinds() -> tuple[DetectorKind, ...]:
    """Every registered kind, `wls` first (the default)."""
    return tuple(sorted(_KINDS.values(), key=lambda k: (k.name != "wls", k.name)))


def kind_of(name: str) -> DetectorKind:
    """The registered kind `name`."""
    return _KINDS[name]
