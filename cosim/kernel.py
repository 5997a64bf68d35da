"""The step kernel: setpoint state, action validation, hold and the one-step delay, over a `GridModel`.

Every control loop runs on it: the mosaik grid and controller simulators, the gymnasium
environment and the evaluation rollout. A step solves the grid with the inputs of step k, the
disruptions in force and the setpoints delivered for k; setpoints chosen at step k are
delivered at k+1. Setpoints hold until replaced. An action name the grid does not have is an
error (`UnknownSetpoint`), never silently dropped; a controller's actions are checked first
(`check_actions`), so a bad action becomes an event and the last valid setpoint holds.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from cosim import signals as sig

if TYPE_CHECKING:
    from cosim.events.restoration import Switching
    from cosim.events.schedule import Schedule
    from cosim.grid.model import Disruptions, GridModel, StepResult
    from cosim.inputs import Inputs


def check_actions(actions: object, allowed: set[str] | frozenset[str]) -> tuple[dict[str, float], dict[str, str]]:
    """Split what a controller returned into valid setpoints and rejected names with the reason."""
    if not isinstance(actions, Mapping):
        return {}, {"act": f"returned {type(actions).__name__}, expected a dict of setpoints"}
    valid, rejected = {}, {}
    for name, value in actions.items():
        if name not in allowed:
            rejected[str(name)] = "is not an action of this scenario"
        elif isinstance(value, bool) or not isinstance(value, Real):
            rejected[name] = f"is {type(value).__name__}, expected a number"
        elif not math.isfinite(value):
            rejected[name] = f"is {value}"
        else:
            valid[name] = float(value)
    return valid, rejected


class UnknownSetpoint(KeyError):
    """A setpoint name that names nothing on this grid."""

    def __str__(self) -> str:
        return str(self.args[0])


class Setpoints:
    """The setpoints in force on one grid model: P limit and Q setpoint per DER, tap and capacitor positions,
    and what field devices deliver: line breakers (`line.<k>.closed`) and the source regulator's ratio."""

    def __init__(self, model: GridModel):
        self.model = model
        n = len(model.ders)
        self.p_limit = np.full(n, np.inf)
        self.q_set = np.zeros(n)
        self._slot: dict[str, tuple[np.ndarray, int]] = {}
        for i, d in enumerate(model.ders):
            self._slot[sig.der(d.name, "p_limit_mw")] = (self.p_limit, i)
            self._slot[sig.der(d.name, "q_set_mvar")] = (self.q_set, i)
        m = len(model.storage)
        self.storage_p, self.storage_q = np.zeros(m), np.zeros(m)  # batteries idle until told
        for i, unit in enumerate(model.storage.units):
            self._slot[sig.der(unit.name, "p_set_mw")] = (self.storage_p, i)
            self._slot[sig.der(unit.name, "q_set_mvar")] = (self.storage_q, i)
        self.names: tuple[str, ...] = tuple(self._slot) + tuple(model.discrete)
        self.allowed = frozenset(self.names)

    def check(self, actions: object) -> tuple[dict[str, float], dict[str, str]]:
        """`check_actions` against this grid's setpoints."""
        return check_actions(actions, self.allowed)

    def apply(self, setpoints: Mapping[str, float]) -> None:
        """Put setpoints in force (discrete ones move the tap or shunt now); an unknown name raises."""
        for name, value in setpoints.items():
            slot = self._slot.get(name)
            if slot is not None:
                slot[0][slot[1]] = value
            elif name in self.model.discrete:
                self.model.set_discrete(name, value)
            elif not self._switch(name, value):
                raise UnknownSetpoint(f"setpoint {name!r} names nothing on this grid "
                                      f"(setpoints: {', '.join(self.names) or 'none'}; from devices also "
                                      f"line.<k>.closed and {sig.SOURCE_RATIO})")

    def _switch(self, name: str, value: float) -> bool:
        """A breaker or feeder-head regulator setpoint (`line.<k>.closed`, `grid.source_ratio`); False if not one."""
        if name == sig.SOURCE_RATIO:
            self.model.set_source_ratio(value)
            return True
        try:
            n = sig.parse(name)
        except ValueError:
            return False
        if n.kind != "line" or n.quantity != "closed" or n.number not in self.model.feeder.line_labels:
            return False
        self.model.set_line_closed(n.number, value >= 0.5)
        return True

    def binder(self, names: Sequence[str]) -> Callable[[np.ndarray], None]:
        """A fast writer of a fixed list of continuous setpoints from a vector (for the RL environment)."""
        unknown = [n for n in names if n not in self._slot]
        if unknown:
            raise UnknownSetpoint(f"setpoints {', '.join(unknown)} are not continuous DER or battery setpoints "
                                  "of this grid")
        groups = []  # (target array, its positions, positions in the vector)
        for target in (self.p_limit, self.q_set, self.storage_p, self.storage_q):
            mine = [j for j, n in enumerate(names) if self._slot[n][0] is target]
            if mine:
                groups.append((target, np.array([self._slot[names[j]][1] for j in mine], np.int64),
                               np.array(mine, np.int64)))

        def write(values: np.ndarray) -> None:
            for target, at, frm in groups:
                target[at] = values[frm]
        return write


