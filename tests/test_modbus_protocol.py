"""Raw Modbus-TCP frames over real sockets on 127.0.0.1 against every server: each firmware stub and the grid server.

The expected answers come from the Modbus application protocol (V1.1b3) and the Modbus-TCP
messaging guide: an exception answer is the request's function code | 0x80 followed by the
code; the checks run in the order function code (0x01), quantity and byte count (0x03),
address (0x02); the MBAP header echoes the transaction and unit id. Several requests in one TCP
segment are all answered, in order. The grid server's coil i is line i (IEEE 33: coils 1..37),
and other coil addresses are 0x02. A unit id a server does not serve gets 0x0B (documented).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from hil.grid_server import GridServer, entries, load_layout
from hil.guard import Guard, Rule
from hil_support import Stub

STUBS = {  # kind -> a mapped holding register
    "inverter": 40000,
    "capbank": 0,
    "regulator": 0,
    "recloser": 0,
}
LINES = list(range(1, 38))  # IEEE 33: lines 1..37 (33..37 the tie lines, out of service)


def frame(tid: int, unit: int, pdu: bytes) -> bytes:
    """One MBAP frame: transaction id, protocol 0, length, unit id, then the PDU."""
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def pdu(fc: int, *words: int) -> bytes:
    return bytes([fc]) + struct.pack(f">{len(words)}H", *words)


class Raw:
    """A bare TCP connection: send frames in one segment, read whole MBAP answers."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def answers(self, *frames: bytes) -> list[tuple[int, int, bytes]]:
        """(transaction id, unit id, response PDU) for each frame, all sent in one sendall."""
        self.sock.sendall(b"".join(frames))
        out = []
        for _ in frames:
            tid, pid, length, unit = struct.unpack(">HHHB", self._exactly(7))
            assert pid == 0
            out.append((tid, unit, self._exactly(length - 1)))
        return out

    def ask(self, request: bytes, unit: int = 1) -> bytes:
        ((tid, got_unit, response),) = self.answers(frame(7, unit, request))
        assert (tid, got_unit) == (7, unit)  # echoed
        return response

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def grid_server(closed: list[bool] | None = None, commands: bool = True) -> Iterator[tuple[int, GridServer]]:
    """The grid server of an IEEE 33 run with one generator, on its own event loop in a thread."""
    table = entries(load_layout(), list(range(1, 34)), LINES, ["pv1"])
    rules = {"pv1.p_limit_mw": Rule(0, 1.0), "pv1.q_set_mvar": Rule(-1.1, 1.1), "line.6.closed": Rule(0, 1)}
    server = GridServer(table, Guard("scada", rules.keys(), rules), port=0, commands=commands)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        port = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        state = closed if closed is not None else [i < 32 for i in range(37)]
        loop.call_soon_threadsafe(server.update, {"bus.1.vm_pu": 1.0}, state, 0)
        yield port, server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture(scope="module", params=[*STUBS, "grid_server"])
def server(request) -> Iterator[tuple[str, int, int]]:
    """(kind, port, a mapped holding register) of every server."""
    if request.param == "grid_server":
        with grid_server() as (port, _):
            yield "grid_server", port, 0
        return
    stub = Stub(request.param)
    try:
        yield request.param, stub.port, STUBS[request.param]
    finally:
        stub.stop()


@pytest.fixture
def raw(server) -> Iterator[Raw]:
    r = Raw(server[1])
    yield r
    r.close()


def test_exception_answers_carry_the_function_code_or_0x80_and_the_right_code(server, raw):
    kind, _, mapped = server
    assert raw.ask(pdu(3, mapped, 2))[:2] == bytes([3, 4])  # a good read first: 2 registers, 4 bytes
    assert raw.ask(pdu(3, mapped, 0)) == bytes([0x83, 0x03])  # quantity 0
    assert raw.ask(pdu(3, mapped, 126)) == bytes([0x83, 0x03])  # quantity above 125
    assert raw.ask(pdu(4, mapped, 0)) == bytes([0x84, 0x03])
    assert raw.ask(pdu(3, 65535, 2)) == bytes([0x83, 0x02])  # beyond the address space
    assert raw.ask(pdu(3, 9999, 1)) == bytes([0x83, 0x02])  # unmapped on every server
    assert raw.ask(bytes([0x41, 0, 0])) == bytes([0xC1, 0x01])  # undefined function code
    assert raw.ask(pdu(0x2B, 0x0E01)) == bytes([0xAB, 0x01])  # a function not implemented
    assert raw.ask(bytes([16]) + struct.pack(">HHB", mapped, 2, 3) + b"\0\0\0") == bytes([0x90, 0x03])  # byte count
    assert raw.ask(bytes([3, 0, 0])) == bytes([0x83, 0x03])  # a PDU too short for its function
    assert raw.ask(pdu(3, mapped, 1), unit=9) == bytes([0x83, 0x0B])  # a unit id not served (documented)


