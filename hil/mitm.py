"""Attacks on the wire: a Modbus-TCP man-in-the-middle proxy, and a rogue client.

`ModbusProxy` listens on 127.0.0.1 and relays every connection to one device, frame by frame
(MBAP header, one request in flight per connection, as Modbus-TCP masters do). Its settings
can change at any time and apply to the next frame:

- `tamper[point] = (scale, bias)`: read responses carry value * scale + bias for the point;
- `write_tamper[point] = (scale, offset)`: write requests to the point are rewritten in flight;
- `delay_s`: every request is held that long before it is relayed;
- `drop_rate`: each request is lost with that probability (the master times out);
- `recording` / `replaying`: read responses are taped per (function, address, count) and later
  played back in a loop instead of the live ones (with `replay_points`, only those points'
  registers come from the tape, the rest of each answer is live);
- `garbage`: the master gets bytes that are no Modbus answer.

`truth` holds, per point the proxy rewrote in a read answer since the last `clear`, the value the
device really sent (so the co-simulation's physics can take the device's real output while its
masters see the forgery). `rogue_write` is an unauthorised master: it writes a point straight to
the device.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from pymodbus.client import AsyncModbusTcpClient

from hil.codec import decode, encode
from hil.reading import decode_registers, write_point
from hil.registers import RegisterMap

READS = (3, 4, 23)  # function codes whose answer carries registers (23: write, then read)


class ModbusProxy:
    """A man in the middle between Modbus masters and one device; see the module docstring."""

    def __init__(self, upstream: tuple[str, int], regmap: RegisterMap | None = None, host: str = "127.0.0.1",
                 port: int = 0, seed: int = 0):
        self.upstream, self.regmap, self.host, self.port = upstream, regmap, host, port
        self.tamper: dict[str, tuple[float, float]] = {}
        self.write_tamper: dict[str, tuple[float, float]] = {}
        self.delay_s = 0.0
        self.drop_rate = 0.0
        self.recording = False
        self.replaying = False
        self.replay_points: set[str] | None = None
        self.garbage = False
        self.truth: dict[str, object] = {}
        self.rng = np.random.default_rng(seed)
        self.tape: dict[tuple[int, int, int], list[bytes]] = defaultdict(list)
        self._play: dict[tuple[int, int, int], int] = defaultdict(int)
        self.sfs: dict[str, int | None] = {}  # scale factors seen in read answers, to decode what is tampered
        self._sf_names = [p.name for p in regmap.points if p.type == "sunssf"] if regmap is not None else []
        self.stats = {"relayed": 0, "dropped": 0, "tampered": 0, "replayed": 0, "delayed": 0}
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> int:
        """Start listening; returns the port."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every relayed connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._server = None

    def close(self) -> None:
        """Stop listening and relaying without awaiting (from synchronous clean-up)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        self._server = None

    def clear(self) -> None:
        """No attack: relay everything as it is."""
        self.tamper, self.write_tamper = {}, {}
        self.delay_s, self.drop_rate = 0.0, 0.0
        self.recording = self.replaying = self.garbage = False
        self.replay_points, self.truth = None, {}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        up_writer = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            while True:
                frame = await _read_frame(reader)
                if frame is None:
                    return
                request = _parse(frame)
                if self.drop_rate and self.rng.random() < self.drop_rate:
                    self.stats["dropped"] += 1
                    continue
                if self.delay_s:
                    self.stats["delayed"] += 1
                    await asyncio.sleep(self.delay_s)
                if self.garbage:
                    writer.write(b"\xde\xad\xbe\xef" * 3)
                    await writer.drain()
                    continue
                up_writer.write(self._rewrite_request(frame, request))
                await up_writer.drain()
                answer = await _read_frame(up_reader)
                if answer is None:
                    return
                self.stats["relayed"] += 1
                writer.write(self._rewrite_answer(answer, request))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        except asyncio.CancelledError:  # `stop` ends the relay: a normal end (asyncio's server callback would
            return  # otherwise log the cancellation as an error)
        finally:
            self._tasks.discard(task)
            for w in (writer, up_writer):
                if w is not None:
                    w.close()

    # -- rewriting ------------------------------------------------------------------------------
    def _rewrite_request(self, frame: bytes, request: tuple[int, int, int]) -> bytes:
        fc, address, count = request
        if fc != 16 or not self.write_tamper or self.regmap is None:
            return frame
        regs = list(struct.unpack(f">{count}H", frame[13:13 + 2 * count]))
        if not self._edit(regs, address, self.write_tamper):
            return frame
        return frame[:13] + struct.pack(f">{count}H", *regs)

    def _rewrite_answer(self, answer: bytes, request: tuple[int, int, int]) -> bytes:
        fc, address, count = request
        if fc not in READS or answer[7] & 0x80:
            return answer
        key = (fc, address, count)
        if self.recording:
            self.tape[key].append(answer[7:])
        n = answer[8] // 2
        regs = list(struct.unpack(f">{n}H", answer[9:9 + 2 * n]))
        if self.regmap is not None:
            self._learn(regs, address)
        changed = False
        if self.replaying and self.tape.get(key):
            tape = self.tape[key]
            pdu = tape[self._play[key] % len(tape)]
            self._play[key] += 1
            self.stats["replayed"] += 1
            if self.replay_points is None or self.regmap is None:
                if self.regmap is not None:
                    self.truth.update(decode_registers(self.regmap, address, regs, self.sfs))
                return answer[:4] + struct.pack(">H", len(pdu) + 1) + answer[6:7] + pdu
            changed = self._splice(regs, address, list(struct.unpack(f">{n}H", pdu[2:2 + 2 * n])))
        if self.regmap is not None and self.tamper:
            changed = self._edit(regs, address, self.tamper) or changed
        if not changed:
            return answer
        return answer[:9] + struct.pack(f">{n}H", *regs)

    def _learn(self, regs: list[int], address: int) -> None:
        self.sfs.update(decode_registers(self.regmap, address, regs, names=self._sf_names))

    def _splice(self, regs: list[int], address: int, taped: list[int]) -> bool:
        """Put the taped registers of `replay_points` into the live answer `regs` (read at `address`)."""
        inside = [p for p in map(self.regmap.get, self.replay_points)
                  if p is not None and p.address >= address and p.end <= address + len(regs)]
        if not inside or len(taped) != len(regs):
            return False
        self.truth.update(decode_registers(self.regmap, address, regs, self.sfs, names=[p.name for p in inside]))
        for p in inside:
            regs[p.address - address:p.end - address] = taped[p.address - address:p.end - address]
        return True

    def _edit(self, regs: list[int], address: int, edits: dict[str, tuple[float, float]]) -> bool:
        """Apply value * scale + bias to the points of `edits` inside regs (read at `address`)."""
        regmap, end, changed = self.regmap, address + len(regs), False
        for name, (scale, bias) in edits.items():
            p = regmap.get(name)
            if p is None or p.address < address or p.end > end:
                continue
            sf = self.sfs.get(p.sf) if p.sf else None
            value = decode(p, regs[p.address - address:p.end - address], sf)
            if not isinstance(value, (int, float)):
                continue
            try:
                new = encode(p, value * scale + bias, sf)
            except ValueError:
                continue
            if edits is self.tamper:
                self.truth.setdefault(name, value)
            regs[p.address - address:p.end - address] = new
            self.stats["tampered"] += 1
            changed = True
        return changed


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One Modbus-TCP frame (MBAP header + PDU), or None at end of stream."""
    try:
        head = await reader.readexactly(7)
    except asyncio.IncompleteReadError:
        return None
    length = struct.unpack(">H", head[4:6])[0]
    if length < 1 or length > 254:
        raise ConnectionError(f"not a Modbus-TCP frame (length {length})")
    return head + await reader.readexactly(length - 1)


def _parse(frame: bytes) -> tuple[int, int, int]:
    """(function code, start address, register count) of a request; count 1 for single writes."""
    fc = frame[7]
    if fc in READS or fc == 16:  # FC23 starts with its read address and count
        address, count = struct.unpack(">HH", frame[8:12])
        return fc, address, count
    if fc == 6:
        return fc, struct.unpack(">H", frame[8:10])[0], 1
    return fc, -1, 0


async def rogue_write(host: str, port: int, regmap: RegisterMap, point: str, value: float, unit: int = 1,
                      timeout: float = 1.0, trace: Callable[[bool, Any], Any] | None = None) -> bool:
    """An unauthorised master writes `point` = `value` straight to the device; True if the device accepted it.
    `trace` sees its PDUs (pymodbus's `trace_pdu`: the run's capture)."""
    client = AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=0, reconnect_delay=0, trace_pdu=trace)
    try:
        if not await client.connect():
            return False
        await write_point(client, regmap, point, value, device_id=unit)
        return True
    except Exception:  # noqa: BLE001 - an attacker's failed write is not the testbed's error
        return False
    finally:
        client.close()
