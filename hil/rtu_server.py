"""Modbus RTU on a serial line in front of a `DataModel`: the slave side of the firmware stubs when they sit on a bus.

Only the framing differs from Modbus-TCP: a frame is `unit | PDU | CRC-16/MODBUS` (the CRC
low byte first); the request checks, the execution and the exception answers (function code
| 0x80 and the code) are those of `hil.modbus_server.TcpServer.answer`. As a slave on a shared
bus, the server stays silent where a TCP server answers: a frame for another unit id gets no
answer (not GATEWAY_NO_RESPONSE), nor does a frame whose CRC is wrong. A request is delimited
by its function code's length (FC1-6: 8 bytes, FC15/16: 9 + byte count, FC22: 10, FC23:
13 + byte count), a frame with a wrong CRC dropped whole; bytes that make no known request are dropped after a silence of 3.5
characters (at least `MIN_GAP_S`: a pseudo-terminal has no line timing), a frame of an unknown
function with a good CRC then answered ILLEGAL_FUNCTION. Broadcasts (unit 0) are not served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Container

from pymodbus.transport.serialtransport import create_serial_connection

from hil.modbus_server import DataModel, TcpServer
from hil.serial_line import SerialLine

MIN_GAP_S = 0.02
_FIXED_SIZE = {1: 8, 2: 8, 3: 8, 4: 8, 5: 8, 6: 8, 22: 10}
_COUNTED = {15: (6, 9), 16: (6, 9), 23: (10, 13)}  # fc -> (index of the byte count, size without the data)


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of `data` (reflected polynomial 0xA001, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def adu(unit: int, pdu: bytes) -> bytes:
    """The RTU frame of `pdu` for `unit`: unit id, PDU, CRC (low byte first)."""
    frame = bytes([unit]) + pdu
    return frame + crc16(frame).to_bytes(2, "little")


def request_size(buf: bytes | bytearray) -> int | None:
    """The length of the request frame at the start of `buf`; None for an unknown function or too few bytes to tell."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc in _FIXED_SIZE:
        return _FIXED_SIZE[fc]
    if fc in _COUNTED:
        at, size = _COUNTED[fc]
        return size + buf[at] if len(buf) > at else None
    return None


class RtuServer(asyncio.Protocol):
    """Modbus RTU slave on one serial line in front of a `DataModel`; see the module docstring."""

    def __init__(self, model: DataModel, units: Container[int], line: SerialLine,
                 on_request: Callable[[int, int], None] | None = None, log: logging.Logger | None = None):
        self.model, self.units, self.line = model, units, line
        self.log = log or logging.getLogger("hil.rtu_server")
        self.requests = TcpServer(model, units, on_request=on_request, log=self.log)  # never listens: its checks only
        self.gap_s = max(3.5 * line.char_s, MIN_GAP_S)
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._gap: asyncio.TimerHandle | None = None

    async def start(self) -> SerialLine:
        """Open the line and serve it; returns the line."""
        loop = asyncio.get_running_loop()
        self.transport, _ = await create_serial_connection(
            loop, lambda: self, self.line.path, baudrate=self.line.baudrate, bytesize=8, parity=self.line.parity,
            stopbits=self.line.stopbits, timeout=0)
        return self.line

    async def stop(self) -> None:
        """Close the line."""
        self.close()

    def close(self) -> None:
        """Close the line (also from synchronous clean-up)."""
        if self._gap is not None:
            self._gap.cancel()
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # -- asyncio.Protocol --------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        self._buf += data
        while (size := request_size(self._buf)) is not None and len(self._buf) >= size:
            frame = bytes(self._buf[:size])
            del self._buf[:size]
            self._serve(frame)
        if self._gap is not None:
            self._gap.cancel()
        if self._buf:
            self._gap = asyncio.get_running_loop().call_later(self.gap_s, self._silence)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.log.error("serial line %s lost: %s", self.line.path, exc)
        self.transport = None

    # -- frames ------------------------------------------------------------------------------------
    def _silence(self) -> None:
        """The line went quiet with bytes that made no known request: one frame (an unknown function) or noise."""
        frame, self._buf = bytes(self._buf), bytearray()
        self._gap = None
        if len(frame) >= 4:
            self._serve(frame)
        else:
            self.log.warning("dropped %d bytes that make no frame: %s", len(frame), frame.hex(" "))

    def _serve(self, frame: bytes) -> None:
        """Answer one frame when its CRC is right and it is for a unit served here."""
        if int.from_bytes(frame[-2:], "little") != crc16(frame[:-2]):
            self.log.warning("frame with a wrong CRC dropped, no answer: %s", frame.hex(" "))
            return
        unit, pdu = frame[0], frame[1:-2]
        if unit not in self.units or unit == 0:
            self.log.debug("frame for unit %d: not this slave, no answer", unit)
            return
        self.model.peer = f"serial {self.line.path}"  # who asked, for the data model's logs
        try:
            reply = self.requests.answer(unit, pdu)
        except Exception:  # noqa: BLE001 - a fault in the data model must not end the server
            self.log.error("no answer to %s after an internal error", frame.hex(" "), exc_info=True)
            return
        if self.transport is not None:
            self.transport.write(adu(unit, reply))
