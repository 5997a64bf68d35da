"""Attacks on the measurement path: pure transforms of one step's signals (name -> value).

Each step the channel adds sensor noise, lets every attack `observe` the sensed values (replay
tapes, delay lines and stuck readings keep what they need), then lets the active attacks
rewrite what the controller and the detector will see. Each kind's `Attack` lives in its module
under `cosim.events.kinds`; `Late` is shared by `delay` and `timestamp_skew`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

import numpy as np

from cosim.events.registry import kind_of

if TYPE_CHECKING:
    from cosim.detection.network import Topology
    from cosim.detection.wls import WLS
    from cosim.events.schedule import ScheduledEvent


class Attack:
    """One scheduled attack on some signals; `apply` runs only while the event is active."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator):
        self.event, self.targets, self.rng = event, event.targets, rng

    def observe(self, k: int, sensed: dict[str, float]) -> None:
        """See the sensed (pre-attack) values of step k; default: nothing to remember."""

    def apply(self, k: int, seen: dict[str, float]) -> None:
        raise NotImplementedError

    def record(self, k: int) -> dict[str, float]:
        """What the attack itself reports for step k, every step (e.g. the residual a stealthy one leaves)."""
        return {}

    def _snapshot(self, sensed: dict[str, float]) -> dict[str, float]:
        return {n: sensed[n] for n in self.targets}


class Late(Attack):
    """Samples `lag` steps old. A delay holds the last pre-attack sample until delayed ones arrive;
    a timestamp skew takes the sample stamped now, which was taken `lag` steps ago."""

    def __init__(self, event, rng, lag: int, hold_until_arrival: bool):
        super().__init__(event, rng)
        self.lag, self.hold = lag, hold_until_arrival
        self.past: deque[tuple[int, dict[str, float]]] = deque(maxlen=lag + 2)

    def observe(self, k, sensed):
        if self.event.start - self.lag - 1 <= k < self.event.end:
            self.past.append((k, self._snapshot(sensed)))

    def apply(self, k, seen):
        j = k - self.lag
        if self.hold:
            j = max(j, self.event.start - 1)
        oldest = self.past[0][0]
        seen.update(self.past[max(j, oldest) - oldest][1])


def make_attack(event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                estimator: WLS | None = None, topology_at: Callable[[int], Topology] | None = None) -> Attack:
    """The transform for one measurement-path event (a stealthy one needs the estimator and topology)."""
    return kind_of(event.spec).measurement_attack(event, rng, step_s, estimator, topology_at)


class SensorNoise:
    """Gaussian noise of each meter's standard deviation, added before any attack; with `memory` (AR(1)
    coefficient per meter, 0 = white) e_k = rho e_(k-1) + sqrt(1 - rho^2) sigma xi_k, same marginal sigma."""

    def __init__(self, names: tuple[str, ...], sigma: np.ndarray, rng: np.random.Generator,
                 memory: np.ndarray | None = None):
        self.names, self.sigma, self.rng, self.memory = names, sigma, rng, memory
        self.last: np.ndarray | None = None

    def draw(self) -> np.ndarray:
        """This step's noise per meter."""
        noise = self.rng.normal(0.0, 1.0, len(self.names)) * self.sigma
        if self.memory is not None:
            if self.last is not None:
                noise = self.memory * self.last + np.sqrt(1.0 - self.memory**2) * noise
            self.last = noise
        return noise

    def apply(self, values: dict[str, float]) -> None:
        noise = self.draw()
        for name, eps in zip(self.names, noise.tolist()):
            values[name] += eps


class MeasurementPath:
    """Noise, then attacks, on each step's signals; reports the seen value of every attacked signal and what
    the attacks record."""

    def __init__(self, attacks: list[Attack], noise: SensorNoise | None = None):
        self.attacks, self.noise = attacks, noise
        self.recorded = tuple(dict.fromkeys(n for a in attacks for n in a.targets))

    def step(self, k: int, true: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        """(what the controller sees, `seen.<name>` of the attacked signals) for step k."""
        seen = dict(true)
        if self.noise is not None:
            self.noise.apply(seen)
        for a in self.attacks:
            a.observe(k, seen)
        for a in self.attacks:
            if a.event.active(k):
                a.apply(k, seen)
        record = {f"seen.{n}": seen[n] for n in self.recorded}
        for a in self.attacks:
            record.update(a.record(k))
        return seen, record
