"""A Modbus-TCP server that exposes the simulated grid, so an external SCADA, RTU or PLC can poll it and command it.

The register layout is `hil/maps/grid_server.yaml` (blocks of float32 per bus, line and
generator; coils for breaker states; holding registers for setpoint commands). The bridge
calls `update` once per step with the grid's signals and takes the accepted commands with
`take_commands`; every command write passes a `Guard` first (allow-list of the command
registers, capability clamps, read-only mode), and what it blocks or clamps is noted as an
event. Coil (and discrete input) i is line i in the feeder's published numbering; an address
that is no line's, like any register outside the layout, is ILLEGAL_ADDRESS (0x02). A coil write
(FC5, FC15) is a breaker command `line.<i>.closed` (1 close, 0 open) for the lines on the
scenario's `grid_server.breakers` allow-list (any other line: ILLEGAL_ADDRESS, noted as
`guard_blocked`); it acts at the next step like any SCADA command, through the recloser acting
for that line if there is one. A unit
id other than the server's gets GATEWAY_NO_RESPONSE (0x0B), as on the firmware stubs. Framing,
pipelining and the request checks are `hil.modbus_server`'s. The server runs on the
co-simulation's event loop, so it answers while the co-simulation waits (in real-time runs,
between steps).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from cosim.eventlog import Note
from hil import MAPS_DIR
from hil.codec import raw_to_registers, registers_to_raw
from hil.guard import Guard, Rule
from hil.modbus_server import ILLEGAL_ADDRESS, ILLEGAL_FUNCTION, ILLEGAL_VALUE, DataModel, Refused, Table, TcpServer

LAYOUT = MAPS_DIR / "grid_server.yaml"
LOGGER = "hil.grid_server"  # a run writes it to devices/grid_server.log


class Block(BaseModel):
    """A run of float32 values (or coils), one per element of a kind, in published order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: Literal["input", "holding", "coil"]
    start: int = Field(ge=0, le=0xFFFF)
    capacity: int = Field(ge=1)
    per: Literal["bus", "line", "generator", "scalar"]
    signal: str
    unit: str = ""
    access: Literal["r", "rw"] = "r"
    doc: str = ""


class Layout(BaseModel):
    """The grid server's register layout file."""

    model_config = ConfigDict(extra="forbid")
    device: str
    description: str = ""
    blocks: list[Block]


@dataclass(frozen=True)
class Entry:
    """One exposed value: table, protocol address (of its first register, or the coil), signal name."""

    table: str
    address: int
    name: str
    unit: str


def load_layout(path: Path = LAYOUT) -> Layout:
    """The layout file, validated."""
    return Layout.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def entries(layout: Layout, buses: Sequence[int], lines: Sequence[int], generators: Sequence[str]) -> list[Entry]:
    """Every exposed value of one grid, by the layout's rules (coil i: element number i, registers: index order)."""
    elements = {"bus": list(buses), "line": list(lines), "generator": list(generators), "scalar": [None]}
    out = []
    for b in layout.blocks:
        for i, n in enumerate(elements[b.per]):
            offset = int(n) if b.table == "coil" else 2 * i
            if offset < (b.capacity if b.table == "coil" else 2 * b.capacity):
                out.append(Entry(b.table, b.start + offset, b.signal.format(n=n), b.unit))
    return out


def scada_rules(generators: Sequence) -> dict[str, Rule]:
    """Every generator setpoint a SCADA could write (`<gen>.p_limit_mw`, `<gen>.q_set_mvar`, in scenario order)
    with its capability clamp."""
    rules = {}
    for g in generators:
        rules[f"{g.name}.p_limit_mw"] = Rule(0.0, g.p_mw)
        rules[f"{g.name}.q_set_mvar"] = Rule(-g.rating_mva, g.rating_mva)
    return rules


def scada_setpoints(generators: Sequence) -> list[str]:
    """The names of `scada_rules`: what a scenario's `grid_server.setpoints` may list."""
    return list(scada_rules(generators))


def _f32(value: float) -> list[int]:
    return raw_to_registers("float32", value)


def _registers(entries: list[Entry]) -> frozenset[int]:
    """The register addresses the float32 values of `entries` occupy."""
    return frozenset(a for e in entries for a in (e.address, e.address + 1))


