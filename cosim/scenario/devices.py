"""The scenario's `devices:` and `grid_server:` blocks: field devices over Modbus-TCP and the grid's own Modbus server.

Device kinds come from the kind registry, `hil/kinds/`: every module there (found with
`pkgutil.iter_modules` on the folder) is one kind, named after its file. Each declares its
scenario keys in a module-level `SCHEMA` dict literal, which this module reads from the
file with `ast.literal_eval` — without importing `hil` (so loading a scenario does not pull
in pymodbus or mosaik). `SCHEMA` holds:

- `map`: the shipped register map in `hil/maps/` (None: the scenario must give `map:`);
- `stub`: the firmware stub module that emulates the kind (None: `emulate: true` is an error);
- `keys`: the kind's own device keys, `{key: {type, doc}}` (other kinds may not set them);
- `limits`: its `limits:` keys, `{key: {type, doc, point}}` (the guard clamps `point` to the
  range) or `{key: {type, doc, rate_of: [points]}}` (a rate limit of those points).

Types: `str`, `int`, `positive` (a number > 0), `names` (a list of strings), `range`
([low, high] numbers) and `int_range` ([low, high] integers).
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Field, create_model, field_validator, model_validator

from cosim.scenario.base import Seconds, Strict, Window

__all__ = ["DEVICE_KINDS", "KINDS", "Device", "DeviceLimits", "GridServer", "KindSchema", "ModbusTarget",
           "FLOOD_MAX_RATE", "FLOOD_MAX_S", "WireAttack", "WireDelay", "WireDrop", "WireFDI", "WireFlood", "WireInjection",
           "WireReplay", "WireTamper"]


# -- the kind registry, read without importing hil ------------------------------------------------

def _ordered_pair(v: tuple[float, float] | None) -> tuple[float, float] | None:
    if v is not None and v[0] > v[1]:
        raise ValueError(f"expected [low, high] with low <= high, got [{v[0]}, {v[1]}]")
    return v


_TYPES: dict[str, tuple[Any, dict[str, Any]]] = {
    "str": (str, {}),
    "int": (int, {}),
    "positive": (float, {"gt": 0}),
    "names": (list[str], {}),
    "range": (Annotated[tuple[float, float], AfterValidator(_ordered_pair)], {}),
    "int_range": (Annotated[tuple[int, int], AfterValidator(_ordered_pair)], {}),
}


@dataclass(frozen=True)
class KindSchema:
    """What the scenario schema knows of one device kind (its module's `SCHEMA`)."""

    name: str
    module: Path
    map: str | None
    stub: str | None
    keys: dict[str, dict[str, Any]]
    limits: dict[str, dict[str, Any]]


def kinds_dir() -> Path:
    """The folder of the kind modules, `hil/kinds/` (found without importing hil)."""
    spec = importlib.util.find_spec("hil")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package hil not found: the device kinds live in hil/kinds/")
    return Path(list(spec.submodule_search_locations)[0]) / "kinds"


def _literal_schema(path: Path) -> dict[str, Any]:
    """The module-level `SCHEMA = {...}` literal of a kind module."""
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SCHEMA" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"{path}: a device kind module needs a literal SCHEMA = {{...}}")


def _discover(folder: Path) -> dict[str, KindSchema]:
    kinds = {}
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        path = folder / f"{info.name}.py"
        s = _literal_schema(path)
        unknown = set(s) - {"map", "stub", "keys", "limits"}
        if unknown:
            raise RuntimeError(f"{path}: unknown SCHEMA entries {sorted(unknown)}")
        kinds[info.name] = KindSchema(info.name, path, s.get("map"), s.get("stub"), dict(s.get("keys", {})),
                                      dict(s.get("limits", {})))
    return kinds


def _union(kinds: dict[str, KindSchema], what: str) -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
    """Key -> (declaration, owning kinds) over every kind's `keys` or `limits`; one type per key."""
    out: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
    for k in kinds.values():
        for key, decl in getattr(k, what).items():
            if decl.get("type") not in _TYPES:
                raise RuntimeError(f"{k.module}: {what}.{key}: type must be one of {', '.join(_TYPES)}")
            if key in out and out[key][0]["type"] != decl["type"]:
                raise RuntimeError(f"{k.module}: {what}.{key} has type {decl['type']}, another kind declares "
                                   f"{out[key][0]['type']}")
            out[key] = (out.get(key, (decl, ()))[0], out.get(key, (decl, ()))[1] + (k.name,))
    return out


def _fields(union: dict[str, tuple[dict[str, Any], tuple[str, ...]]]) -> dict[str, Any]:
    fields = {}
    for key, (decl, owners) in union.items():
        annotation, constraints = _TYPES[decl["type"]]
        doc = f"{', '.join(owners)}: {decl.get('doc', '')}".rstrip(": ")
        fields[key] = (annotation | None, Field(default=None, description=doc, **constraints))
    return fields


def owners_text(owners: tuple[str, ...]) -> str:
    """'inverter' or 'capbank or regulator'."""
    return " or ".join(owners)


#: Every device kind, by name (file order of hil/kinds/).
KINDS: dict[str, KindSchema] = _discover(kinds_dir())
DEVICE_KINDS: tuple[str, ...] = tuple(KINDS)
#: Kind-specific device keys and limits: key -> (declaration, kinds that have it).
KIND_KEYS = _union(KINDS, "keys")
LIMIT_KEYS = _union(KINDS, "limits")


# -- the blocks ------------------------------------------------------------------------------------

_TCP_KEYS, _RTU_KEYS = ("host", "port"), ("serial", "baudrate", "parity", "stopbits")


class ModbusTarget(Strict):
    """Where a device answers: Modbus-TCP at host:port (loopback unless the device allows remote hosts), or Modbus RTU
    on a serial line (`transport: rtu`)."""

    transport: Literal["tcp", "rtu", "iec104"] = Field(default="tcp", description="tcp (Modbus-TCP), rtu (Modbus RTU "
                                                       "on a serial line) or iec104 (IEC 60870-5-104 at host:port)")
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535,
                             description="required for a real device; an emulated one without it gets a free port per run")
    serial: str | None = Field(default=None, description="rtu: the serial device, e.g. /dev/ttyUSB0; required for a "
                                                         "real device, an emulated one gets a pseudo-terminal per run")
    baudrate: int = Field(default=19200, gt=0, description="rtu: bits per second")
    parity: Literal["N", "E", "O"] = Field(default="N", description="rtu: none, even or odd")
    stopbits: Literal[1, 2] = Field(default=1, description="rtu: stop bits (8 data bits always)")
    unit: int = Field(default=1, ge=0, le=247)
    common_address: int = Field(default=1, ge=1, le=65534, description="iec104: the station's common address")
    timeout: Seconds = 0.5

    @field_validator("timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a positive duration such as 0.5 or 500ms")
        return v

    @model_validator(mode="after")
    def _transport_keys(self) -> "ModbusTarget":
        if self.transport == "iec104":
            given = [k for k in (*_RTU_KEYS, "unit") if k in self.model_fields_set]
            if given:
                raise ValueError(f"modbus.{given[0]} is not a key of transport: iec104 (it has host, port, "
                                 "common_address and timeout)")
            if importlib.util.find_spec("c104") is None:
                raise ValueError("transport: iec104 needs the c104 package: pip install -e '.[iec104]'")
            return self
        if "common_address" in self.model_fields_set:
            raise ValueError("modbus.common_address is only for transport: iec104; a Modbus device has unit")
        alien = _TCP_KEYS if self.transport == "rtu" else _RTU_KEYS
        given = [k for k in alien if k in self.model_fields_set]
        if given and self.transport == "rtu":
            raise ValueError(f"modbus.{given[0]} is meaningless with transport: rtu (the device is on the serial line "
                             "modbus.serial); remove it")
        if given:
            raise ValueError(f"modbus.{given[0]} is only for transport: rtu (a serial line); this device speaks "
                             "Modbus-TCP at modbus.host and modbus.port")
        return self


