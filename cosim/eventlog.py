"""Events raised by simulators during a run (a controller error, a disruption, an alarm).

One `EventLog` per run lives on the `Assembly`; in-process simulators get it as an init
parameter and add to it, and the runner writes it to events.csv next to the events it
derives from the time series. Times are step numbers until the log is turned into a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from cosim.results import EVENT_COLUMNS


@dataclass
class Event:
    """Something that happened over steps [start, end) to a target, e.g. a rejected setpoint."""

    start: int
    end: int
    kind: str
    target: str
    detail: str = ""  # e.g. the register and its old and new value of an unexpected write


class Note(tuple):
    """An event raised outside the log (a device link, the grid server): a `(kind, target)` pair like any other,
    with an optional `detail` for events.csv and the audit chain."""

    detail: str

    def __new__(cls, kind: str, target: str, detail: str = "") -> "Note":
        note = super().__new__(cls, (kind, target))
        note.detail = detail
        return note


MAX_TARGETS = 100  # targets of one kind with rows of their own; further targets share one summary row
OTHERS = "(other targets)"  # the summary row's target until the table is written


class EventLog:
    """Events in step numbers; a repeat of the same kind and target in the next step extends the last one.

    With `audit` set (the run's `cosim.audit.AuditChain.append`), every event and every `note`
    (a controller's commands, a guard's decision on a Modbus write) also goes into the run's hash chain.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._open: dict[tuple[str, str], Event] = {}
        self.audit: Callable[..., Any] | None = None
        self._targets: dict[str, set[str]] = {}  # kind -> targets with rows of their own
        self._folded: dict[str, set[str]] = {}  # kind -> targets summarised in the kind's OTHERS row

    def note(self, kind: str, step: int, **data: Any) -> None:
        """A fact for the audit chain only (not an events.csv row), e.g. the setpoints a controller issued."""
        if self.audit is not None:
            self.audit(kind, step=step, **data)

    def add(self, step: int, kind: str, target: str, steps: int = 1, detail: str = "") -> None:
        """Record `kind` on `target` from `step` for `steps` steps (merged with an adjoining same event of the
        same `detail`).

        A flood (more than MAX_TARGETS targets of one kind, e.g. 10,000 junk setpoint names) is capped:
        the further targets are counted in one summary row per kind, and noted once per step in the audit.
        """
        own = self._targets.setdefault(kind, set())
        if target not in own and len(own) >= MAX_TARGETS:
            folded = self._folded.setdefault(kind, set())
            summary = self._open.get((kind, OTHERS))
            if summary is None or summary.end <= step:
                self.note("event", step, event=kind, target=OTHERS, steps=steps, first=target)
            folded.add(target)
            target = OTHERS
        else:
            own.add(target)
            self.note("event", step, event=kind, target=target, steps=steps, **({"detail": detail} if detail else {}))
        last = self._open.get((kind, target))
        if last is not None and last.start <= step <= last.end and last.detail == detail:
            last.end = max(last.end, step + steps)
            return
        event = Event(step, step + steps, kind, target, detail)
        self.events.append(event)
        self._open[(kind, target)] = event

    def add_note(self, step: int, note: tuple[str, str]) -> None:
        """Record a `Note` (or a plain `(kind, target)` pair) at `step`."""
        self.add(step, note[0], note[1], detail=getattr(note, "detail", ""))

    def frame(self, start: np.datetime64, step_s: float) -> pd.DataFrame:
        """The events as an events.csv table (start, end, kind, target, detail) in wall-clock time."""
        step = pd.Timedelta(seconds=step_s)
        t0 = pd.Timestamp(start)
        rows = [(t0 + e.start * step, t0 + e.end * step, e.kind, self._label(e), e.detail) for e in self.events]
        return pd.DataFrame(rows, columns=EVENT_COLUMNS)

    def _label(self, event: Event) -> str:
        """The target as events.csv shows it: a summary row says how many targets it stands for."""
        if event.target != OTHERS:
            return event.target
        return f"({len(self._folded[event.kind]):,} other targets, first {min(self._folded[event.kind])})"

    def summary(self) -> dict[str, int]:
        """Per kind, how many targets were summarised instead of getting rows (empty without a flood)."""
        return {kind: len(targets) for kind, targets in self._folded.items()}
