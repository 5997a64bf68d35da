"""A Modbus-TCP server that exposes the simulated grid, so an external SCADA, RTU or PLC can poll it and command it.

The register layout is `hil/maps/grid_server.yaml` (blocks of float32 per bus, line and
generator; coils for breaker states; holding registers for setpoint commands). The bridge
calls `update` once per step with the grid's signals and takes the accepted commands with
`take_commands`; every command write passes a `Guard` first (allow-list of the command
registers, capability clamps, read-only mode), and what it blocks or clamps is noted as an
event. The server runs on the co-simulation's event loop, so it answers while the
co-simulation waits (in real-time runs, between steps).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from hil import MAPS_DIR
from hil.codec import raw_to_registers, registers_to_raw
from hil.guard import Guard

LAYOUT = MAPS_DIR / "grid_server.yaml"


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
    """Every exposed value of one grid, by the layout's rules."""
    elements = {"bus": list(buses), "line": list(lines), "generator": list(generators), "scalar": [None]}
    out = []
    for b in layout.blocks:
        stride = 1 if b.table == "coil" else 2
        for i, n in enumerate(elements[b.per][: b.capacity]):
            out.append(Entry(b.table, b.start + stride * i, b.signal.format(n=n), b.unit))
    return out


def _f32(value: float) -> list[int]:
    return raw_to_registers("float32", value)


def _runs(addresses: list[int], size: int) -> list[tuple[int, int]]:
    """Contiguous (start, count) register runs covering values of `size` registers at `addresses`."""
    runs: list[tuple[int, int]] = []
    for a in sorted(addresses):
        if runs and runs[-1][0] + runs[-1][1] == a:
            runs[-1] = (runs[-1][0], runs[-1][1] + size)
        else:
            runs.append((a, size))
    return runs


class GridServer:
    """The pymodbus server of one run; see the module docstring."""

    def __init__(self, table: list[Entry], guard: Guard, host: str = "127.0.0.1", port: int = 0, unit: int = 1):
        self.table, self.guard, self.host, self.port, self.unit = table, guard, host, port, unit
        self.inputs = [e for e in table if e.table == "input"]
        self.coils = [e for e in table if e.table == "coil"]
        self.commands = {e.address: e for e in table if e.table == "holding"}
        self.input_regs = [0] * 0x10000
        self.holding_regs = [0] * 0x10000
        for e in self.commands.values():
            self.holding_regs[e.address: e.address + 2] = _f32(math.nan)
        self.closed: list[bool] = [True] * len(self.coils)
        self.pending: dict[str, float] = {}
        self.notes: list[tuple[str, str]] = []
        self._server: ModbusTcpServer | None = None

    def _device(self) -> SimDevice:
        def regs(entries: list[Entry]) -> list[SimData]:
            return [SimData(a, count=n, datatype=DataType.REGISTERS) for a, n in _runs([e.address for e in entries], 2)]

        bits = [SimData(0, count=max(1, len(self.coils)), values=False, datatype=DataType.BITS)]
        holding = regs(list(self.commands.values())) or [SimData(0, count=1, datatype=DataType.INVALID)]
        return SimDevice(id=self.unit, simdata=(bits, list(bits), holding, regs(self.inputs)), action=self._action)

    async def start(self) -> int:
        """Start serving; returns the port."""
        self._server = ModbusTcpServer([self._device()], address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    def close(self) -> None:
        """Stop listening without awaiting (from synchronous clean-up)."""
        if self._server is not None and self._server.transport is not None:
            self._server.transport.close()
        self._server = None

    def update(self, signals: Mapping[str, float], closed: Sequence[bool], step: int) -> None:
        """Publish one step's values."""
        values = dict(signals)
        values["time.step"] = float(step)
        regs = self.input_regs
        for e in self.inputs:
            regs[e.address: e.address + 2] = _f32(values.get(e.name, math.nan))
        self.closed = list(closed)[: len(self.coils)]

    def take_commands(self) -> dict[str, float]:
        """Commands accepted since the last call (name -> value), for the co-simulation."""
        out, self.pending = self.pending, {}
        return out

    async def _action(self, fc: int, start: int, address: int, count: int, registers: list[int],
                      values: list[int] | list[bool] | None) -> ExcCodes | None:
        if values is not None and self.guard.read_only:  # no write function code gets through
            self.guard.blocked += 1
            self.notes.append(("guard_blocked", f"scada.fc{fc}.{address}"))
            return ExcCodes.ILLEGAL_FUNCTION
        if fc in (1, 2, 5, 15):
            if values is not None:
                self.guard.blocked += 1
                self.notes.append(("guard_blocked", f"scada.coil.{address}"))
                return ExcCodes.ILLEGAL_ADDRESS
            bits = self.closed + [False] * (16 * len(registers) - len(self.closed))
            registers[:] = SimUtils.bitsToRegisters(bits)
            return None
        offset = address - start
        if fc == 4:
            registers[offset: offset + count] = self.input_regs[address: address + count]
            return None
        if values is None:
            registers[offset: offset + count] = self.holding_regs[address: address + count]
            return None
        return self._command(address, values)

    def _command(self, address: int, values: list) -> ExcCodes | None:
        """A write to the command registers: whole float32 values only, each through the guard."""
        targets = [self.commands.get(address + i) for i in range(0, len(values), 2)]
        if len(values) % 2 or any(t is None for t in targets):
            self.guard.blocked += 1
            self.notes.append(("guard_blocked", f"scada.register.{address}"))
            return ExcCodes.ILLEGAL_ADDRESS
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
            return ExcCodes.ILLEGAL_VALUE
        for i, d in enumerate(decisions):
            values[2 * i: 2 * i + 2] = _f32(d.value)
            self.holding_regs[targets[i].address: targets[i].address + 2] = _f32(d.value)
            self.guard.settle(d.point, d.value, now)
            self.pending[d.point] = d.value
        return None