DeviceLimits = create_model(
    "DeviceLimits", __base__=Strict, __module__=__name__,
    __doc__="What the safety guard lets controllers write: ranges of setpoints and how fast they may move "
            "(the keys each kind declares).",
    **_fields(LIMIT_KEYS))


class _WireAttack(Window):
    """An attack on one device's Modbus traffic (a proxy in the path), from `at` for `duration`."""


class WireFDI(_WireAttack):
    """Read responses tampered in flight: the point's value is seen as value * scale + bias."""

    kind: Literal["fdi"]
    point: str
    scale: float = 1.0
    bias: float = 0.0


class WireReplay(_WireAttack):
    """Read responses replaced by the ones recorded over `window` before the attack (looped); with `points`, only
    those points' registers are replayed and the rest of each answer is live."""

    kind: Literal["replay"]
    window: Seconds
    points: list[str] | None = None


class WireDelay(_WireAttack):
    """Every frame to and from the device held `seconds` (wall clock) in flight."""

    kind: Literal["delay"]
    seconds: float = Field(gt=0)


class WireDrop(_WireAttack):
    """Requests to the device lost with probability `rate`."""

    kind: Literal["drop"]
    rate: float = Field(default=1.0, ge=0, le=1)


class WireInjection(_WireAttack):
    """A rogue Modbus client writes `value` to the point directly (bypassing the guard), once per step."""

    kind: Literal["command_injection"]
    point: str
    value: float


class WireTamper(_WireAttack):
    """The bridge's writes to the point are rewritten in flight to value * scale + offset."""

    kind: Literal["command_tamper"]
    point: str
    scale: float = 1.0
    offset: float = 0.0


FLOOD_MAX_RATE = 2000.0  # requests per second a flood may send
FLOOD_MAX_S = 600.0  # the longest flood


