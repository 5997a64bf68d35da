"""mosaik simulator around `hil.bridge.Bridge`: one entity `bridge` between the controller and the grid.

In-process, and its `init` and `step` are generators that yield awaitables: mosaik awaits
them on its own event loop, so the Modbus I/O of all devices runs there concurrently and
never blocks it (in a real-time run the grid server answers while the pacer waits).
Inputs: `commands` (setpoints from the controller or command channel), `grid` (the grid's
signals: the physics of emulated devices). Outputs: `delivered` (setpoints for the grid, over
a time-shifted edge) and `signals` (device readings and flags).

In its own process or on another host (`python -m cosim.sims.bridge`, docs/placement.md) it
builds the bridge from the scenario and opens the devices' connections from there (the same
addresses); mosaik's remote API awaits the same generators on that process's event loop. Device
events and guard decisions leave as the output `log`, the run metrics as `metrics` at the last
step. In a paced run it cannot share the run's wall clock: its firmware-tick budget is reckoned
from the earliest arrival of a step (`ArrivalClock`), a few ms after the run's release time.
"""

from __future__ import annotations

import logging
import math
import time

import mosaik_api_v3

from cosim.assembly import RunOptions
from cosim.eventlog import EventLog
from cosim.sims.remote import Outbox, plain, rebuild
from hil.bridge import Bridge

log = logging.getLogger(__name__)
ALARMS = frozenset({"device_write_unexpected"})  # events printed as they happen (once per target)

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Bridge": {"public": True, "params": [],
                          "attrs": ["commands", "grid", "delivered", "signals", "log", "metrics"]}},
}


class ArrivalClock:
    """A paced run's step schedule seen from another process: the run's period, anchored at the earliest arrival
    of a step (min over steps of arrival - k x period), which only moves earlier as steps arrive."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.t0 = math.inf

    def arrived(self, k: int) -> None:
        """Step k arrived now."""
        self.t0 = min(self.t0, time.perf_counter() - k * self.period)

    def release(self, k: int) -> float:
        """When step k was released, as far as the arrivals tell (perf_counter seconds)."""
        return self.t0 + k * self.period


class BridgeSim(mosaik_api_v3.Simulator):
    """Drives the bridge once per step; run metrics land in `metrics` when the simulator finishes."""

    def __init__(self) -> None:
        super().__init__(META)
        self.delivered: dict[str, float] = {}
        self.signals: dict[str, float] = {}
        self._alarmed: set[tuple[str, str]] = set()

    def init(self, sid, time_resolution=1.0, bridge: Bridge | None = None, n_steps: int = 0,
             events: EventLog | None = None, metrics: dict | None = None, scenario: dict | None = None,
             read_only: bool = False, realtime: float | None = None):
        """In-process: the run's live `bridge`, `events` and `metrics`. Elsewhere: `scenario` (plain data,
        `cosim.sims.remote.scenario_spec`) and the run's options `read_only` and `realtime`."""
        self.remote, self.arrivals = scenario is not None, None
        if self.remote:
            bridge, n_steps, events, self.arrivals = _build(scenario, read_only, realtime)
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
        if self.arrivals is not None:
            self.arrivals.arrived(k)
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
        if not self.remote:
            return {"bridge": {"delivered": self.delivered, "signals": self.signals}}
        wanted = outputs.get("bridge", [])
        done = self.k == self.n_steps - 1  # the bridge has stopped: its run metrics are final
        return {"bridge": {"delivered": plain(self.delivered), "signals": plain(self.signals),
                           "metrics": plain(self.bridge.metrics()) if done else {},
                           **({"log": self.events.drain()} if "log" in wanted else {})}}

    def finalize(self):
        self.bridge.close()
        self.metrics.update(self.bridge.metrics())


def _build(spec: dict, read_only: bool, realtime: float | None) -> tuple[Bridge, int, Outbox, ArrivalClock | None]:
    """Bridge, steps, event outbox and (paced) arrival clock of the run `spec` describes, built as in-process."""
    from cosim.bridge_stage import build_bridge

    events = Outbox()
    asm = rebuild(spec, events)
    asm.options = RunOptions(realtime=realtime, read_only=read_only)
    arrivals = ArrivalClock(asm.step_s * realtime) if realtime else None
    asm.clock = arrivals
    return build_bridge(asm), asm.n_steps, events, arrivals


if __name__ == "__main__":
    from cosim.sims.remote import serve

    serve(BridgeSim(), "The cosim bridge simulator (mosaik remote API).")
