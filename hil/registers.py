"""Register-map schema and engineering-value encode/decode for Modbus devices.

A *register map* is a YAML file (see ``hil/maps/*.yaml``) with one entry per
point::

    device: inverter                 # short device name
    description: ...                 # optional free text
    sunspec_na: true                 # optional: decode SunSpec "not implemented"
                                     #   sentinels (0xFFFF, 0x8000, ...) as None
    points:
      - name: WMaxLimPct             # unique identifier
        address: 40127               # protocol address, 0-based as on the wire
        type: uint16                 # uint16|int16|uint32|int32|acc32|float32|string|sunssf
        sf: WMaxLimPct_SF            # SunSpec scale-factor point (value = raw * 10**sf)
        # scale: 0.1                 # ... or a plain float multiplier (value = raw * scale)
        unit: "%"
        access: rw                   # r | rw
        min: 0                       # optional, engineering units
        max: 100
        default: 100                 # optional initial value (engineering units)
        doc: Active power limit in % of WMax

Multi-register values are big-endian: the most significant word comes first
(SunSpec and "ABCD" convention); strings are ``length`` registers of bytes,
two per register, high byte first, padded with NUL.

This module is deliberately free of any server or transport concern: the
functions :func:`encode` / :func:`decode` work on plain ``list[int]`` register
values, and the small async helpers :func:`read_points` / :func:`write_point`
only need an object with pymodbus-client-like ``read_holding_registers`` /
``write_registers`` coroutines.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "INT_RANGES",
    "TYPE_SIZES",
    "EncodeError",
    "ModbusReadError",
    "ModbusWriteError",
    "Point",
    "PointType",
    "RegisterMap",
    "RegisterMapError",
    "decode",
    "decode_registers",
    "encode",
    "is_not_implemented",
    "load_map",
    "parse_map",
    "raw_to_registers",
    "read_points",
    "registers_to_raw",
    "write_point",
    "write_points",
]

PointType = Literal["uint16", "int16", "uint32", "int32", "acc32", "float32", "string", "sunssf"]
Access = Literal["r", "rw"]

#: Number of registers of each fixed-size type (``string`` uses ``length``).
TYPE_SIZES: dict[str, int] = {
    "uint16": 1,
    "int16": 1,
    "sunssf": 1,
    "uint32": 2,
    "int32": 2,
    "acc32": 2,
    "float32": 2,
}

INT_RANGES: dict[str, tuple[int, int]] = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "sunssf": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFFFFFF),
    "acc32": (0, 0xFFFFFFFF),
    "int32": (-0x80000000, 0x7FFFFFFF),
}

#: SunSpec "not implemented" raw values (acc32 uses 0, which is also a valid
#: reading, so it is never mapped to None).
_NOT_IMPLEMENTED: dict[str, int] = {
    "uint16": 0xFFFF,
    "int16": -0x8000,
    "sunssf": -0x8000,
    "uint32": 0xFFFFFFFF,
    "int32": -0x80000000,
}

#: Largest register count of one Modbus read (FC3/FC4 allow 125).
MAX_READ = 125


class RegisterMapError(ValueError):
    """A register-map file (or dict) is invalid; the message names file, entry and field."""


class EncodeError(ValueError):
    """An engineering value cannot be represented by the point's type/scale."""


class ModbusReadError(RuntimeError):
    """A read returned a Modbus exception (``exception_code``) or failed."""

    def __init__(self, message: str, exception_code: int | None = None):
        super().__init__(message)
        self.exception_code = exception_code


class ModbusWriteError(RuntimeError):
    """A write returned a Modbus exception (``exception_code``) or failed."""

    def __init__(self, message: str, exception_code: int | None = None):
        super().__init__(message)
        self.exception_code = exception_code


