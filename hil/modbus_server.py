"""The Modbus-TCP server side of the firmware stubs and the grid server: framing, request checks, exceptions.

One `TcpServer` in front of a `DataModel` (the four Modbus tables of one device). Per
connection it reads MBAP frames one after another, so several requests in one TCP segment
(pipelining) are all answered, in order. Each request is checked in the order of the Modbus
application protocol (V1.1b3, the state diagram of each function):

1. unit id: a unit the server does not serve gets GATEWAY_NO_RESPONSE (0x0B);
2. function code: one the data model does not implement (`DataModel.functions`, at most
   `FUNCTIONS`: 1-6, 15, 16, 22, 23) gets ILLEGAL_FUNCTION (0x01);
3. the request's own consistency: quantity within the function's range (FC1/2: 1..2000,
   FC3/4: 1..125, FC15: 1..1968, FC16: 1..123, FC23: read 1..125, write 1..121), byte count
   matching the quantity, FC5 value 0x0000 or 0xFF00, PDU of the function's length, else
   ILLEGAL_VALUE (0x03);
4. addresses: start + quantity beyond 0x10000 gets ILLEGAL_ADDRESS (0x02); the data model
   answers 0x02 itself for addresses it does not map;
5. the data model's own refusal (it raises `Refused` with its code, e.g. 0x03 for a value it
   rejects); every refusal is logged once, with its reason.

An exception answer is the request's function code | 0x80 and the code (0x83 0x03 for a
FC3 with quantity 0, 0xC1 0x01 for the undefined function 0x41), with the request's
transaction and unit id. A frame whose MBAP length is outside 2..254 cannot be delimited: the
connection is closed. A frame with a protocol id other than 0 is not Modbus and gets no answer.
The data model works synchronously, so one request is atomic against the device's firmware
loop (FC23 writes, then reads, with nothing in between); while it answers, `DataModel.peer`
is the client's address (`host:port`), for the write logs and events. The server's log is
rate-limited (`hil.logs`), and a fault in the data model is logged and closes that one
connection: it never ends the server or prints a traceback to the terminal of the run.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Container
from typing import Literal

from pymodbus.constants import ExcCodes

from hil.logs import rate_limited

Table = Literal["coil", "discrete", "holding", "input"]

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 0x01, 0x02, 0x03
NO_UNIT = 0x0B  # GATEWAY_NO_RESPONSE: "gateway target device failed to respond"
FUNCTIONS = frozenset({1, 2, 3, 4, 5, 6, 15, 16, 22, 23})
WRITE_FUNCTIONS = frozenset({5, 6, 15, 16, 22, 23})
_READ_TABLE: dict[int, Table] = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
_MAX_READ = {1: 2000, 2: 2000, 3: 125, 4: 125}


class Refused(Exception):
    """A request refused with a Modbus exception code; `reason` says why, for the log."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


class DataModel:
    """The four tables of one device; subclasses answer reads and writes, or raise `Refused`."""

    functions: frozenset[int] = FUNCTIONS  # the function codes this device implements
    peer: str = "-"  # the client of the request being answered (host:port)

    def read(self, table: Table, address: int, count: int) -> list[int]:
        """Values [address, address + count) of `table` (bits as 0/1)."""
        raise Refused(ILLEGAL_FUNCTION, f"no {table} table")

    def write(self, table: Table, address: int, values: list[int], fc: int) -> None:
        """Write `values` (registers, or bits as 0/1) at `address`."""
        raise Refused(ILLEGAL_FUNCTION, f"no writable {table} table")


def code_name(code: int) -> str:
    """'ILLEGAL_ADDRESS' for 0x02 (pymodbus's `ExcCodes` names, the ones logs and probe print)."""
    try:
        return ExcCodes(code).name
    except ValueError:
        return str(code)


def _bits(data: bytes, count: int) -> list[int]:
    return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]


