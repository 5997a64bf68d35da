"""The one way devices are read: plan the requests for some points of a map, read them, decode them.

Every reader of a device goes through here — the bridge (`hil.link`), `cosim probe`, the
SunSpec scanner and the helpers below: a `ReadPlan` says which (start, count) requests cover
the points (and their scale factors) in as few requests as the map allows, and decodes the
answers with `hil.codec`. The requests go to a *reader*: an object with coroutines
`read(address, count, write=None)` and `write(address, registers)` that raise
`hil.client.DeviceError` — `hil.client.DeviceClient`, or any pymodbus-style async client
wrapped by `hil.client.as_reader`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from hil.client import DeviceError, as_reader
from hil.codec import decode, encode
from hil.registers import MAX_READ, Point, RegisterMap

__all__ = ["Decoded", "ModbusReadError", "ModbusWriteError", "ReadPlan", "decode_registers", "read_points",
           "read_spans", "write_point", "write_points"]


class ModbusReadError(RuntimeError):
    """A read that failed; `exception_code` is the Modbus exception code when the device answered one."""

    def __init__(self, message: str, exception_code: int | None = None):
        super().__init__(message)
        self.exception_code = exception_code


class ModbusWriteError(RuntimeError):
    """A write that failed; `exception_code` is the Modbus exception code when the device answered one."""

    def __init__(self, message: str, exception_code: int | None = None):
        super().__init__(message)
        self.exception_code = exception_code


class Decoded(NamedTuple):
    """What a read gave: values (engineering units, SunSpec 'not implemented' as None), raw registers, scale factors."""

    values: dict[str, Any]
    raw: dict[str, list[int]]
    sfs: dict[str, int | None]


def read_spans(regmap: RegisterMap, names: Iterable[str]) -> list[tuple[int, int]]:
    """(start, count) requests covering the points `names` and their scale factors, each inside one mapped run."""
    names = set(names)
    wanted = names | {regmap[n].sf for n in names if regmap[n].sf}
    spans = []
    for start, count in regmap.blocks(max_count=0x10000):
        run = sorted((p for p in regmap.points if start <= p.address < start + count), key=lambda p: p.address)
        chosen = [p for p in run if p.name in wanted]
        if not chosen:
            continue
        lo, hi = chosen[0].address, max(p.end for p in chosen)
        span_start = lo
        for p in run:
            if p.address < lo or p.end > hi:
                continue
            if p.end - span_start > MAX_READ:
                spans.append((span_start, p.address - span_start))
                span_start = p.address
        spans.append((span_start, hi - span_start))
    return spans


class ReadPlan:
    """How to read points of a map: the requests (`spans`), and where each point (scale factors first) sits in them.

    By default the spans are planned for `names` (default: every point); with explicit `spans`
    the plan decodes the points of `names` that lie entirely inside them.
    """

    def __init__(self, regmap: RegisterMap, names: Iterable[str] | None = None,
                 spans: Sequence[tuple[int, int]] | None = None):
        self.regmap = regmap
        names = set(regmap.names if names is None else names)
        self.spans = list(read_spans(regmap, names) if spans is None else spans)
        wanted = names | {regmap[n].sf for n in names if regmap[n].sf}
        self.places: list[tuple[Point, int, int]] = []  # (point, span index, offset in the span)
        for p in sorted((regmap[n] for n in wanted), key=lambda p: (p.type != "sunssf", p.address)):
            i = next((i for i, (a, n) in enumerate(self.spans) if a <= p.address and p.end <= a + n), None)
            if i is not None:
                self.places.append((p, i, p.address - self.spans[i][0]))

    def decode(self, blocks: Sequence[Sequence[int]], sf_values: Mapping[str, int | None] | None = None) -> Decoded:
        """Decode the answers to `spans` (scale factors missing from them are taken from `sf_values`)."""
        values: dict[str, Any] = {}
        raw: dict[str, list[int]] = {}
        sfs: dict[str, int | None] = dict(sf_values or {})
        na = self.regmap.sunspec_na
        for p, i, o in self.places:
            regs = list(blocks[i][o: o + p.size])
            raw[p.name] = regs
            if p.type == "sunssf":
                values[p.name] = sfs[p.name] = decode(p, regs, na_as_none=True)  # type: ignore[assignment]
            else:
                values[p.name] = decode(p, regs, sfs.get(p.sf) if p.sf else None, na_as_none=na)
        return Decoded(values, raw, sfs)

    async def read(self, reader: Any, write: tuple[int, list[int]] | None = None) -> Decoded:
        """Read every span from `reader` and decode; `write` (address, registers) rides on the first read (FC23)."""
        blocks = []
        for i, (start, count) in enumerate(self.spans):
            blocks.append(await reader.read(start, count, write if i == 0 else None))
        return self.decode(blocks)


def decode_registers(regmap: RegisterMap, start: int, registers: Sequence[int],
                     sf_values: Mapping[str, int | None] | None = None, *,
                     names: Iterable[str] | None = None) -> dict[str, Any]:
    """Decode every point (of `names`, default all) lying entirely within `registers` read at `start`."""
    end = start + len(registers)
    keep = None if names is None else set(names)
    inside = [p.name for p in regmap.points if p.address >= start and p.end <= end and (keep is None or p.name in keep)]
    values = ReadPlan(regmap, inside, spans=[(start, len(registers))]).decode([registers], sf_values).values
    return {n: values[n] for n in inside}


async def read_points(client: Any, regmap: RegisterMap, names: Iterable[str] | None = None, *,
                      device_id: int = 1) -> dict[str, Any]:
    """Read and decode points (default: all) of a connected client; ModbusReadError when the device refuses."""
    wanted = list(regmap.names if names is None else names)
    try:
        got = await ReadPlan(regmap, wanted).read(as_reader(client, device_id))
    except DeviceError as exc:
        raise ModbusReadError(str(exc), exc.code) from None
    return {n: got.values.get(n) for n in wanted}


async def write_point(client: Any, regmap: RegisterMap, name: str, value: int | float | str, *, device_id: int = 1,
                      sf: int | None = None) -> list[int]:
    """Encode and write one point (FC16), reading its scale factor first if needed; returns the registers written."""
    reader, p = as_reader(client, device_id), regmap[name]
    try:
        if p.sf and sf is None:
            sf = (await ReadPlan(regmap, [p.sf]).read(reader)).values[p.sf]
            if sf is None:
                raise ModbusWriteError(f"scale factor {p.sf} of {name} is not implemented")
        regs = encode(p, value, sf)
        await reader.write(p.address, regs)
    except DeviceError as exc:
        raise ModbusWriteError(f"write {name}={value!r} at {p.address} failed: {exc}", exc.code) from None
    return regs


async def write_points(client: Any, regmap: RegisterMap, values: Mapping[str, int | float | str], *,
                       device_id: int = 1) -> None:
    """Write several points, one request each, in the given order."""
    for name, value in values.items():
        await write_point(client, regmap, name, value, device_id=device_id)
