"""The register image of an emulated device: every mapped register, built from the device's register map.

The map (``hil/maps/<device>.yaml``) is the one source of truth: only mapped registers
exist, and they start at the map's defaults (scale factors first). ``get`` / ``set`` work
in engineering units and honour ``scale`` and SunSpec ``sf``; ``set`` is the firmware-side
writer, so it ignores access rights and min/max and saturates numbers at the register type
(the master's writes are checked by :class:`firmware_stubs.server.StubServer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hil.codec import decode, encode_clamped
from hil.registers import Point, RegisterMap


class RegisterImage:
    """Register values of one device, addressed by protocol address."""

    def __init__(self, regmap: RegisterMap):
        self.map = regmap
        self.points: dict[str, Point] = {p.name: p for p in regmap.points}  # plain dict: the firmware's hot path
        self.regs: dict[int, int] = {a: 0 for p in regmap.points for a in range(p.address, p.end)}
        for p in sorted(regmap.points, key=lambda q: q.type != "sunssf"):  # scale factors first
            if p.default is not None:
                self.set(p.name, p.default)

    def read(self, address: int, count: int) -> list[int]:
        """Raw registers [address, address + count) (unmapped ones read 0)."""
        return [self.regs.get(a, 0) for a in range(address, address + count)]

    def raw(self, name: str) -> list[int]:
        """The raw registers of a point."""
        p = self.points[name]
        return [self.regs[a] for a in range(p.address, p.end)]

    def set_raw(self, name: str, registers: Sequence[int]) -> None:
        """Set the raw registers of a point."""
        p = self.points[name]
        if len(registers) != p.size:
            raise ValueError(f"{name}: needs {p.size} registers")
        for i, r in enumerate(registers):
            self.regs[p.address + i] = int(r) & 0xFFFF

    def sf(self, point: Point) -> int | None:
        """The present value of the point's scale factor (None without one)."""
        if point.sf is None:
            return None
        v = decode(self.points[point.sf], self.raw(point.sf))
        return None if v is None else int(v)  # type: ignore[arg-type]

    def get(self, name: str) -> Any:
        """A point's engineering value."""
        p = self.points[name]
        return decode(p, self.raw(name), self.sf(p))

    def set(self, name: str, value: Any) -> None:
        """Set a point's engineering value (saturating at the register type)."""
        p = self.points[name]
        self.set_raw(name, encode_clamped(p, value, self.sf(p)))
