"""A training distribution written in YAML: scenarios drawn at random, one layout and one day at a time.

A draw has two seeds. The layout seed picks the feeder and the DERs (how many, kinds, buses, sizes);
the day seed picks the date, the load shape and scale, the weather and the events (random
disruptions, measurement noise and false data). Every draw is an ordinary validated `Scenario`.
A file is a distribution when its top level has `feeders:` (a scenario has `grid:`).

```yaml
name: voltvar-general
clock: {duration: 24h, step: 5min}
dates: ["2025-01-01", "2025-12-31"]
voltage_limits: [0.95, 1.05]
feeders:
  - {feeder: ieee33, weight: 1, line_max_i_ka: 0.4}
  - {feeder: ieee69, weight: 1, buses: [11, 18, 27, 61, 65]}   # default: every bus with a load
ders: {count: [2, 6], kinds: {pv: 0.8, wind: 0.2}, penetration: [0.6, 1.8], s_over_p: [1.0, 1.2]}
loads: {profiles: [residential, commercial], scale: [0.5, 1.5], noise: [0.0, 0.05]}
events: {kinds: [dg_trip, cloud_transient, line_outage, fdi], rate_per_day: 2, measurement_noise: [0, 0.005]}
attacks: {kinds: [fdi, replay, command_injection], rate_per_day: 16, duration: [10min, 1h]}   # default: none
```
`penetration` is the DERs' total nameplate over the feeder's nominal load, split at random between them.
`attacks:` is a second random schedule, of measurement and command attacks only, at its own rate;
`seed` is the base seed of the runs `cosim dataset` draws (run r: both seeds `seed + r`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from cosim.events.models import PHYSICAL_KINDS, RandomKind
from cosim.grid.feeders import Feeder, FeederError, load_feeder
from cosim.scenario.base import Seconds, Strict
from cosim.scenario.errors import Problem, ScenarioError
from cosim.scenario.loader import LoadedScenario
from cosim.scenario.schema import Scenario, Site
from cosim.scenario.schema_errors import schema_problems
from cosim.scenario.yamlpos import YamlSyntaxError, line_for, load_yaml_with_lines

Range = tuple[float, float]


def _ordered(v: tuple) -> tuple:
    if v[0] > v[1]:
        raise ValueError(f"expected [low, high] with low <= high, got {list(v)}")
    return v


class DistClock(Strict):
    """Length and step of every drawn day (the date is drawn from `dates`)."""

    duration: Seconds = 86_400.0
    step: Seconds = 300.0


class FeederChoice(Strict):
    """A feeder the distribution draws, how often, and where DERs may go."""

    feeder: str
    weight: float = Field(default=1.0, gt=0)
    buses: list[int] | None = Field(default=None, min_length=1)
    line_max_i_ka: float | None = Field(default=None, gt=0)


class DERRanges(Strict):
    """How many DERs, of which kinds, how large."""

    count: tuple[int, int] = (1, 4)
    kinds: dict[Literal["pv", "wind"], float] = Field(default_factory=lambda: {"pv": 1.0}, min_length=1)
    penetration: Range = (0.5, 1.5)
    s_over_p: Range = (1.1, 1.1)
    cloudiness: Range = (0.0, 0.5)
    mean_speed: Range = (6.0, 9.0)

    _check = field_validator("count", "penetration", "s_over_p", "cloudiness", "mean_speed")(_ordered)

    @model_validator(mode="after")
    def _positive(self) -> "DERRanges":
        if self.count[0] < 1 or self.penetration[0] <= 0 or self.s_over_p[0] < 1.0:
            raise ValueError("count must be >= 1, penetration > 0 and s_over_p >= 1 (the rating caps P)")
        if any(w <= 0 for w in self.kinds.values()):
            raise ValueError("kinds: every weight must be > 0")
        return self


class LoadRanges(Strict):
    """Load shapes and scales of the drawn days."""

    profiles: list[Literal["constant", "residential", "commercial"]] = Field(default=["residential"], min_length=1)
    scale: Range = (1.0, 1.0)
    noise: Range = (0.03, 0.03)

    _check = field_validator("scale", "noise")(_ordered)


class EventRanges(Strict):
    """The co-simulation's own events on the drawn days."""

    kinds: list[RandomKind] = []  # type: ignore[valid-type]
    rate_per_day: float = Field(default=0.0, ge=0)
    measurement_noise: Range = (0.0, 0.0)  # pu standard deviation on every bus voltage the controller sees

    _check = field_validator("measurement_noise")(_ordered)

    @model_validator(mode="after")
    def _kinds_with_rate(self) -> "EventRanges":
        if self.rate_per_day > 0 and not self.kinds:
            raise ValueError("rate_per_day > 0 needs a list of kinds")
        return self


