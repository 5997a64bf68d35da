"""Engineering values <-> Modbus registers for the points of a register map (`hil.registers`).

Multi-register values are big-endian ("ABCD", SunSpec): the most significant word first.
Numbers are converted by pymodbus (`ModbusClientMixin.convert_to_registers` /
`convert_from_registers`); this module adds what a map point means on top: the range of
its type, `scale` or a SunSpec scale factor (`sf`, value = raw * 10**sf), the SunSpec "not
implemented" sentinels, and strings of a fixed `length` (two bytes per register, NUL padded,
cut at the first NUL and decoded leniently, since devices send all sorts of bytes there).
Everything works on plain `list[int]`; no transport here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pymodbus.client.mixin import ModbusClientMixin

from hil.registers import TYPE_SIZES, Point

_DT = ModbusClientMixin.DATATYPE
#: The pymodbus data type of each numeric point type (acc32 and sunssf are uint32 and int16 on the wire).
DATATYPES = {"uint16": _DT.UINT16, "int16": _DT.INT16, "sunssf": _DT.INT16, "uint32": _DT.UINT32,
             "int32": _DT.INT32, "acc32": _DT.UINT32, "float32": _DT.FLOAT32}

#: Raw ranges of the integer types.
INT_RANGES: dict[str, tuple[int, int]] = {
    "uint16": (0, 0xFFFF), "int16": (-0x8000, 0x7FFF), "sunssf": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFFFFFF), "acc32": (0, 0xFFFFFFFF), "int32": (-0x80000000, 0x7FFFFFFF),
}

#: SunSpec "not implemented" raw values (acc32 uses 0, which is also a valid reading, so it never maps to None).
_NOT_IMPLEMENTED: dict[str, int] = {"uint16": 0xFFFF, "int16": -0x8000, "sunssf": -0x8000, "uint32": 0xFFFFFFFF,
                                    "int32": -0x80000000}


class EncodeError(ValueError):
    """An engineering value cannot be represented by the point's type and scale."""


def raw_to_registers(type_: str, raw: int | float | str, length: int | None = None) -> list[int]:
    """A raw (unscaled) value of `type_` as big-endian registers."""
    if type_ == "string":
        if length is None:
            raise EncodeError("string needs a length")
        data = str(raw).encode("utf-8")
        if len(data) > 2 * length:
            raise EncodeError(f"string {raw!r} longer than {2 * length} bytes")
        data = data.ljust(2 * length, b"\x00")
        return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if type_ == "float32":
        try:
            return ModbusClientMixin.convert_to_registers(float(raw), _DT.FLOAT32)
        except (OverflowError, ValueError, TypeError) as exc:
            raise EncodeError(f"{raw!r} does not fit float32") from exc
    if type_ not in INT_RANGES:
        raise EncodeError(f"unknown type {type_!r}")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise EncodeError(f"{raw!r} is not an integer")
        raw = int(raw)
    if not isinstance(raw, int):
        raise EncodeError(f"{raw!r} is not an integer")
    lo, hi = INT_RANGES[type_]
    if not lo <= raw <= hi:
        raise EncodeError(f"{raw} outside {type_} range {lo}..{hi}")
    return ModbusClientMixin.convert_to_registers(raw, DATATYPES[type_])


def registers_to_raw(type_: str, registers: Sequence[int]) -> int | float | str:
    """Big-endian registers as the raw (unscaled) value of `type_`."""
    regs = [int(r) & 0xFFFF for r in registers]
    if type_ == "string":
        data = b"".join(r.to_bytes(2, "big") for r in regs)
        return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace").rstrip()
    n = TYPE_SIZES.get(type_, 0)
    if n == 0:
        raise ValueError(f"unknown type {type_!r}")
    if len(regs) < n:
        raise ValueError(f"{type_} needs {n} registers, got {len(regs)}")
    return ModbusClientMixin.convert_from_registers(regs[:n], DATATYPES[type_])  # type: ignore[return-value]


def is_not_implemented(type_: str, raw: int | float | str) -> bool:
    """True when `raw` is the SunSpec "not implemented" value of `type_`."""
    if type_ == "float32":
        return isinstance(raw, float) and math.isnan(raw)
    if type_ == "string":
        return raw == ""
    return _NOT_IMPLEMENTED.get(type_) == raw


def _clean(x: float) -> float:
    """Remove binary noise such as 0.30000000000000004 from a scaled value."""
    if not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.12g}")


def _unscaled(point: Point, value: float, sf: int | None) -> float:
    """The raw value (before rounding) of an engineering value, by the point's scale or scale factor."""
    if point.scale is not None:
        return value / point.scale
    if point.sf is not None:
        if sf is None:
            raise EncodeError(f"point {point.name!r} needs the value of scale factor {point.sf!r}")
        e = int(sf)
        return value * (10 ** (-e)) if e <= 0 else value / (10**e)
    return value


def encode(point: Point, value: int | float | str, sf: int | None = None) -> list[int]:
    """An engineering value of `point` as registers (`sf`: the value of its scale factor); EncodeError if it does not fit."""
    if point.type == "string":
        if not isinstance(value, str):
            raise EncodeError(f"point {point.name!r} is a string, got {value!r}")
        return raw_to_registers("string", value, point.length)
    if isinstance(value, str):
        raise EncodeError(f"point {point.name!r} is numeric, got {value!r}")
    v = float(value)
    if not math.isfinite(v) and point.type != "float32":
        raise EncodeError(f"point {point.name!r}: {value!r} is not finite")
    raw_f = _unscaled(point, v, sf)
    if point.type == "float32":
        return raw_to_registers("float32", raw_f)
    try:
        return raw_to_registers(point.type, int(round(raw_f)))
    except EncodeError as exc:
        raise EncodeError(f"point {point.name!r}: value {value!r}: {exc}") from None


def encode_clamped(point: Point, value: int | float | str, sf: int | None = None) -> list[int]:
    """Like `encode`, but integers saturate at their type's range (a scaled point never reaches the NA sentinel)."""
    if point.type in ("string", "float32"):
        return encode(point, value, sf)
    v = float(value)
    raw_f = _unscaled(point, v if math.isfinite(v) else 0.0, sf)
    lo, hi = INT_RANGES[point.type]
    if point.sf is not None and point.type != "acc32":
        lo, hi = (lo + 1, hi) if lo < 0 else (lo, hi - 1)
    return raw_to_registers(point.type, max(lo, min(hi, int(round(raw_f)))))


def decode(point: Point, registers: Sequence[int], sf: int | None = None, *,
           na_as_none: bool = False) -> int | float | str | None:
    """The engineering value of `point` from its registers (None when its scale factor `sf` is unknown, or NA)."""
    if len(registers) < point.size:
        raise ValueError(f"point {point.name!r} needs {point.size} registers, got {len(registers)}")
    raw = registers_to_raw(point.type, registers[: point.size])
    if na_as_none and is_not_implemented(point.type, raw):
        return None
    if point.type in ("string", "sunssf"):
        return raw
    if point.scale is not None:
        return _clean(float(raw) * point.scale)
    if point.sf is not None:
        if sf is None:
            return None
        e = int(sf)
        return _clean(float(raw) / (10 ** (-e))) if e < 0 else _clean(float(raw) * (10**e))
    return raw