class GridServer(DataModel):
    """The Modbus-TCP server of one run (and its data model); see the module docstring."""

    def __init__(self, table: list[Entry], guard: Guard, host: str = "127.0.0.1", port: int = 0, unit: int = 1,
                 commands: bool = True):
        self.table, self.guard, self.host, self.port, self.unit = table, guard, host, port, unit
        self.accepts_commands = commands  # grid_server.commands: false refuses every command write, breakers too
        self.inputs = [e for e in table if e.table == "input"]
        self.coils = [e for e in table if e.table == "coil"]
        self.commands = {e.address: e for e in table if e.table == "holding"}
        self.input_regs = [0] * 0x10000
        self.holding_regs = [0] * 0x10000
        for e in self.commands.values():
            self.holding_regs[e.address: e.address + 2] = _f32(math.nan)
        self.closed: dict[int, bool] = {e.address: True for e in self.coils}  # coil address -> breaker closed
        self.mapped = {"input": _registers(self.inputs), "holding": _registers(list(self.commands.values()))}
        self.pending: dict[str, float] = {}
        self.notes: list[Note] = []
        self._server: TcpServer | None = None

    async def start(self) -> int:
        """Start serving; returns the port."""
        self._server = TcpServer(self, {self.unit}, self.host, self.port, log=logging.getLogger(LOGGER))
        _, self.port = await self._server.start()
        return self.port

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def close(self) -> None:
        """Stop listening without awaiting (from synchronous clean-up)."""
        if self._server is not None:
            self._server.close()
        self._server = None

    def update(self, signals: Mapping[str, float], closed: Sequence[bool], step: int) -> None:
        """Publish one step's values."""
        values = dict(signals)
        values["time.step"] = float(step)
        regs = self.input_regs
        for e in self.inputs:
            regs[e.address: e.address + 2] = _f32(values.get(e.name, math.nan))
        self.closed = {e.address: bool(c) for e, c in zip(self.coils, closed)}

    def take_commands(self) -> dict[str, float]:
        """Commands accepted since the last call (name -> value), for the co-simulation."""
        out, self.pending = self.pending, {}
        return out

    def read(self, table: Table, address: int, count: int) -> list[int]:
        """Breaker states (coils and discrete inputs alike), measurements (input) or commands (holding)."""
        span = range(address, address + count)
        if table in ("coil", "discrete"):
            missing = next((a for a in span if a not in self.closed), None)
            if missing is not None:
                raise Refused(ILLEGAL_ADDRESS, f"coil {missing} is no line's (coil i is line i)")
            return [int(self.closed[a]) for a in span]
        missing = next((a for a in span if a not in self.mapped[table]), None)
        if missing is not None:
            raise Refused(ILLEGAL_ADDRESS, f"{table} register {missing} is not in the layout")
        regs = self.input_regs if table == "input" else self.holding_regs
        return regs[address: address + count]

    def write(self, table: Table, address: int, values: list[int], fc: int) -> None:
        """Commands and breaker commands through the guard; nothing at all in read-only mode."""
        if self.guard.read_only:  # no write function code gets through
            self._blocked(f"scada.fc{fc}.{address}", ILLEGAL_FUNCTION, "read-only mode")
        if not self.accepts_commands:  # breaker commands are commands too, as over IEC 104
            what = "coil" if table == "coil" else "register"
            self._blocked(f"scada.{what}.{address}", ILLEGAL_FUNCTION, "this grid server takes no commands "
                                                                       "(grid_server.commands: false)")
        if table == "coil":
            self._breakers(address, values)
        else:
            self._command(address, values)

    def _breakers(self, address: int, values: list[int]) -> None:
        """Breaker commands (coil i: line i, 1 close, 0 open), each through the guard's allow-list of breakers."""
        lines = range(address, address + len(values))
        if any(a not in self.closed for a in lines):
            self._blocked(f"scada.coil.{address}", ILLEGAL_ADDRESS, "a coil that is no line's (coil i is line i)")
        now = time.monotonic()
        decisions = [self.guard.check(f"line.{a}.closed", float(v), now) for a, v in zip(lines, values)]
        blocked = [d for d in decisions if d.blocked]
        if blocked:
            for d in blocked:
                self.notes.append(("guard_blocked", f"scada.{d.point}"))
            raise Refused(ILLEGAL_ADDRESS, f"refused by the guard: {blocked[0].reason} (breakers a SCADA may "
                                           "operate are grid_server.breakers)")
        for d in decisions:
            self.pending[d.point] = d.value
            self.notes.append(Note("scada_command", f"scada.{d.point}", f"{d.value:g} from {self.peer}"))

    def _blocked(self, target: str, code: int, reason: str) -> None:
        self.guard.blocked += 1
        self.notes.append(("guard_blocked", target))
        raise Refused(code, reason)

    def _command(self, address: int, values: list[int]) -> None:
        """A write to the command registers: whole float32 values only, each through the guard."""
        targets = [self.commands.get(address + i) for i in range(0, len(values), 2)]
        if len(values) % 2 or any(t is None for t in targets):
            self._blocked(f"scada.register.{address}", ILLEGAL_ADDRESS, "not whole float32 command values")
        now = time.monotonic()
        decisions = []
        for i, entry in enumerate(targets):
            value = float(registers_to_raw("float32", values[2 * i: 2 * i + 2]))
            decisions.append(self.guard.check(entry.name, value, now))
        blocked = [d for d in decisions if d.blocked]
        for d in decisions:
            if d.blocked:
                self.notes.append(("guard_blocked", f"scada.{d.point}"))
            elif d.clamped:
                self.notes.append(("guard_clamped", f"scada.{d.point}"))
        if blocked:
            raise Refused(ILLEGAL_VALUE, f"refused by the guard: {blocked[0].reason}")
        for i, d in enumerate(decisions):
            self.holding_regs[targets[i].address: targets[i].address + 2] = _f32(d.value)
            self.guard.settle(d.point, d.value, now)
            self.pending[d.point] = d.value
            self.notes.append(Note("scada_command", f"scada.{d.point}", f"{d.value:g} from {self.peer}"))
