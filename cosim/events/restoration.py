"""Restoration switching over a run: the `failures.restoration` block turned into tie closings on the step grid.

Walks the run's line and transformer outages in step order. Whenever an outage leaves buses
de-energised, restoration is attempted `switching_time` later with `cosim.grid.restoration` at
that step's operating point (the run's load and available generation): the chosen tie closes
and stays closed until a repair rejoins the island to its normal supply (the tie would close a
loop); then it reopens in the same step as the repaired branch recloses (a closed transition: no
second interruption, never a loop). An island no tie can restore stays dead until repair. Every
closing and every refusal is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandapower as pp
from pydantic import Field

from cosim.grid.feeders import Feeder
from cosim.scenario.units import steps_in
from cosim.grid.restoration import Configuration, Limits, closes_loop, dead_islands, restore
from cosim.scenario.base import Seconds, Strict

if TYPE_CHECKING:
    from cosim.eventlog import EventLog
    from cosim.events.schedule import ScheduledEvent

DEFAULT_SWITCHING_S = 300.0


class Restoration(Strict):
    """The `failures.restoration` block: how long switching takes and what the restored feeder must keep."""

    switching_time: Seconds = Field(default=DEFAULT_SWITCHING_S, gt=0)
    min_vm_pu: float = Field(default=0.90, gt=0, lt=1.2)
    max_loading_pct: float = Field(default=100.0, gt=0)

    @property
    def limits(self) -> Limits:
        """The limits a restored configuration is checked against."""
        return Limits(self.min_vm_pu, self.max_loading_pct)


@dataclass(frozen=True)
class Outage:
    """A line (`kind` 'line') or transformer ('trafo') out for steps start <= k < end."""

    kind: str
    element: int
    start: int
    end: int


@dataclass(frozen=True)
class Switching:
    """Tie `tie` closed for steps start <= k < end, feeding `buses` that the `cause` outages cut off."""

    tie: int
    start: int
    end: int
    buses: tuple[int, ...]
    cause: tuple[str, ...]  # e.g. ('line.25',)
    detail: str = ""


@dataclass(frozen=True)
class Refusal:
    """An island no tie could restore at step `at`, and why (each tie's check, or no tie reaching it)."""

    at: int
    buses: tuple[int, ...]
    cause: tuple[str, ...]
    detail: str


def _bounding(feeder: Feeder, island: frozenset[int], config: Configuration) -> tuple[str, ...]:
    """The outaged branches with an end in `island`: repairing any of them re-energises (part of) it."""
    net = feeder.net
    label = dict(zip(net.bus.index, feeder.bus_labels.tolist()))
    out = []
    for kind, ends, numbers, index in (("line", ("from_bus", "to_bus"), config.lines_out, feeder.line_index),
                                       ("trafo", ("hv_bus", "lv_bus"), config.trafos_out, feeder.trafo_index)):
        for k in sorted(numbers):
            row = net[kind].loc[index(k)]
            if {label[row[e]] for e in ends} & island:
                out.append(f"{kind}.{k}")
    return tuple(out)


def _span(buses: Sequence[int]) -> str:
    """'bus 33', 'buses 24, 25', 'buses 3-18, 23-33' (runs of three or more joined)."""
    runs: list[list[int]] = []
    for b in sorted(buses):
        if runs and b == runs[-1][-1] + 1:
            runs[-1].append(b)
        else:
            runs.append([b])
    text = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)
    return ("buses " if len(buses) > 1 else "bus ") + text


def plan(feeder: Feeder, outages: Sequence[Outage], n_steps: int, step_s: float, spec: Restoration,
         operating_point: Callable[[int], pp.pandapowerNet]) -> tuple[list[Switching], list[Refusal]]:
    """The tie closings (and refused restorations) of a run with `outages`; `operating_point(k)` is step k's net."""
    delay = steps_in(spec.switching_time, step_s)
    limits = spec.limits
    closed: dict[int, dict] = {}  # tie -> {start, buses, cause}
    pending: dict[frozenset[int], int] = {}  # dead island -> step of its restoration attempt
    refused: set[frozenset[int]] = set()
    switchings: list[Switching] = []
    refusals: list[Refusal] = []
    changes = sorted({o.start for o in outages} | {o.end for o in outages if o.end < n_steps})
    k = changes[0] if changes else n_steps
    while k < n_steps:
        lines_out = frozenset(o.element for o in outages if o.kind == "line" and o.start <= k < o.end)
        trafos_out = frozenset(o.element for o in outages if o.kind == "trafo" and o.start <= k < o.end)
        config = Configuration(lines_out, trafos_out, frozenset(closed))
        for tie in sorted(closed):  # a repair that rejoins the island to its normal supply reopens its tie
            if closes_loop(feeder, config, tie):
                c = closed.pop(tie)
                switchings.append(Switching(tie, c["start"], k, c["buses"], c["cause"], c["detail"]))
                config = Configuration(lines_out, trafos_out, frozenset(closed))
        causes = {i: c for i in dead_islands(feeder, config) if (c := _bounding(feeder, i, config))}  # not dead in base
        # part of an island still dead (split by a further outage) keeps its attempt time (now, if that has
        # passed: the switching crew is out already); a newly dead island waits the switching time
        pending = {i: max(k, min([due for old, due in pending.items() if old & i], default=k + delay)) for i in causes}
        refused &= set(causes)
        for island in [i for i, due in pending.items() if due == k and i not in refused]:
            cause = causes[island]
            tie, checks = restore(feeder, operating_point(k), config, island, limits)
            tried = "; ".join(c.describe(limits) for c in checks) or "no open tie line reaches the island"
            if tie is None:
                refused.add(island)
                refusals.append(Refusal(k, tuple(sorted(island)), cause, f"{_span(island)}: {tried}"))
                continue
            chosen = next(c for c in checks if c.tie == tie)
            closed[tie] = {"start": k, "buses": tuple(sorted(island)), "cause": cause,
                           "detail": f"{_span(island)} fed over line.{tie} while {', '.join(cause)} "
                                     f"out ({chosen.describe(limits).split(': ', 1)[1]})"}
            config = config.closing(tie)
            del pending[island]
        later = [d for i, d in pending.items() if d > k and i not in refused] + [c for c in changes if c > k]
        k = min(later, default=n_steps)
    for tie, c in closed.items():  # still closed at the end of the run
        switchings.append(Switching(tie, c["start"], n_steps, c["buses"], c["cause"], c["detail"]))
    return sorted(switchings, key=lambda s: (s.start, s.tie)), refusals


def outages_of(events: Sequence["ScheduledEvent"]) -> list[Outage]:
    """The line and transformer outages among a schedule's events."""
    out = []
    for e in events:
        if e.kind == "line_outage":
            out.append(Outage("line", e.spec.line, e.start, e.end))
        elif e.kind == "trafo_outage":
            out.append(Outage("trafo", e.spec.trafo, e.start, e.end))
    return out


def record(log: "EventLog", switchings: Sequence[Switching], refusals: Sequence[Refusal], steps: int) -> None:
    """Each closing within the first `steps` steps (those recorded) as a `restoration` event on its tie for as long
    as it is closed, each refusal as a one-step `restoration_refused` event on the outages that caused it."""
    for s in switchings:
        if s.start < steps:
            log.add(s.start, "restoration", f"line.{s.tie}", min(s.end, steps) - s.start, s.detail)
    for r in refusals:
        if r.at < steps:
            log.add(r.at, "restoration_refused", "+".join(r.cause), 1, r.detail)
