"""Minimal SunSpec Modbus scanner.

:func:`scan` looks for the ``SunS`` marker (0x5375 0x6E53) at the base
addresses 40000, 0 and 50000 (in that order, like the SunSpec reference
client), walks the model chain ``[ID, L, body(L registers)]...`` until the end
model (ID 0xFFFF, L 0) and decodes the points of the models it knows
(1 common, 103 three-phase inverter, 123 immediate controls) with their
scale factors.  Unknown models are returned with their raw registers.

Point layouts are the official ones (sunspec/models ``json/model_1.json``,
``model_103.json``, ``model_123.json``); offsets count from the first body
register (the register after ``L``).

Reads go through :mod:`hil.reading`: the client is a :class:`hil.client.DeviceClient`
or any pymodbus-style async client (wrapped by :func:`hil.client.as_reader`), and
the known models are decoded by :func:`hil.reading.decode_registers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hil.client import DeviceError, as_reader
from hil.reading import decode_registers
from hil.registers import MAX_READ, Point, RegisterMap

__all__ = [
    "BASE_ADDRESSES",
    "END_MODEL_ID",
    "MODEL_DEFS",
    "MODEL_LENGTHS",
    "SUNS_MARKER",
    "SunSpecError",
    "SunSpecModel",
    "model_map",
    "scan",
]

#: "SunS" as two registers.
SUNS_MARKER = (0x5375, 0x6E53)
#: ID of the end-of-chain model.
END_MODEL_ID = 0xFFFF
#: Base addresses tried by :func:`scan`, in order.
BASE_ADDRESSES = (40000, 0, 50000)

# (name, type, size, sf, units, access).  SunSpec enum16/bitfield16/pad are
# uint16 on the wire, bitfield32 is uint32.
_PointDef = tuple[str, str, int, str | None, str, str]

MODEL_DEFS: dict[int, tuple[str, list[_PointDef]]] = {
    1: (
        "common",
        [
            ("Mn", "string", 16, None, "", "r"),
            ("Md", "string", 16, None, "", "r"),
            ("Opt", "string", 8, None, "", "r"),
            ("Vr", "string", 8, None, "", "r"),
            ("SN", "string", 16, None, "", "r"),
            ("DA", "uint16", 1, None, "", "rw"),
            ("Pad", "uint16", 1, None, "", "r"),
        ],
    ),
    103: (
        "inverter",
        [
            ("A", "uint16", 1, "A_SF", "A", "r"),
            ("AphA", "uint16", 1, "A_SF", "A", "r"),
            ("AphB", "uint16", 1, "A_SF", "A", "r"),
            ("AphC", "uint16", 1, "A_SF", "A", "r"),
            ("A_SF", "sunssf", 1, None, "", "r"),
            ("PPVphAB", "uint16", 1, "V_SF", "V", "r"),
            ("PPVphBC", "uint16", 1, "V_SF", "V", "r"),
            ("PPVphCA", "uint16", 1, "V_SF", "V", "r"),
            ("PhVphA", "uint16", 1, "V_SF", "V", "r"),
            ("PhVphB", "uint16", 1, "V_SF", "V", "r"),
            ("PhVphC", "uint16", 1, "V_SF", "V", "r"),
            ("V_SF", "sunssf", 1, None, "", "r"),
            ("W", "int16", 1, "W_SF", "W", "r"),
            ("W_SF", "sunssf", 1, None, "", "r"),
            ("Hz", "uint16", 1, "Hz_SF", "Hz", "r"),
            ("Hz_SF", "sunssf", 1, None, "", "r"),
            ("VA", "int16", 1, "VA_SF", "VA", "r"),
            ("VA_SF", "sunssf", 1, None, "", "r"),
            ("VAr", "int16", 1, "VAr_SF", "var", "r"),
            ("VAr_SF", "sunssf", 1, None, "", "r"),
            ("PF", "int16", 1, "PF_SF", "Pct", "r"),
            ("PF_SF", "sunssf", 1, None, "", "r"),
            ("WH", "acc32", 2, "WH_SF", "Wh", "r"),
            ("WH_SF", "sunssf", 1, None, "", "r"),
            ("DCA", "uint16", 1, "DCA_SF", "A", "r"),
            ("DCA_SF", "sunssf", 1, None, "", "r"),
            ("DCV", "uint16", 1, "DCV_SF", "V", "r"),
            ("DCV_SF", "sunssf", 1, None, "", "r"),
            ("DCW", "int16", 1, "DCW_SF", "W", "r"),
            ("DCW_SF", "sunssf", 1, None, "", "r"),
            ("TmpCab", "int16", 1, "Tmp_SF", "C", "r"),
            ("TmpSnk", "int16", 1, "Tmp_SF", "C", "r"),
            ("TmpTrns", "int16", 1, "Tmp_SF", "C", "r"),
            ("TmpOt", "int16", 1, "Tmp_SF", "C", "r"),
            ("Tmp_SF", "sunssf", 1, None, "", "r"),
            ("St", "uint16", 1, None, "", "r"),
            ("StVnd", "uint16", 1, None, "", "r"),
            ("Evt1", "uint32", 2, None, "", "r"),
            ("Evt2", "uint32", 2, None, "", "r"),
            ("EvtVnd1", "uint32", 2, None, "", "r"),
            ("EvtVnd2", "uint32", 2, None, "", "r"),
            ("EvtVnd3", "uint32", 2, None, "", "r"),
            ("EvtVnd4", "uint32", 2, None, "", "r"),
        ],
    ),
    123: (
        "controls",
        [
            ("Conn_WinTms", "uint16", 1, None, "Secs", "rw"),
            ("Conn_RvrtTms", "uint16", 1, None, "Secs", "rw"),
            ("Conn", "uint16", 1, None, "", "rw"),
            ("WMaxLimPct", "uint16", 1, "WMaxLimPct_SF", "% WMax", "rw"),
            ("WMaxLimPct_WinTms", "uint16", 1, None, "Secs", "rw"),
            ("WMaxLimPct_RvrtTms", "uint16", 1, None, "Secs", "rw"),
            ("WMaxLimPct_RmpTms", "uint16", 1, None, "Secs", "rw"),
            ("WMaxLim_Ena", "uint16", 1, None, "", "rw"),
            ("OutPFSet", "int16", 1, "OutPFSet_SF", "cos()", "rw"),
            ("OutPFSet_WinTms", "uint16", 1, None, "Secs", "rw"),
            ("OutPFSet_RvrtTms", "uint16", 1, None, "Secs", "rw"),
            ("OutPFSet_RmpTms", "uint16", 1, None, "Secs", "rw"),
            ("OutPFSet_Ena", "uint16", 1, None, "", "rw"),
            ("VArWMaxPct", "int16", 1, "VArPct_SF", "% WMax", "rw"),
            ("VArMaxPct", "int16", 1, "VArPct_SF", "% VArMax", "rw"),
            ("VArAvalPct", "int16", 1, "VArPct_SF", "% VArAval", "rw"),
            ("VArPct_WinTms", "uint16", 1, None, "Secs", "rw"),
            ("VArPct_RvrtTms", "uint16", 1, None, "Secs", "rw"),
            ("VArPct_RmpTms", "uint16", 1, None, "Secs", "rw"),
            ("VArPct_Mod", "uint16", 1, None, "", "rw"),
            ("VArPct_Ena", "uint16", 1, None, "", "rw"),
            ("WMaxLimPct_SF", "sunssf", 1, None, "", "r"),
            ("OutPFSet_SF", "sunssf", 1, None, "", "r"),
            ("VArPct_SF", "sunssf", 1, None, "", "r"),
        ],
    ),
}

#: Official body lengths of the known models.
MODEL_LENGTHS: dict[int, int] = {mid: sum(p[2] for p in pts) for mid, (_n, pts) in MODEL_DEFS.items()}

_MAX_MODELS = 200


class SunSpecError(RuntimeError):
    """No SunSpec marker found, or a broken model chain."""


@dataclass
class SunSpecModel:
    """One model found by :func:`scan`.

    ``address`` is the protocol address of the model's ID register; the body
    starts at ``address + 2`` and is ``length`` registers long.  The end
    marker is reported as a model with ``id == 0xFFFF`` and ``length == 0``.
    """

    id: int
    address: int
    length: int
    name: str = ""
    points: dict[str, Any] = field(default_factory=dict)
    registers: list[int] = field(default_factory=list)

    @property
    def is_end(self) -> bool:
        """True for the end-of-chain marker."""
        return self.id == END_MODEL_ID

    def point_address(self, name: str) -> int:
        """Protocol address of a point of a known model (e.g. 'WMaxLimPct')."""
        return model_map(self.id, self.address)[name].address


def model_map(model_id: int, address: int) -> RegisterMap:
    """A :class:`RegisterMap` of a known model whose ID register is at ``address``."""
    if model_id not in MODEL_DEFS:
        raise KeyError(f"SunSpec model {model_id} is not known to this scanner")
    name, defs = MODEL_DEFS[model_id]
    points = [
        Point(name="ID", address=address, type="uint16", doc="model ID"),
        Point(name="L", address=address + 1, type="uint16", doc="model length"),
    ]
    addr = address + 2
    for pname, ptype, size, sf, units, access in defs:
        points.append(
            Point(
                name=pname,
                address=addr,
                type=ptype,  # type: ignore[arg-type]
                length=size if ptype == "string" else None,
                sf=sf,
                unit=units,
                access=access,  # type: ignore[arg-type]
            )
        )
        addr += size
    return RegisterMap(device=f"sunspec_{model_id}_{name}", sunspec_na=True, points=points)


async def _try_read(reader: Any, address: int, count: int) -> list[int] | None:
    try:
        return await reader.read(address, count)
    except DeviceError:  # a failed read at one base address is not fatal
        return None


async def _read(reader: Any, address: int, count: int) -> list[int]:
    out: list[int] = []
    while count > 0:
        n = min(count, MAX_READ)
        regs = await _try_read(reader, address, n)
        if regs is None:
            raise SunSpecError(f"read of {n} registers at {address} failed")
        out.extend(regs)
        address += n
        count -= n
    return out


async def scan(
    client: Any,
    device_id: int = 1,
    *,
    bases: tuple[int, ...] = BASE_ADDRESSES,
) -> list[SunSpecModel]:
    """Find the SunSpec marker and return the model chain, end marker included.

    Known models (1, 103, 123) get their points decoded (engineering units,
    scale factors applied, "not implemented" values as ``None``).  Raises
    :class:`SunSpecError` when no base address holds ``SunS`` or the chain is
    broken (unreadable, past register 65535, or more than 200 models).
    """
    reader = as_reader(client, device_id)
    base = None
    for b in bases:
        regs = await _try_read(reader, b, 2)
        if regs is not None and tuple(regs) == SUNS_MARKER:
            base = b
            break
    if base is None:
        raise SunSpecError(f"no SunSpec marker 'SunS' at base addresses {list(bases)}")

    models: list[SunSpecModel] = []
    addr = base + 2
    for _ in range(_MAX_MODELS):
        if addr + 2 > 0x10000:
            raise SunSpecError(f"model chain runs past register 65535 at {addr}")
        header = await _try_read(reader, addr, 2)
        if header is None:
            # some devices do not expose L of the end model: retry with ID only
            one = await _try_read(reader, addr, 1)
            if one is not None and one[0] == END_MODEL_ID:
                models.append(SunSpecModel(END_MODEL_ID, addr, 0, "end"))
                return models
            raise SunSpecError(f"cannot read model header at {addr}")
        mid, length = header
        if mid == END_MODEL_ID:
            models.append(SunSpecModel(END_MODEL_ID, addr, 0, "end"))
            return models
        if addr + 2 + length > 0x10000:
            raise SunSpecError(f"model {mid} at {addr} with length {length} runs past register 65535")
        body = await _read(reader, addr + 2, length) if length else []
        model = SunSpecModel(mid, addr, length, registers=body)
        if mid in MODEL_DEFS:
            model.name = MODEL_DEFS[mid][0]
            rmap = model_map(mid, addr)
            known = MODEL_LENGTHS[mid]
            usable = body[: min(length, known)]
            pts = decode_registers(rmap, addr + 2, usable)
            model.points = {p.name: pts[p.name] for p in rmap.points[2:] if p.name in pts}
        models.append(model)
        addr += 2 + length
    raise SunSpecError(f"more than {_MAX_MODELS} models; giving up")

