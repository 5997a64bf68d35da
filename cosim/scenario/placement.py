"""The scenario's `placement` block: where each mosaik simulator runs (in-process, its own process, another host).

    placement: {grid: process, controller: "connect 10.0.0.5:5678"}

`in-process` (the default) starts the simulator inside the run; `process` spawns it as
`python -m cosim.sims.<name>` (mosaik `cmd`); `connect HOST:PORT` attaches to one already
served there (`python -m cosim.sims.<name> --remote HOST:PORT`). The grid, the inputs, the
controller, the detector and the devices' bridge can leave the run's process; the events,
channels and recorder hand live objects (the event schedule, the attack paths, the recording)
to their simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, ValidationInfo, field_validator

from cosim.scenario.base import Strict

IN_PROCESS, PROCESS, CONNECT = "in-process", "process", "connect"
# simulators with a `python -m cosim.sims.<name>` entry point
REMOTABLE = ("grid", "inputs", "controller", "detector", "bridge")
DEFAULT_PORT = 5678


@dataclass(frozen=True)
class Where:
    """One simulator's place: how mosaik starts it and, for `connect`, the address."""

    how: Literal["in-process", "process", "connect"]
    host: str = ""
    port: int = 0

    @property
    def remote(self) -> bool:
        return self.how != IN_PROCESS


def parse_where(text: str) -> Where:
    """`in-process`, `process` or `connect HOST:PORT` -> Where; ValueError saying what is expected."""
    words = text.split()
    if words in ([IN_PROCESS], [PROCESS]):
        return Where(words[0])
    if len(words) == 2 and words[0] == CONNECT:
        host, _, port = words[1].rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return Where(CONNECT, host.strip("[]"), int(port))
    raise ValueError(f"expected in-process, process or \"connect HOST:PORT\" (e.g. \"connect 127.0.0.1:{DEFAULT_PORT}\"), "
                     f"got {text!r}")


class Placement(Strict):
    """Where each simulator runs; see the module docstring."""

    grid: str = IN_PROCESS
    controller: str = IN_PROCESS
    inputs: str = IN_PROCESS
    events: str = IN_PROCESS
    channels: str = IN_PROCESS
    detector: str = IN_PROCESS
    bridge: str = IN_PROCESS
    recorder: str = IN_PROCESS

    @field_validator("*")
    @classmethod
    def _where(cls, v: str, info: ValidationInfo) -> str:
        where = parse_where(v)
        if where.remote and info.field_name not in REMOTABLE:
            raise ValueError(f"the {info.field_name} simulator runs in-process only (it is handed live objects of the "
                             f"run); only {', '.join(REMOTABLE[:-1])} and {REMOTABLE[-1]} can run in a process or on another "
                             f"host, got {v!r}")
        return v

    def of(self, name: str) -> Where:
        """The place of simulator `name`."""
        return parse_where(getattr(self, name))

    @property
    def remote(self) -> bool:
        """Whether any simulator leaves the run's process."""
        return any(self.of(name).remote for name in REMOTABLE)


def _fits_scenario(placement: Placement, info: ValidationInfo) -> Placement:
    """What cannot work with a simulator outside the run's process, given the rest of the scenario."""
    grid, ctrl = placement.of("grid"), placement.of("controller")
    data = info.data
    if grid.remote and (data.get("devices") or data.get("grid_server") is not None):
        raise ValueError(f"grid: {placement.grid} cannot run with devices or a grid_server: the devices' bridge couples "
                         "emulated devices to the grid model and reads its line states in-process; keep grid in-process")
    if placement.of("bridge").remote and data.get("grid_server") is not None:
        raise ValueError(f"bridge: {placement.bridge} cannot run with a grid_server: the SCADA stage takes the "
                         "server's commands from the bridge and the server publishes the grid model's line states, "
                         "both in-process; keep bridge in-process")
    kind = getattr(data.get("controller"), "kind", "none")
    if (grid.remote or ctrl.remote) and _is_oracle(kind):
        raise ValueError(f"controller kind {kind} is an oracle: it solves power flows on the run's own grid model, so "
                         "grid and controller must both stay in-process")
    return placement


def _is_oracle(kind: str) -> bool:
    """Whether a shipped baseline kind reads the true grid model (`Controller.oracle`)."""
    from controllers.baselines import KINDS, baseline_class

    return kind in KINDS and bool(getattr(baseline_class(kind), "oracle", False))


PlacementBlock = Annotated[Placement, AfterValidator(_fits_scenario)]