class WireFlood(_WireAttack):
    """A loopback client sends read requests to the device (or the grid server) at `rate_per_s` (scheduled as a
    `flood` event; not a key of the `wire:` list)."""

    kind: Literal["flood"]
    rate_per_s: float = Field(gt=0, le=FLOOD_MAX_RATE)

    @model_validator(mode="after")
    def _bounded(self) -> "WireFlood":
        if self.duration > FLOOD_MAX_S:
            raise ValueError(f"a flood lasts at most {FLOOD_MAX_S:g} s")
        return self


WireAttack = Annotated[Union[WireFDI, WireReplay, WireDelay, WireDrop, WireInjection, WireTamper],
                       Field(discriminator="kind")]


class _DeviceKeys(Strict):
    """The keys every device kind has; `Device` adds the kinds' own keys."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    kind: Literal[DEVICE_KINDS]  # type: ignore[valid-type]
    bus: int | None = None
    map: str | None = Field(default=None, description="register map YAML, relative to the scenario "
                                                       "(default: the kind's shipped map)")
    modbus: ModbusTarget
    emulate: bool = False
    watchdog: Seconds | None = Field(default=None, gt=0, description="stub fail-safe after this long without a request")
    stub_args: dict[str, Union[bool, int, float, str]] = Field(default_factory=dict,
                                                               description="extra stub options, e.g. {ramp_rate: 50}")
    limits: DeviceLimits = Field(default_factory=DeviceLimits)  # type: ignore[valid-type]
    writable: list[str] | None = Field(default=None, description="allow-list of writable points (default per kind)")
    allow_remote: bool = False
    wire: list[WireAttack] = Field(default_factory=list, description="attacks on this device's Modbus traffic")

    @model_validator(mode="after")
    def _kind_keys(self) -> "_DeviceKeys":
        k = KINDS[self.kind]
        if k.map is None and self.map is None:
            raise ValueError(f"kind {self.kind} needs map: <register map YAML>")
        if k.stub is None and self.emulate:
            raise ValueError(f"kind {self.kind} has no firmware stub to emulate it; set emulate: false")
        if self.modbus.transport != "rtu" and self.modbus.port is None and not self.emulate:
            raise ValueError("modbus.port is required for a real device (emulate: false); only an emulated device "
                             "may leave it out (its stub then gets a free port for each run)")
        if self.modbus.transport == "rtu" and self.modbus.serial is None and not self.emulate:
            raise ValueError("modbus.serial is required for a real device on Modbus RTU (emulate: false), e.g. "
                             "serial: /dev/ttyUSB0; only an emulated device may leave it out (it then gets a "
                             "pseudo-terminal pair for each run)")
        if self.modbus.transport != "tcp" and self.wire:
            raise ValueError(f"wire attacks need Modbus-TCP (a proxy in the path); this device has transport: "
                             f"{self.modbus.transport}")
        for key, (_, owners) in KIND_KEYS.items():
            if getattr(self, key) is not None and self.kind not in owners:
                raise ValueError(f"{key} is only for kind {owners_text(owners)}, not {self.kind}")
        return self


Device = create_model(
    "Device", __base__=_DeviceKeys, __module__=__name__,
    __doc__="A field device in the loop over Modbus-TCP: a real one, or a firmware stub the testbed starts (`emulate`).",
    **_fields(KIND_KEYS))


class GridServer(Strict):
    """A server that exposes the simulated grid to an external SCADA, RTU or PLC: Modbus-TCP, or IEC 60870-5-104."""

    protocol: Literal["modbus", "iec104"] = "modbus"
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=247)
    common_address: int = Field(default=1, ge=1, le=65534, description="IEC 104 common address of the station")
    commands: bool = Field(default=True, description="accept setpoint writes (they pass the safety guard); "
                                                     "iec104: every command, breakers too")
    breakers: list[int] = Field(default_factory=list, description="lines whose breaker a SCADA may open and close "
                                                                  "(coil writes, IEC 104 breaker commands; the allow-list)")
    setpoints: list[str] | None = Field(default=None, description="generator setpoints a SCADA may write "
                                        "(`<generator>.p_limit_mw`, `<generator>.q_set_mvar`; the allow-list; "
                                        "default every generator's both)")
    allow_remote: bool = False

    @model_validator(mode="before")
    @classmethod
    def _iec104_port(cls, data: Any) -> Any:
        """IEC 104 listens on its registered port 2404 unless the scenario says otherwise."""
        if isinstance(data, dict) and data.get("protocol") == "iec104" and "port" not in data:
            return {**data, "port": 2404}
        return data

    @model_validator(mode="after")
    def _protocol_keys(self) -> "GridServer":
        own, other = ("unit", "common_address") if self.protocol == "modbus" else ("common_address", "unit")
        if other in self.model_fields_set:
            raise ValueError(f"{other} is not a key of protocol {self.protocol} (it has {own})")
        if self.protocol == "iec104" and importlib.util.find_spec("c104") is None:
            raise ValueError("protocol iec104 needs the c104 package: pip install -e '.[iec104]'")
        return self
