"""Register maps: the YAML schema of a device's points (pydantic), loading with clear errors, and lookups.

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

How points are encoded on the wire is :mod:`hil.codec`; how a device is read is
:mod:`hil.reading`.  This module is only the map: its schema, loading and lookups.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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

__all__ = ["MAX_READ", "TYPE_SIZES", "Point", "PointType", "RegisterMap", "RegisterMapError", "load_map", "parse_map"]

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

#: Largest register count of one Modbus read (FC3/FC4 allow 125).
MAX_READ = 125


class RegisterMapError(ValueError):
    """A register-map file (or dict) is invalid; the message names file, entry and field."""


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
        """True for a point the master may write (access rw)."""
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
        """The point names, in map order."""
        return [p.name for p in self.points]

    def get(self, name: str) -> Point | None:
        """The point named `name`, or None."""
        return self._by_name.get(name)

    def point_at(self, address: int) -> Point | None:
        """The point that covers ``address`` (any of its registers), or None."""
        return self._by_addr.get(address)

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
