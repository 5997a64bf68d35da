"""The live view's data: the latest recorded step of a run and a short history of key signals.

The run's step thread calls `LiveFeed.on_row` once per recorded step; it only keeps references
(the row dict, which the recorder builds afresh each step, the last few events, the lines open
now) and appends five numbers to a bounded history, so a run never waits for the server. The
server threads turn the latest step into a JSON snapshot when they ask for it, at most once per step.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from typing import Any

import numpy as np

from cosim import signals as sig
from cosim.assembly import Assembly
from cosim.live.layout import one_line

RECENT_EVENTS = 12
SERIES = ("vm_min_pu", "vm_max_pu", "loss_kw", "gen_p_mw", "load_p_mw")  # the history's columns after `step`


def _num(v: Any) -> float | None:
    """A JSON-safe number: NaN and infinities (a de-energised bus) become null."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class LiveFeed:
    """Latest step and history of one run; written by the run's thread, read by the server's."""

    def __init__(self, asm: Assembly, history: int = 300) -> None:
        scn = asm.loaded.scenario
        self.topology = one_line(asm.model.feeder)
        self.topology.update(name=scn.name, steps=asm.n_steps, step_s=asm.step_s,
                             voltage_limits=list(scn.grid.voltage_limits), history=history,
                             devices=[d.name for d in scn.devices])
        self._model, self._log = asm.model, asm.events
        self._start, self._step_ms = np.datetime64(asm.inputs.times[0], "ms"), int(round(asm.step_s * 1000))
        self._vm = [sig.bus(b["id"]) for b in self.topology["buses"]]
        self._loading = [sig.line(b["id"], "loading_pct") for b in self.topology["lines"]]
        self._base_open = {b["id"] for b in self.topology["lines"] if not b["base"]}
        self._history: deque[tuple[float, ...]] = deque(maxlen=history)
        self._lock = threading.Lock()  # held only to append to / copy the history
        self._latest: tuple | None = None
        self.version = 0  # number of steps seen; a reader compares it with what it has sent
        self.status = "running"  # the run's outcome once it has ended
        self._cache: tuple[int, str] = (-1, "")

    def on_row(self, step: int, row: dict[str, float]) -> None:
        """Called by the run's thread with each recorded step and its row: keep it, append the key signals."""
        vms = [v for v in (row.get(k, math.nan) for k in self._vm) if v == v]
        point = (float(step), min(vms, default=math.nan), max(vms, default=math.nan),
                 row.get("grid.loss_kw", math.nan), row.get("grid.gen_p_mw", math.nan),
                 row.get("grid.load_p_mw", math.nan))
        with self._lock:
            self._history.append(point)
        m = self._model
        self._latest = (step, row, self._log.events[-RECENT_EVENTS:], m.disruptions.lines_out, m.lines_opened)
        self.version += 1

    def finish(self, status: str) -> None:
        """The run has ended with `status` (ok, failed, interrupted, ...): readers send it and stop."""
        self.status = status
        self.version += 1

    def snapshot(self) -> tuple[int, str]:
        """(version, JSON text) of the latest step, built once per version."""
        version = self.version
        if self._cache[0] == version:
            return self._cache
        text = json.dumps(self._build(), allow_nan=False, separators=(",", ":"))
        self._cache = (version, text)
        return self._cache

    def _build(self) -> dict:
        """The latest step as the page draws it: voltages and loadings in topology order, devices, guard, events."""
        with self._lock:
            history = list(self._history)
        snap: dict[str, Any] = {"status": self.status, "steps": self.topology["steps"]}
        if self._latest is None:
            return snap
        step, row, events, lines_out, opened = self._latest
        devices = {name: {} for name in self.topology["devices"]}
        for key, value in row.items():
            device, dot, quantity = key.partition(".")
            if dot and device in devices:
                devices[device][quantity] = _num(value)
        columns = list(zip(*history)) if history else [()] * (len(SERIES) + 1)
        snap.update(
            step=step, done=step + 1,
            time=str(self._start + step * np.timedelta64(self._step_ms, "ms")),
            vm=[_num(row.get(k)) for k in self._vm],
            loading=[_num(row.get(k)) for k in self._loading],
            open=sorted(self._base_open | set(lines_out) | set(opened)),
            grid={q: _num(row.get(sig.grid(q))) for q in ("loss_kw", "gen_p_mw", "load_p_mw", "ext_p_mw",
                                                          "converged")},
            guard={"blocked": _num(row.get("guard.blocked")), "clamped": _num(row.get("guard.clamped"))},
            devices=devices,
            events=[{"start": e.start, "end": e.end, "kind": e.kind, "target": e.target} for e in events],
            series={"step": [int(s) for s in columns[0]],
                    **{name: [_num(v) for v in col] for name, col in zip(SERIES, columns[1:])}})
        return snap
