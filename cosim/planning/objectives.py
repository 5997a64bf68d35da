"""Planning objectives: a weighted sum of losses, DG cost, voltage deviation and emissions, as a small registry.

F = sum over terms of weight x term / base, with the terms
  loss      active losses in kW (mean over the snapshots),
  cost      sum of DG sizes x cost per MW in USD,
  vdev      mean over buses of |V - 1| in pu,
  emission  sum of DG sizes x emission factor in kg.
A DG fleet is a mix of renewable and fossil units (`renewable_share` of every MW), so the cost
and emission per MW are the mix's averages. Placements must keep every bus voltage within
`voltage_limits` and every branch at or below `max_loading_pct`; the violation is reported
separately, for the methods to handle as a constraint. Named objectives are registered with
`@objective`; a YAML or JSON file with the same keys gives a user objective.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cosim.planning.network import Evaluation, PlanningError

TERMS = ("loss", "cost", "vdev", "emission")
TERM_KEYS = {"loss": "loss_kw", "cost": "cost_usd", "vdev": "vdev_pu", "emission": "emission_kg"}


class Objective(BaseModel):
    """Weights, normalising bases, per-MW cost and emission of each DG kind, and the operating limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    weights: dict[str, float] = Field(default_factory=lambda: {"loss": 1.0})
    bases: dict[str, float] = Field(default_factory=lambda: {"loss": 1.0, "cost": 1.0, "vdev": 1.0, "emission": 1.0})
    renewable_share: float = Field(1.0, ge=0.0, le=1.0)
    cost_usd_per_mw: dict[str, float] = Field(default_factory=lambda: {"renewable": 0.0, "fossil": 0.0})
    emission_kg_per_mw: dict[str, float] = Field(default_factory=lambda: {"renewable": 0.0, "fossil": 0.0})
    voltage_limits: tuple[float, float] = (0.95, 1.05)
    max_loading_pct: float = Field(100.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> Objective:
        for key, table in (("weights", self.weights), ("bases", self.bases)):
            for term, value in table.items():
                if term not in TERMS:
                    raise ValueError(f"{key}: unknown term {term!r} (expected {', '.join(TERMS)})")
                if value < 0 or (key == "bases" and value == 0):
                    raise ValueError(f"{key}.{term}: {value} must be {'> 0' if key == 'bases' else '>= 0'}")
        if not any(self.weights.values()):
            raise ValueError("weights: at least one weight must be positive")
        for key, table in (("cost_usd_per_mw", self.cost_usd_per_mw), ("emission_kg_per_mw", self.emission_kg_per_mw)):
            if set(table) - {"renewable", "fossil"} or any(v < 0 for v in table.values()):
                raise ValueError(f"{key}: expected {{renewable: number >= 0, fossil: number >= 0}}")
        lo, hi = self.voltage_limits
        if not 0 < lo < hi:
            raise ValueError(f"voltage_limits: expected [low, high] with 0 < low < high, got [{lo}, {hi}]")
        return self

    def _per_mw(self, table: dict[str, float]) -> float:
        share = self.renewable_share
        return share * table.get("renewable", 0.0) + (1 - share) * table.get("fossil", 0.0)

    @property
    def active(self) -> list[str]:
        """Terms with a positive weight (the objectives of a multi-objective search)."""
        return [t for t in TERMS if self.weights.get(t, 0.0) > 0]

    def terms(self, ev: Evaluation, total_mw: float) -> dict[str, float]:
        """Every term in its unit for an evaluated placement with `total_mw` of DG."""
        return {"loss_kw": ev.loss_kw, "cost_usd": total_mw * self._per_mw(self.cost_usd_per_mw),
                "vdev_pu": ev.vdev_pu, "emission_kg": total_mw * self._per_mw(self.emission_kg_per_mw)}

    def value(self, terms: dict[str, float]) -> float:
        """F: the weighted sum of the normalised terms."""
        return float(sum(w * terms[TERM_KEYS[t]] / self.bases.get(t, 1.0) for t, w in self.weights.items() if w))

    def vector(self, terms: dict[str, float]) -> np.ndarray:
        """The active terms, normalised by their bases (for a Pareto front)."""
        return np.array([terms[TERM_KEYS[t]] / self.bases.get(t, 1.0) for t in self.active])

    def violation(self, ev: Evaluation) -> float:
        """How far a placement is outside the limits: pu of voltage beyond them plus loading excess / 100 (0 = feasible)."""
        if not ev.converged:
            return np.inf
        lo, hi = self.voltage_limits
        return max(lo - ev.vm_min_pu, 0.0) + max(ev.vm_max_pu - hi, 0.0) + max(ev.loading_max_pct - self.max_loading_pct, 0.0) / 100


OBJECTIVES: dict[str, Callable[[], Objective]] = {}


def objective(name: str) -> Callable[[Callable[[], Objective]], Callable[[], Objective]]:
    """Register a named objective (selectable as `--objective <name>`)."""
    def add(fn: Callable[[], Objective]) -> Callable[[], Objective]:
        OBJECTIVES[name] = fn
        return fn
    return add


@objective("losses")
def losses() -> Objective:
    """Active losses in kW, the classic DG-siting objective."""
    return Objective(name="losses", weights={"loss": 1.0})


@objective("seed001")
def seed001() -> Objective:
    """The seed paper's equation (5) with its Table I: 80 % renewable DG (80,000 USD/MW, 0 kg/MW), 20 % fossil
    (100,000 USD/MW, 500 kg/MW), bases 100 kW, 100,000 USD, 1.0 pu, 500 kg."""
    return Objective(name="seed001", weights={"loss": 0.4, "cost": 0.3, "vdev": 0.2, "emission": 0.1},
                     bases={"loss": 100.0, "cost": 100_000.0, "vdev": 1.0, "emission": 500.0}, renewable_share=0.8,
                     cost_usd_per_mw={"renewable": 80_000.0, "fossil": 100_000.0},
                     emission_kg_per_mw={"renewable": 0.0, "fossil": 500.0})


def resolve(spec: str) -> Objective:
    """A registered objective by name, or a user objective from a YAML/JSON file; PlanningError otherwise."""
    if spec in OBJECTIVES:
        return OBJECTIVES[spec]()
    path = Path(spec)
    if not path.is_file():
        raise PlanningError(f"--objective: {spec!r} is neither a known objective ({', '.join(OBJECTIVES)}) "
                            "nor an existing YAML/JSON file")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PlanningError(f"objective file {path}: cannot be read as {'JSON' if path.suffix == '.json' else 'YAML'} "
                            f"({exc})") from None
    if not isinstance(data, dict):
        raise PlanningError(f"objective file {path}: expected a mapping with keys {', '.join(Objective.model_fields)}")
    try:
        return Objective(**{"name": path.stem, **data})
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in first["loc"])
        if not where:  # the cross-field checks name their field first: "weights.loss: ..."
            where, _, msg = msg.partition(": ")
        raise PlanningError(f"objective file {path}, field {where}: {msg} "
                            f"(allowed keys: {', '.join(Objective.model_fields)})") from None