# --------------------------------------------------------------------------- #
# Schema
# --------------------------------------------------------------------------- #
class Point(BaseModel):
    """One point of a register map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
    address: int = Field(ge=0, le=0xFFFF)
    type: PointType
    length: int | None = Field(default=None, ge=1, le=MAX_READ)
    scale: float | None = None
    sf: str | None = None
    unit: str = ""
    access: Access = "r"
    min: float | None = None
    max: float | None = None
    default: int | float | str | None = None
    doc: str = ""

    @field_validator("scale")
    @classmethod
    def _scale_nonzero(cls, v: float | None) -> float | None:
        if v is not None and (v == 0 or not math.isfinite(v)):
            raise ValueError("scale must be a finite, non-zero number")
        return v

    @model_validator(mode="after")
    def _check(self) -> Point:
        if self.type == "string":
            if self.length is None:
                raise ValueError("field 'length': required for type string")
            if self.scale is not None or self.sf is not None:
                raise ValueError("field 'scale'/'sf': not allowed for type string")
            if self.min is not None or self.max is not None:
                raise ValueError("field 'min'/'max': not allowed for type string")
            if self.default is not None and not isinstance(self.default, str):
                raise ValueError("field 'default': must be a string for type string")
            if isinstance(self.default, str) and len(self.default.encode("utf-8")) > 2 * self.length:
                raise ValueError(f"field 'default': longer than {2 * self.length} bytes")
        else:
            if self.length is not None:
                raise ValueError(f"field 'length': only allowed for type string, not {self.type}")
            if isinstance(self.default, str):
                raise ValueError(f"field 'default': must be a number for type {self.type}")
        if self.scale is not None and self.sf is not None:
            raise ValueError("field 'scale'/'sf': give either scale or sf, not both")
        if self.type == "sunssf" and (self.scale is not None or self.sf is not None):
            raise ValueError("field 'scale'/'sf': not allowed for a sunssf point")
        if self.type == "sunssf" and self.default is not None and not float(self.default).is_integer():
            raise ValueError("field 'default': a scale factor must be an integer exponent")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field 'min': {self.min} is greater than max {self.max}")
        if isinstance(self.default, (int, float)):
            if self.min is not None and self.default < self.min:
                raise ValueError(f"field 'default': {self.default} is below min {self.min}")
            if self.max is not None and self.default > self.max:
                raise ValueError(f"field 'default': {self.default} is above max {self.max}")
        if self.address + self.size > 0x10000:
            raise ValueError("field 'address': point extends past register 65535")
        return self

    # -- derived ------------------------------------------------------------ #
    @property
    def size(self) -> int:
        """Number of registers."""
        if self.type == "string":
            return int(self.length or 0)
        return TYPE_SIZES[self.type]

    @property
    def end(self) -> int:
        """First address after the point (exclusive)."""
        return self.address + self.size

    @property
    def writable(self) -> bool:
        return self.access == "rw"

    def in_range(self, value: float) -> bool:
        """True when ``value`` (engineering units) is within min/max."""
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)


class RegisterMap(BaseModel):
    """A device register map: a list of non-overlapping points."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1)
    description: str = ""
    sunspec_na: bool = False
    points: list[Point] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_points(self) -> RegisterMap:
        names: dict[str, int] = {}
        for i, p in enumerate(self.points):
            if p.name in names:
                raise ValueError(
                    f"points[{i}] '{p.name}': field 'name': duplicate of points[{names[p.name]}]"
                )
            names[p.name] = i
        for i, p in enumerate(self.points):
            if p.sf is not None:
                j = names.get(p.sf)
                if j is None:
                    raise ValueError(
                        f"points[{i}] '{p.name}': field 'sf': unknown scale-factor point '{p.sf}'"
                    )
                if self.points[j].type != "sunssf":
                    raise ValueError(
                        f"points[{i}] '{p.name}': field 'sf': point '{p.sf}' is of type "
                        f"{self.points[j].type}, not sunssf"
                    )
        order = sorted(range(len(self.points)), key=lambda k: self.points[k].address)
        for a, b in zip(order, order[1:]):
            pa, pb = self.points[a], self.points[b]
            if pb.address < pa.end:
                raise ValueError(
                    f"points[{b}] '{pb.name}': field 'address': {pb.address} overlaps "
                    f"points[{a}] '{pa.name}' ({pa.address}..{pa.end - 1})"
                )
        return self

    _by_name: dict[str, Point] = PrivateAttr(default_factory=dict)
    _by_addr: dict[int, Point] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any) -> None:
        self._by_name = {p.name: p for p in self.points}
        self._by_addr = {}
        for p in self.points:
            for a in range(p.address, p.end):
                self._by_addr[a] = p

    # -- lookup ------------------------------------------------------------- #
    def __getitem__(self, name: str) -> Point:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.device}: no point named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.points)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.points]

    def get(self, name: str) -> Point | None:
        return self._by_name.get(name)

    def point_at(self, address: int) -> Point | None:
        """The point that covers ``address`` (any of its registers), or None."""
        return self._by_addr.get(address)

    def sf_point(self, point: Point | str) -> Point | None:
        p = self[point] if isinstance(point, str) else point
        return self._by_name[p.sf] if p.sf else None

    def blocks(
        self, points: Iterable[Point | str] | None = None, max_count: int = MAX_READ
    ) -> list[tuple[int, int]]:
        """Contiguous ``(start, count)`` runs covering ``points`` (default: all).

        Runs never span an unmapped register and never exceed ``max_count``
        registers (a point is never split unless it is longer than
        ``max_count``, which a valid map cannot have).
        """
        sel = (
            self.points
            if points is None
            else [self[p] if isinstance(p, str) else p for p in points]
        )
        sel = sorted({p.name: p for p in sel}.values(), key=lambda p: p.address)
        runs: list[tuple[int, int]] = []
        start = end = None
        for p in sel:
            if start is not None and end is not None and p.address == end and p.end - start <= max_count:
                end = p.end
                continue
            if start is not None and end is not None:
                runs.append((start, end - start))
            start, end = p.address, p.end
        if start is not None and end is not None:
            runs.append((start, end - start))
        return runs