class StepKernel:
    """One grid step: inputs + disruptions + delivered setpoints -> power flow (see the module docstring)."""

    def __init__(self, model: GridModel):
        self.model = model
        self.setpoints = Setpoints(model)

    def step(self, load_scale: np.ndarray, p_avail: np.ndarray, native_pv_pu: float, native_wind_pu: float,
             delivered: Mapping[str, float] | None = None, disruptions: Disruptions | None = None) -> StepResult:
        """Apply what was delivered for this step and the disruptions in force, then solve."""
        if delivered:
            self.setpoints.apply(delivered)
        if disruptions is not None:
            self.model.apply_disruptions(disruptions)
        sp = self.setpoints
        r = self.model.step(load_scale, p_avail, sp.p_limit, sp.q_set, native_pv_pu, native_wind_pu,
                            sp.storage_p, sp.storage_q)
        self.model.commit_storage(r)
        return r

    def clipped(self, r: StepResult) -> list[str]:
        """The setpoints in force that DER capability cut in step `r`: a Q beyond what the rating leaves beside
        the delivered P, a P limit below 0 (tripped DERs deliver nothing and are not counted)."""
        sp, on = self.setpoints, self.model.der_online > 0
        q_cut = on & (np.abs(sp.q_set - r.der_q_mvar) > 1e-9)
        p_cut = on & (sp.p_limit < 0.0)
        ders, units = self.model.ders, self.model.storage.units
        out = ([sig.der(ders[i].name, "p_limit_mw") for i in np.flatnonzero(p_cut)]
               + [sig.der(ders[i].name, "q_set_mvar") for i in np.flatnonzero(q_cut)])
        if units:  # a battery's P beyond its rating or SoC room, its Q beyond what the rating leaves
            live = self.model.storage_online
            sp_cut = live & (np.abs(sp.storage_p - r.storage_p_mw) > 1e-9)
            sq_cut = live & (np.abs(sp.storage_q - r.storage_q_mvar) > 1e-9)
            out += ([sig.der(units[i].name, "p_set_mw") for i in np.flatnonzero(sp_cut)]
                    + [sig.der(units[i].name, "q_set_mvar") for i in np.flatnonzero(sq_cut)])
        return out


class ControlLoop:
    """The co-simulation's loop without mosaik: step k from the input series and the schedule's
    physical events, the measurement channel on what the controller sees, the command channel on
    what it sends, and the one-step delay between choosing and delivering setpoints."""

    def __init__(self, model: GridModel, inputs: Inputs, schedule: Schedule | None = None,
                 measurement=None, command=None, switchings: Sequence[Switching] = ()):
        from cosim.events.physical import DisruptionTimeline

        self.kernel, self.inputs = StepKernel(model), inputs
        self.measurement, self.command = measurement, command
        self.schedule = schedule
        timeline = DisruptionTimeline(schedule.events if schedule is not None else (), switchings)
        # every step's disruptions, looked up once per day: the loop runs at tens of thousands of steps/s
        self._disruptions = [timeline.at(k) for k in range(len(inputs.times))] if timeline else None
        self.pending: dict[str, float] = {}

    @property
    def setpoints(self) -> Setpoints:
        return self.kernel.setpoints

    def disruptions(self, k: int) -> Disruptions | None:
        """The physical disruptions in force at step k (None: the schedule has no physical events)."""
        return self._disruptions[k] if self._disruptions is not None else None

    def solve(self, k: int) -> StepResult:
        """Step k with the setpoints delivered for it (those submitted at k-1)."""
        inp = self.inputs
        delivered, self.pending = self.pending, {}
        return self.kernel.step(inp.load_scale[k], inp.der_p_avail_mw[k], inp.native_pv_pu[k], inp.native_wind_pu[k],
                                delivered, self.disruptions(k))

    def observe(self, k: int, signals: dict[str, float]) -> dict[str, float]:
        """What the controller sees of step k's signals (through the measurement channel, if any)."""
        if self.measurement is None:
            return signals
        seen, _ = self.measurement.step(k, signals)
        return seen

    def submit(self, k: int, valid: Mapping[str, float]) -> None:
        """Setpoints chosen at step k (already checked); through the command channel, delivered at k+1."""
        sent = dict(valid)
        self.pending = self.command.step(k, sent) if self.command is not None else sent
