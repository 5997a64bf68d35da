"""mosaik simulator around `hil.bridge.Bridge`: one entity `bridge` between the controller and the grid.

In-process, and its `init` and `step` are generators that yield awaitables: mosaik awaits
them on its own event loop, so the Modbus I/O of all devices runs there concurrently and
never blocks it (in a real-time run the grid server answers while the pacer waits).
Inputs: `commands` (setpoints from the controller or command channel), `grid` (the grid's
signals: the physics of emulated devices). Outputs: `delivered` (setpoints for the grid, over
a time-shifted edge) and `signals` (device readings and flags).
"""

from __future__ import annotations

import logging

import mosaik_api_v3

from cosim.eventlog import EventLog
from hil.bridge import Bridge

log = logging.getLogger(__name__)
ALARMS = frozenset({"device_write_unexpected"})  # events printed as they happen (once per target)

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Bridge": {"public": True, "params": [], "attrs": ["commands", "grid", "delivered", "signals"]}},
}


class BridgeSim(mosaik_api_v3.Simulator):
    """Drives the bridge once per step; run metrics land in `metrics` when the simulator finishes."""

    def __init__(self) -> None:
        super().__init__(META)
        self.delivered: dict[str, float] = {}
        self.signals: dict[str, float] = {}
        self._alarmed: set[tuple[str, str]] = set()

    def init(self, sid, time_resolution=1.0, bridge: Bridge | None = None, n_steps: int = 0,
             events: EventLog | None = None, metrics: dict | None = None):
        self.bridge, self.n_steps, self.events = bridge, n_steps, events
        self.metrics = metrics if metrics is not None else {}
        yield self.bridge.start()
        self.k = 0
        for guard in [link.guard for link in self.bridge.links] + [self.bridge.server_guard]:
            if guard is not None:  # every decision on a Modbus write goes into the run's audit chain
                guard.on_decision = self._note_decision
        self.signals = self.bridge.signals()
        return self.meta

    def _note_decision(self, d) -> None:
        self.events.note("modbus_write", self.k, device=d.device, point=d.point, asked=d.asked, value=d.value,
                         decision="blocked" if d.blocked else "clamped" if d.clamped else "allowed", reason=d.reason)

    def create(self, num, model, **params):
        if num != 1:
            raise ValueError("one Bridge entity per simulator")
        return [{"eid": "bridge", "type": model}]

    def step(self, time_, inputs, max_advance):
        self.k = k = time_
        inp = inputs.get("bridge", {})
        commands: dict[str, float] = {}
        for sent in inp.get("commands", {}).values():
            commands.update(sent)
        grid = next(iter(inp.get("grid", {}).values()), {})
        self.delivered = yield self.bridge.step(k, commands, grid)
        for note in self.bridge.notes:
            self.events.add_note(k, note)
            if note[0] in ALARMS and tuple(note) not in self._alarmed:
                self._alarmed.add(tuple(note))
                log.warning("alarm at step %d: %s on %s (%s)", k, note[0], note[1], getattr(note, "detail", ""))
        self.signals = self.bridge.signals()
        if k == self.n_steps - 1:
            yield self.bridge.stop()
        return time_ + 1

    def get_data(self, outputs):
        return {"bridge": {"delivered": self.delivered, "signals": self.signals}}

    def finalize(self):
        self.bridge.close()
        self.metrics.update(self.bridge.metrics())
