"""Attacks on the measurement path: pure transforms of one step's signals (name -> value).

Each step the channel adds sensor noise, lets every attack `observe` the sensed values (replay
tapes, delay lines and stuck readings keep what they need), then lets the active attacks
rewrite what the controller and the detector will see.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable

import numpy as np

from cosim.detection.network import Network, Topology
from cosim.detection.wls import WLS
from cosim.events.schedule import ScheduledEvent
from cosim.scenario.schema import FDI, Delay, Drop, FDIStealthy, Replay, SensorStuck, TimestampSkew


class Attack:
    """One scheduled attack on some signals; `apply` runs only while the event is active."""

    def __init__(self, event: ScheduledEvent, rng: np.random.Generator):
        self.event, self.targets, self.rng = event, event.targets, rng

    def observe(self, k: int, sensed: dict[str, float]) -> None:
        """See the sensed (pre-attack) values of step k; default: nothing to remember."""

    def apply(self, k: int, seen: dict[str, float]) -> None:
        raise NotImplementedError

    def _snapshot(self, sensed: dict[str, float]) -> dict[str, float]:
        return {n: sensed[n] for n in self.targets}


class FalseData(Attack):
    """seen = true * scale + bias + ramp * (elapsed share of the event, reaching 1 at its last step) + N(0, random)."""

    def apply(self, k, seen):
        s, e = self.event.spec, self.event
        offset = s.bias + s.ramp * (k - e.start + 1) / (e.end - e.start)
        noise = self.rng.normal(0.0, s.random, len(self.targets)) if s.random else np.zeros(len(self.targets))
        for name, eps in zip(self.targets, noise.tolist()):
            seen[name] = seen[name] * s.scale + offset + eps


class ReplayAttack(Attack):
    """Records the `window` before the attack, then plays it back in a loop."""

    def __init__(self, event, rng, step_s: float):
        super().__init__(event, rng)
        self.window = int(event.spec.window // step_s)
        self.tape: list[dict[str, float]] = []

    def observe(self, k, sensed):
        if self.event.start - self.window <= k < self.event.start:
            self.tape.append(self._snapshot(sensed))

    def apply(self, k, seen):
        seen.update(self.tape[(k - self.event.start) % self.window])


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


class DropAttack(Attack):
    """Each update is lost with probability `rate`; the receiver keeps the last value (or NaN)."""

    def __init__(self, event, rng):
        super().__init__(event, rng)
        self.held: dict[str, float] = {}

    def observe(self, k, sensed):
        if k == self.event.start - 1:
            self.held = self._snapshot(sensed)

    def apply(self, k, seen):
        s = self.event.spec
        lost = self.rng.random(len(self.targets)) < s.rate
        for name, gone in zip(self.targets, lost.tolist()):
            if not gone:
                self.held[name] = seen[name]
            elif s.fill == "nan":
                seen[name] = math.nan
            else:
                seen[name] = self.held.get(name, math.nan)


class Stuck(Attack):
    """The sensors keep the reading they had when the fault started (or the given value)."""

    def __init__(self, event, rng):
        super().__init__(event, rng)
        self.frozen: dict[str, float] = {}

    def observe(self, k, sensed):
        if k == self.event.start:
            value = self.event.spec.value
            self.frozen = {n: (sensed[n] if value is None else value) for n in self.targets}

    def apply(self, k, seen):
        seen.update(self.frozen)


class Stealthy(Attack):
    """a = h(x + c) - h(x): the attacker estimates x from what it intercepts, picks the state c that
    makes the buses seem to inject delta more, and rewrites every meter to match."""

    def __init__(self, event, rng, estimator: WLS, topology_at: Callable[[int], Topology]):
        super().__init__(event, rng)
        self.estimator, self.topology_at = estimator, topology_at
        net: Network = estimator.network
        self.delta_p = np.zeros(len(net.bus))
        self.delta_q = np.zeros(len(net.bus))
        for b in event.spec.buses:
            self.delta_p[net.bus_row[b]] += event.spec.delta_p_mw
            self.delta_q[net.bus_row[b]] += event.spec.delta_q_mvar

    def apply(self, k, seen):
        est, meters = self.estimator, self.estimator.meters
        topo = self.topology_at(k)
        z = np.array([seen[n] for n in meters.names])
        x = est.estimate(z, topo)
        if not x.converged:  # the attacker cannot estimate the state this step: leaves it alone
            return
        fake = est.network.shifted_state(topo, x.V, self.delta_p, self.delta_q)
        a = est.network.measure(topo, fake, meters)[0] - est.network.measure(topo, x.V, meters)[0]
        for name, value in zip(meters.names, (z + a).tolist()):
            if not math.isnan(value):
                seen[name] = value


def make_attack(event: ScheduledEvent, rng: np.random.Generator, step_s: float,
                estimator: WLS | None = None, topology_at: Callable[[int], Topology] | None = None) -> Attack:
    """The transform for one measurement-path event (a stealthy one needs the estimator and topology)."""
    s = event.spec
    if isinstance(s, FDI):
        return FalseData(event, rng)
    if isinstance(s, FDIStealthy):
        return Stealthy(event, rng, estimator, topology_at)
    if isinstance(s, Replay):
        return ReplayAttack(event, rng, step_s)
    if isinstance(s, Delay):
        return Late(event, rng, s.steps, hold_until_arrival=True)
    if isinstance(s, TimestampSkew):
        return Late(event, rng, int(s.skew // step_s), hold_until_arrival=False)
    if isinstance(s, Drop):
        return DropAttack(event, rng)
    if isinstance(s, SensorStuck):
        return Stuck(event, rng)
    raise ValueError(f"{s.kind} is not a measurement-path attack")


class SensorNoise:
    """Gaussian noise of each meter's standard deviation, added before any attack."""

    def __init__(self, names: tuple[str, ...], sigma: np.ndarray, rng: np.random.Generator):
        self.names, self.sigma, self.rng = names, sigma, rng

    def apply(self, values: dict[str, float]) -> None:
        noise = self.rng.normal(0.0, 1.0, len(self.names)) * self.sigma
        for name, eps in zip(self.names, noise.tolist()):
            values[name] += eps


class MeasurementPath:
    """Noise, then attacks, on each step's signals; reports the seen value of every attacked signal."""

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
        return seen, {f"seen.{n}": seen[n] for n in self.recorded}