class AttackRanges(Strict):
    """Measurement and command attacks on the drawn days: a random schedule of its own."""

    kinds: list[RandomKind] = []  # type: ignore[valid-type]
    rate_per_day: float = Field(default=0.0, ge=0)
    duration: tuple[Seconds, Seconds] = (600.0, 3600.0)

    @field_validator("kinds")
    @classmethod
    def _attacks_only(cls, v: list[str]) -> list[str]:
        if physical := [k for k in v if k in PHYSICAL_KINDS]:
            raise ValueError(f"physical disruptions, not attacks: {', '.join(physical)}; list them under events.kinds")
        return v

    @field_validator("duration")
    @classmethod
    def _positive_ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1]:
            raise ValueError(f"expected [shortest, longest] with 0 < shortest <= longest, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _kinds_with_rate(self) -> "AttackRanges":
        if self.rate_per_day > 0 and not self.kinds:
            raise ValueError("rate_per_day > 0 needs a list of kinds")
        return self


class Distribution(Strict):
    """A whole distribution file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    clock: DistClock = DistClock()
    dates: tuple[date, date] = (date(2025, 1, 1), date(2025, 12, 31))
    site: Site = Site()
    voltage_limits: Range = (0.95, 1.05)
    feeders: list[FeederChoice] = Field(min_length=1)
    ders: DERRanges = DERRanges()
    loads: LoadRanges = LoadRanges()
    events: EventRanges = EventRanges()
    attacks: AttackRanges = AttackRanges()
    seed: int = Field(default=0, description="base seed of the runs cosim dataset draws (run r: seed + r)")
    days_per_layout: int = Field(default=4, ge=1, description="training days drawn on one layout before the next")

    _check = field_validator("dates", "voltage_limits")(_ordered)


def is_distribution(path: str | Path) -> bool:
    """Whether a YAML file is a distribution (top-level `feeders:`) rather than a scenario."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "feeders" in data


def _candidates(choice: FeederChoice, feeder: Feeder) -> list[int]:
    """Buses DERs may go to: the listed ones, else every bus with a load."""
    if choice.buses is not None:
        return list(choice.buses)
    net = feeder.net
    loaded = set(net.load.bus[net.load.p_mw > 0].tolist())
    return [int(label) for label, index in zip(feeder.bus_labels, net.bus.index) if index in loaded]


@dataclass
class DrawnDistribution:
    """A loaded distribution: draws scenarios by (layout seed, day seed)."""

    spec: Distribution
    path: Path
    feeders: list[Feeder]
    buses: list[list[int]]
    varies_layout = True  # a source whose draws differ in feeder and DERs (`controllers.drl.sources`)

    @property
    def days_per_layout(self) -> int:
        return self.spec.days_per_layout

    @property
    def base_dir(self) -> Path:
        return self.path.resolve().parent

    def draw(self, layout_seed: int, day_seed: int) -> LoadedScenario:
        """The scenario of one layout on one day (same seeds, same scenario)."""
        d = self.spec
        lr = np.random.default_rng([int(layout_seed), 1])
        k = int(lr.choice(len(d.feeders), p=np.array([f.weight for f in d.feeders]) / sum(f.weight for f in d.feeders)))
        choice, feeder, candidates = d.feeders[k], self.feeders[k], self.buses[k]
        n = int(lr.integers(d.ders.count[0], min(d.ders.count[1], len(candidates)) + 1))
        kinds = list(d.ders.kinds)
        weights = np.array([d.ders.kinds[x] for x in kinds])
        drawn = lr.choice(kinds, size=n, p=weights / weights.sum())
        buses = lr.choice(candidates, size=n, replace=False)
        total = float(lr.uniform(*d.ders.penetration)) * float(feeder.net.load.p_mw.sum())
        shares = lr.dirichlet(np.full(n, 2.0))
        ratios = lr.uniform(*d.ders.s_over_p, size=n)
        dr = np.random.default_rng([int(day_seed), 2])
        generators, counts = [], {"pv": 0, "wind": 0}
        for kind, bus, share, ratio in zip(drawn.tolist(), buses.tolist(), shares, ratios):
            counts[kind] += 1
            p = round(max(total * float(share), 0.01), 4)
            gen = {"name": f"{'pv' if kind == 'pv' else 'wt'}{counts[kind]}", "kind": kind, "bus": int(bus),
                   "p_mw": p, "s_mva": round(p * float(ratio), 4)}
            if kind == "pv":
                gen["cloudiness"] = round(float(dr.uniform(*d.ders.cloudiness)), 3)
            else:
                gen["mean_speed"] = round(float(dr.uniform(*d.ders.mean_speed)), 2)
            generators.append(gen)
        span = (d.dates[1] - d.dates[0]).days
        start = datetime.combine(d.dates[0], datetime.min.time()) + timedelta(days=int(dr.integers(span + 1)))
        events: list[dict] = []
        if d.events.rate_per_day > 0:
            events.append({"random": {"kinds": list(d.events.kinds), "rate_per_day": d.events.rate_per_day}})
        if d.attacks.rate_per_day > 0:
            events.append({"random": {"kinds": list(d.attacks.kinds), "rate_per_day": d.attacks.rate_per_day,
                                      "duration": list(d.attacks.duration)}})
        sigma = round(float(dr.uniform(*d.events.measurement_noise)), 5)
        if sigma > 0:
            events.append({"at": 0.0, "duration": d.clock.duration, "kind": "fdi", "target": "bus.*.vm_pu",
                           "random": sigma})
        data = {
            "name": f"{d.name}-{k}-{layout_seed}-{day_seed}", "seed": int(day_seed),
            "clock": {"start": start.isoformat(), "duration": d.clock.duration, "step": d.clock.step},
            "site": d.site.model_dump(),
            "grid": {"feeder": choice.feeder, "voltage_limits": list(d.voltage_limits),
                     "line_max_i_ka": choice.line_max_i_ka},
            "loads": {"profile": str(dr.choice(d.loads.profiles)), "scale": round(float(dr.uniform(*d.loads.scale)), 3),
                      "noise": round(float(dr.uniform(*d.loads.noise)), 4)},
            "generators": generators, "events": events,
        }
        return LoadedScenario(Scenario.model_validate(data), self.path, self.base_dir, {}, feeder)


def load_distribution(path: str | Path) -> DrawnDistribution:
    """Parse and check a distribution file; ScenarioError names file, line and field on bad input."""
    path = Path(path)
    try:
        data, lines = load_yaml_with_lines(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(path, [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, [Problem("", f"cannot read the file: {exc}")]) from None
    except YamlSyntaxError as exc:
        raise ScenarioError(path, [Problem("", exc.message, exc.line)]) from None
    if not isinstance(data, dict):
        raise ScenarioError(path, [Problem("", "expected a mapping with name, feeders, ders, ... at the top level", 1)])
    try:
        spec = Distribution.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(path, sorted(schema_problems(Distribution, data, exc, lines),
                                         key=lambda p: p.line or 0)) from None
    problems, feeders, buses = [], [], []
    for i, choice in enumerate(spec.feeders):
        where = ("feeders", i, "feeder")
        try:
            feeder = load_feeder(choice.feeder, path.resolve().parent)
        except FeederError as exc:
            problems.append(Problem(f"feeders[{i}].feeder", str(exc), line_for(lines, where)))
            continue
        bad = [b for b in choice.buses or [] if b not in feeder.bus_labels]
        if bad:
            problems.append(Problem(f"feeders[{i}].buses", f"bus {', '.join(map(str, bad))} does not exist on feeder "
                                    f"{choice.feeder} ({feeder.describe('bus')})", line_for(lines, ("feeders", i, "buses"))))
        feeders.append(feeder)
        buses.append(_candidates(choice, feeder))
    if problems:
        raise ScenarioError(path, problems)
    return DrawnDistribution(spec, path, feeders, buses)