def _format_validation_error(exc: ValidationError, raw: Any) -> list[str]:
    """Turn pydantic errors into "points[i] 'name': field 'f': message" lines."""
    lines: list[str] = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        msg = err.get("msg", "")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if len(loc) >= 2 and loc[0] == "points" and isinstance(loc[1], int):
            idx = loc[1]
            name = "?"
            if isinstance(raw, dict) and isinstance(raw.get("points"), list):
                pts = raw["points"]
                if 0 <= idx < len(pts) and isinstance(pts[idx], dict):
                    name = str(pts[idx].get("name", "?"))
            field = ".".join(str(x) for x in loc[2:])
            where = f"points[{idx}] '{name}'"
            if field:
                lines.append(f"{where}: field '{field}': {msg}")
            elif msg.startswith("field "):
                lines.append(f"{where}: {msg}")
            else:
                lines.append(f"{where}: {msg}")
        elif loc:
            lines.append(f"field '{'.'.join(str(x) for x in loc)}': {msg}")
        else:
            lines.append(msg)
    return lines


def parse_map(data: Any, source: str = "<dict>") -> RegisterMap:
    """Validate an already-parsed map (dict); errors name ``source``, entry and field."""
    if not isinstance(data, dict):
        raise RegisterMapError(f"{source}: top level must be a mapping with 'device' and 'points'")
    try:
        return RegisterMap.model_validate(data)
    except ValidationError as exc:
        lines = _format_validation_error(exc, data)
        raise RegisterMapError(f"{source}: " + f"\n{source}: ".join(lines)) from None


