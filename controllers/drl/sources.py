"""Where training and evaluation days come from: one scenario (days differ by seed) or a distribution.

Both answer `draw(layout_seed, day_seed) -> LoadedScenario`. A scenario keeps its layout and only
takes the day seed (inputs and random events); a distribution draws the layout from one seed and
the day from the other (`controllers.drl.distribution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from controllers.drl.distribution import is_distribution, load_distribution
from controllers.drl.env import day_scenario
from cosim.scenario.loader import LoadedScenario, load_scenario


class ScenarioSource(Protocol):
    """Scenarios by (layout seed, day seed)."""

    path: Path
    varies_layout: bool
    days_per_layout: int

    def draw(self, layout_seed: int, day_seed: int) -> LoadedScenario:
        """The scenario of one layout on one day."""


@dataclass
class SingleScenario:
    """One scenario file: every draw is its layout on another day, optionally with random disruptions."""

    loaded: LoadedScenario
    events_per_day: float = 0.0
    varies_layout = False
    days_per_layout = 1

    @property
    def path(self) -> Path:
        return self.loaded.path

    def draw(self, layout_seed: int, day_seed: int) -> LoadedScenario:
        """The scenario with seed `day_seed` (the layout seed is ignored: the layout is the file's)."""
        return day_scenario(self.loaded, day_seed, self.events_per_day)


def open_source(path: str | Path | LoadedScenario, events_per_day: float = 0.0) -> ScenarioSource:
    """A scenario or distribution file (or a loaded scenario) as a source; ScenarioError on bad input."""
    if isinstance(path, LoadedScenario):
        return SingleScenario(path, events_per_day)
    if is_distribution(path):
        return load_distribution(path)
    return SingleScenario(load_scenario(path), events_per_day)