def test_coil_functions_on_devices_without_bits_are_illegal_functions(server, raw):
    kind = server[0]
    if kind == "grid_server":
        pytest.skip("the grid server has coils")
    for request in (pdu(1, 0, 1), pdu(1, 0x1000, 1), pdu(2, 0, 8), pdu(5, 0, 0xFF00), pdu(1, 0, 0)):
        assert raw.ask(request) == bytes([request[0] | 0x80, 0x01])  # function first, whatever the address


@pytest.mark.parametrize("n", [2, 3, 5, 50])
def test_pipelined_requests_are_all_answered_in_order(server, raw, n):
    _, _, mapped = server
    frames = [frame(1000 + i, 1, pdu(3, mapped, 1 + i % 2) if i % 4 else pdu(3, mapped, 0)) for i in range(n)]
    answers = raw.answers(*frames)
    assert [tid for tid, _, _ in answers] == [1000 + i for i in range(n)]
    for i, (_, unit, response) in enumerate(answers):
        assert unit == 1
        assert response == bytes([0x83, 0x03]) if i % 4 == 0 else response[:2] == bytes([3, 2 * (1 + i % 2)])


def test_grid_server_coil_i_is_line_i_and_other_coils_are_illegal_addresses():
    closed = [i < 32 for i in range(37)]  # IEEE 33: the tie lines 33..37 open
    closed[6] = False  # line 7 out
    with grid_server(closed) as (port, server):
        raw = Raw(port)
        try:
            for fc in (1, 2):  # coils and discrete inputs alike
                answer = raw.ask(pdu(fc, 1, 37))
                assert answer[:2] == bytes([fc, 5])  # 37 bits in 5 bytes
                bits = [(answer[2 + i // 8] >> (i % 8)) & 1 for i in range(37)]
                assert bits == [int(c) for c in closed]  # coil k is line k
                assert raw.ask(pdu(fc, 7, 1)) == bytes([fc, 1, 0])  # line 7 is open
                assert raw.ask(pdu(fc, 8, 1)) == bytes([fc, 1, 1])
                for start, count in [(0, 1), (38, 1), (37, 11), (0, 38), (1, 0), (1, 2001)]:
                    code = 0x03 if count in (0, 2001) else 0x02
                    assert raw.ask(pdu(fc, start, count)) == bytes([fc | 0x80, code]), (fc, start, count)
            assert raw.ask(pdu(5, 7, 0xFF00)) == bytes([0x85, 0x02])  # line 7 is not on the breakers allow-list
            assert raw.ask(pdu(5, 7, 0x1234)) == bytes([0x85, 0x03])  # not a coil value at all
            assert raw.ask(pdu(16, 0, 1, 0) + b"\0\0")[:1] == bytes([0x90])  # half a float32: refused
        finally:
            raw.close()
        assert ("guard_blocked", "scada.line.7.closed") in server.notes


def test_grid_server_without_commands_refuses_every_setpoint_and_breaker_write():
    for commands, expected in ((True, None), (False, bytes([0x90, 0x01]))):
        with grid_server(commands=commands) as (port, server):
            raw = Raw(port)
            try:
                address = min(server.commands)  # the first command register (a float32 setpoint)
                answer = raw.ask(bytes([16]) + struct.pack(">HHB", address, 2, 4) + struct.pack(">f", 0.5))
                breaker = raw.ask(pdu(5, 6, 0x0000))  # open line 6, which is on the breakers allow-list
                if expected is None:
                    assert answer[:1] == bytes([0x10]) and breaker == pdu(5, 6, 0x0000)  # written
                    assert server.take_commands() == {"pv1.p_limit_mw": 0.5, "line.6.closed": 0.0}
                else:
                    assert answer == expected and breaker == bytes([0x85, 0x01])  # illegal function: nothing taken
                    assert server.take_commands() == {} and ("guard_blocked", f"scada.register.{address}") in server.notes
                    assert ("guard_blocked", "scada.coil.6") in server.notes
            finally:
                raw.close()
