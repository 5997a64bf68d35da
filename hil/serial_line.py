"""One serial line's settings (device path, baud rate, parity, stop bits; always 8 data bits), as both ends of Modbus RTU use them.

The bridge's client (`hil.client.DeviceClient`), the stub's server (`hil.rtu_server`) and
`cosim probe` take a `SerialLine`; `line_of` makes one of a scenario's `modbus:` block.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Any, Literal

Parity = Literal["N", "E", "O"]


@dataclass(frozen=True)
class SerialLine:
    """Where and how an RTU device is wired: '/dev/ttyUSB0 19200 8E1'."""

    path: str
    baudrate: int = 19200
    parity: Parity = "N"
    stopbits: int = 1

    def __str__(self) -> str:
        return f"{self.path} {self.baudrate} 8{self.parity}{self.stopbits}"

    @property
    def char_s(self) -> float:
        """Seconds one character takes on the wire: start bit, 8 data bits, the parity bit if any, stop bits."""
        return (1 + 8 + (self.parity != "N") + self.stopbits) / self.baudrate

    def stub_argv(self) -> list[str]:
        """The firmware stub's options that serve this line (see `firmware_stubs.cli`)."""
        return ["--serial-port", self.path, "--baudrate", str(self.baudrate), "--parity", self.parity,
                "--stopbits", str(self.stopbits)]


def line_of(target: Any) -> SerialLine | None:
    """The serial line of a scenario's `modbus:` block (`cosim.scenario.devices.ModbusTarget`); None for Modbus-TCP."""
    if getattr(target, "transport", "tcp") != "rtu":
        return None
    return SerialLine(target.serial, target.baudrate, target.parity, target.stopbits)


def openable(line: SerialLine) -> str | None:
    """None when the line's device opens for reading and writing, else why not, in words."""
    try:
        fd = os.open(line.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except FileNotFoundError:
        return f"no serial device {line.path} (is the adapter plugged in, the path right?)"
    except PermissionError:
        return f"no permission to open {line.path} (is this user in the group that owns it, e.g. dialout?)"
    except OSError as exc:
        return f"cannot open {line.path}: {exc.strerror or exc} ({errno.errorcode.get(exc.errno or 0, '')})"
    os.close(fd)
    return None