def _pack_bits(bits: list[int]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _regs(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


def _need(ok: bool, reason: str, code: int = ILLEGAL_VALUE) -> None:
    if not ok:
        raise Refused(code, reason)


def _span(address: int, count: int) -> None:
    _need(address + count <= 0x10000, f"addresses {address}..{address + count - 1} beyond 65535", ILLEGAL_ADDRESS)


class TcpServer:
    """Modbus-TCP on asyncio streams in front of a `DataModel`; see the module docstring."""

    def __init__(self, model: DataModel, units: Container[int], host: str = "127.0.0.1", port: int = 0,
                 on_request: Callable[[int, int], None] | None = None, log: logging.Logger | None = None):
        self.model, self.units, self.host, self.port = model, units, host, port
        self.on_request = on_request  # (unit, function code) of every request for a served unit
        self.log = rate_limited(log or logging.getLogger("hil.modbus_server"))
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task] = {}

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound (host, port)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        return self.host, self.port

    async def stop(self) -> None:
        """Stop listening, close every connection and wait until their handlers have ended."""
        handlers = list(self._connections.values())
        self.close()
        if handlers:
            await asyncio.wait(handlers, timeout=2.0)

    def close(self) -> None:
        """Stop listening and drop every connection (also from synchronous clean-up)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._connections):
            w.close()  # its handler sees the end of the stream and returns

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections[writer] = asyncio.current_task()  # type: ignore[assignment]
        peer = writer.get_extra_info("peername")
        peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            while True:
                tid, pid, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                if not 2 <= length <= 254:
                    self.log.warning("MBAP length %d outside 2..254: closing the connection", length)
                    break
                pdu = await reader.readexactly(length - 1)
                if pid != 0:
                    continue
                self.model.peer = peer
                reply = self.answer(unit, pdu)
                writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - a fault answering one client must not reach the run's terminal
            self.log.error("closing the connection of %s after an internal error", peer, exc_info=True)
        finally:
            self._connections.pop(writer, None)
            writer.close()

    def answer(self, unit: int, pdu: bytes) -> bytes:
        """The response PDU to one request PDU for `unit` (an exception response when refused)."""
        fc = pdu[0] if pdu else 0
        try:
            _need(unit in self.units, f"unit {unit} is not served here", NO_UNIT)
            if self.on_request is not None:
                self.on_request(unit, fc)
            _need(fc in self.model.functions, f"function code 0x{fc:02x} is not supported", ILLEGAL_FUNCTION)
            return self._execute(fc, pdu[1:])
        except Refused as r:
            self.log.warning("%s rejected: %s (0x%02x) fc=%d unit=%d: %s (from %s)", "write" if fc in WRITE_FUNCTIONS
                             else "request", code_name(r.code), r.code, fc, unit, r.reason, self.model.peer)
            return bytes([(fc | 0x80) & 0xFF, r.code])

    def _execute(self, fc: int, body: bytes) -> bytes:
        m = self.model
        if fc in _READ_TABLE:
            _need(len(body) == 4, f"FC{fc} request of {len(body) + 1} bytes, expected 5")
            address, count = struct.unpack(">HH", body)
            _need(1 <= count <= _MAX_READ[fc], f"quantity {count} outside 1..{_MAX_READ[fc]}")
            _span(address, count)
            values = m.read(_READ_TABLE[fc], address, count)
            data = _pack_bits(values) if fc <= 2 else struct.pack(f">{count}H", *values)
            return bytes([fc, len(data)]) + data
        if fc in (5, 6):
            _need(len(body) == 4, f"FC{fc} request of {len(body) + 1} bytes, expected 5")
            address, value = struct.unpack(">HH", body)
            if fc == 5:
                _need(value in (0x0000, 0xFF00), f"coil value 0x{value:04x} is neither 0x0000 nor 0xFF00")
                m.write("coil", address, [int(value == 0xFF00)], fc)
            else:
                m.write("holding", address, [value], fc)
            return bytes([fc]) + body
        if fc in (15, 16):
            _need(len(body) >= 5, f"FC{fc} request of {len(body) + 1} bytes, expected at least 6")
            address, count, nbytes = struct.unpack(">HHB", body[:5])
            limit, size = (1968, (count + 7) // 8) if fc == 15 else (123, 2 * count)
            _need(1 <= count <= limit, f"quantity {count} outside 1..{limit}")
            _need(nbytes == size and len(body) == 5 + nbytes, f"byte count {nbytes} does not fit quantity {count}")
            _span(address, count)
            data = body[5:]
            if fc == 15:
                m.write("coil", address, _bits(data, count), fc)
            else:
                m.write("holding", address, _regs(data), fc)
            return bytes([fc]) + body[:4]
        if fc == 22:
            _need(len(body) == 6, f"FC22 request of {len(body) + 1} bytes, expected 7")
            address, and_mask, or_mask = struct.unpack(">HHH", body)
            (current,) = m.read("holding", address, 1)
            m.write("holding", address, [(current & and_mask) | (or_mask & ~and_mask & 0xFFFF)], fc)
            return bytes([fc]) + body
        _need(len(body) >= 9, f"FC23 request of {len(body) + 1} bytes, expected at least 10")  # fc == 23
        r_address, r_count, w_address, w_count, nbytes = struct.unpack(">HHHHB", body[:9])
        _need(1 <= r_count <= 125, f"read quantity {r_count} outside 1..125")
        _need(1 <= w_count <= 121, f"write quantity {w_count} outside 1..121")
        _need(nbytes == 2 * w_count and len(body) == 9 + nbytes, f"byte count {nbytes} does not fit quantity {w_count}")
        _span(r_address, r_count)
        _span(w_address, w_count)
        m.read("holding", r_address, r_count)  # a read that must fail fails before anything is written
        m.write("holding", w_address, _regs(body[9:]), fc)
        values = m.read("holding", r_address, r_count)
        return bytes([fc, 2 * r_count]) + struct.pack(f">{r_count}H", *values)