def load_map(path: str | Path) -> RegisterMap:
    """Load and validate a register-map YAML file.

    Raises :class:`RegisterMapError` whose message names the file, the entry
    (``points[i] 'name'``) and the field.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegisterMapError(f"{p}: cannot read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegisterMapError(f"{p}: invalid YAML: {exc}") from exc
    return parse_map(data, str(p))


# --------------------------------------------------------------------------- #
# Raw <-> registers
# --------------------------------------------------------------------------- #
def raw_to_registers(type_: str, raw: int | float | str, length: int | None = None) -> list[int]:
    """Convert a raw (unscaled) value of ``type_`` to big-endian registers."""
    if type_ == "string":
        if length is None:
            raise EncodeError("string needs a length")
        data = str(raw).encode("utf-8")
        if len(data) > 2 * length:
            raise EncodeError(f"string {raw!r} longer than {2 * length} bytes")
        data = data.ljust(2 * length, b"\x00")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if type_ == "float32":
        f = float(raw)
        try:
            data = struct.pack(">f", f)
        except OverflowError as exc:
            raise EncodeError(f"{raw!r} does not fit float32") from exc
        return [int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")]
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
    if TYPE_SIZES[type_] == 1:
        return [raw & 0xFFFF]
    u = raw & 0xFFFFFFFF
    return [(u >> 16) & 0xFFFF, u & 0xFFFF]


def registers_to_raw(type_: str, registers: Sequence[int]) -> int | float | str:
    """Convert big-endian registers to the raw (unscaled) value of ``type_``."""
    regs = [int(r) & 0xFFFF for r in registers]
    if type_ == "string":
        data = b"".join(r.to_bytes(2, "big") for r in regs)
        return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace").rstrip()
    n = 2 if type_ == "float32" else TYPE_SIZES.get(type_, 0)
    if n == 0:
        raise ValueError(f"unknown type {type_!r}")
    if len(regs) < n:
        raise ValueError(f"{type_} needs {n} registers, got {len(regs)}")
    if type_ == "float32":
        return struct.unpack(">f", regs[0].to_bytes(2, "big") + regs[1].to_bytes(2, "big"))[0]
    if n == 1:
        v = regs[0]
        if type_ in ("int16", "sunssf") and v >= 0x8000:
            v -= 0x10000
        return v
    v = (regs[0] << 16) | regs[1]
    if type_ == "int32" and v >= 0x80000000:
        v -= 0x100000000
    return v


def is_not_implemented(type_: str, raw: int | float | str) -> bool:
    """True when ``raw`` is the SunSpec "not implemented" value of ``type_``."""
    if type_ == "float32":
        return isinstance(raw, float) and math.isnan(raw)
    if type_ == "string":
        return raw == ""
    return _NOT_IMPLEMENTED.get(type_) == raw


# --------------------------------------------------------------------------- #
# Engineering value <-> registers
# --------------------------------------------------------------------------- #
def _clean(x: float) -> float:
    """Remove binary noise such as 0.30000000000000004 from a scaled value."""
    if not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.12g}")


def _multiplier(point: Point, sf: int | None) -> tuple[float | None, int | None]:
    """(scale, sf) actually applying to ``point``; raises when sf is needed but missing."""
    if point.scale is not None:
        return point.scale, None
    if point.sf is not None:
        if sf is None:
            raise EncodeError(f"point {point.name!r} needs the value of scale factor {point.sf!r}")
        return None, int(sf)
    return None, None


def encode(point: Point, value: int | float | str, sf: int | None = None) -> list[int]:
    """Encode an engineering value of ``point`` to registers.

    ``sf`` is the current value of the point's SunSpec scale factor (required
    when the point has ``sf``).  Numeric values are rounded to the nearest raw
    integer; values that do not fit the type raise :class:`EncodeError`.
    """
    if point.type == "string":
        if not isinstance(value, str):
            raise EncodeError(f"point {point.name!r} is a string, got {value!r}")
        return raw_to_registers("string", value, point.length)
    if isinstance(value, str):
        raise EncodeError(f"point {point.name!r} is numeric, got {value!r}")
    v = float(value)
    if not math.isfinite(v) and point.type != "float32":
        raise EncodeError(f"point {point.name!r}: {value!r} is not finite")
    scale, exp = _multiplier(point, sf)
    if point.type == "float32":
        if scale is not None:
            v = v / scale
        elif exp is not None:
            v = v / (10.0**exp)
        return raw_to_registers("float32", v)
    if scale is not None:
        raw_f = v / scale
    elif exp is not None:
        raw_f = v * (10 ** (-exp)) if exp <= 0 else v / (10**exp)
    else:
        raw_f = v
    raw = int(round(raw_f))
    try:
        return raw_to_registers(point.type, raw)
    except EncodeError as exc:
        raise EncodeError(f"point {point.name!r}: value {value!r}: {exc}") from None


def decode(
    point: Point,
    registers: Sequence[int],
    sf: int | None = None,
    *,
    na_as_none: bool = False,
) -> int | float | str | None:
    """Decode registers of ``point`` to its engineering value.

    ``sf`` is the value of the point's SunSpec scale factor (required when the
    point has ``sf``; ``None`` then yields ``None``).  With ``na_as_none`` the
    SunSpec "not implemented" sentinels decode to ``None``.  Integer points
    without scale decode to ``int``; scaled points to ``float``.
    """
    if len(registers) < point.size:
        raise ValueError(f"point {point.name!r} needs {point.size} registers, got {len(registers)}")
    raw = registers_to_raw(point.type, registers[: point.size])
    if na_as_none and is_not_implemented(point.type, raw):
        return None
    if point.type == "string" or point.type == "sunssf":
        return raw
    if point.scale is not None:
        return _clean(float(raw) * point.scale)
    if point.sf is not None:
        if sf is None:
            return None
        e = int(sf)
        if e < 0:
            return _clean(float(raw) / (10 ** (-e)))
        return _clean(float(raw) * (10**e))
    return raw


def decode_registers(
    regmap: RegisterMap,
    start: int,
    registers: Sequence[int],
    sf_values: Mapping[str, int | None] | None = None,
    *,
    names: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Decode every point lying entirely within ``registers`` read at ``start``.

    Scale factors are taken from the same block when present there, else from
    ``sf_values``.  ``names`` restricts the result to these points.
    """
    end = start + len(registers)
    inside = [p for p in regmap.points if p.address >= start and p.end <= end]
    sfs: dict[str, int | None] = dict(sf_values or {})
    for p in inside:
        if p.type == "sunssf":
            v = decode(p, registers[p.address - start : p.end - start], na_as_none=True)
            sfs[p.name] = v  # type: ignore[assignment]
    wanted = set(names) if names is not None else None
    out: dict[str, Any] = {}
    for p in inside:
        if wanted is not None and p.name not in wanted:
            continue
        out[p.name] = decode(
            p,
            registers[p.address - start : p.end - start],
            sfs.get(p.sf) if p.sf else None,
            na_as_none=regmap.sunspec_na,
        )
    return out


# --------------------------------------------------------------------------- #
# Client helpers (duck-typed pymodbus async client)
# --------------------------------------------------------------------------- #
async def _read(client: Any, address: int, count: int, device_id: int) -> list[int]:
    rr = await client.read_holding_registers(address, count=count, device_id=device_id)
    if rr is None or rr.isError():
        code = getattr(rr, "exception_code", None)
        raise ModbusReadError(
            f"read {address}+{count} (device {device_id}) failed: {rr}", exception_code=code
        )
    return list(rr.registers)


async def read_points(
    client: Any,
    regmap: RegisterMap,
    names: Iterable[str] | None = None,
    *,
    device_id: int = 1,
    max_count: int = MAX_READ,
) -> dict[str, Any]:
    """Read and decode points (default: all) with as few reads as possible.

    The scale-factor points the requested points depend on are read too.
    Raises :class:`ModbusReadError` on an exception response.
    """
    wanted = list(names) if names is not None else regmap.names
    pts = [regmap[n] for n in wanted]
    needed = {p.name: p for p in pts}
    for p in pts:
        if p.sf:
            needed[p.sf] = regmap[p.sf]
    sfs: dict[str, int | None] = {}
    regs_by_run: list[tuple[int, list[int]]] = []
    for start, count in regmap.blocks(needed.values(), max_count=max_count):
        regs_by_run.append((start, await _read(client, start, count, device_id)))
    for start, regs in regs_by_run:
        for p in regmap.points:
            if p.type == "sunssf" and p.name in needed and start <= p.address < start + len(regs):
                sfs[p.name] = decode(p, regs[p.address - start : p.end - start], na_as_none=True)  # type: ignore[assignment]
    out: dict[str, Any] = {}
    for start, regs in regs_by_run:
        out.update(decode_registers(regmap, start, regs, sfs, names=wanted))
    return {n: out.get(n) for n in wanted}


async def write_point(
    client: Any,
    regmap: RegisterMap,
    name: str,
    value: int | float | str,
    *,
    device_id: int = 1,
    sf: int | None = None,
) -> list[int]:
    """Encode and write one point (FC16). Reads its scale factor first if needed.

    Returns the registers written. Raises :class:`ModbusWriteError` on an
    exception response (``exception_code`` holds the Modbus code).
    """
    p = regmap[name]
    if p.sf and sf is None:
        sfp = regmap[p.sf]
        v = decode(sfp, await _read(client, sfp.address, 1, device_id), na_as_none=True)
        if v is None:
            raise ModbusWriteError(f"scale factor {p.sf} of {name} is not implemented")
        sf = int(v)
    regs = encode(p, value, sf)
    wr = await client.write_registers(p.address, regs, device_id=device_id)
    if wr is None or wr.isError():
        code = getattr(wr, "exception_code", None)
        raise ModbusWriteError(f"write {name}={value!r} at {p.address} failed: {wr}", exception_code=code)
    return regs


async def write_points(
    client: Any,
    regmap: RegisterMap,
    values: Mapping[str, int | float | str],
    *,
    device_id: int = 1,
) -> None:
    """Write several points, one request each, in the given order."""
    for name, value in values.items():
        await write_point(client, regmap, name, value, device_id=device_id)
