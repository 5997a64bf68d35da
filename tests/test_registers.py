"""Unit tests of hil.registers (map schema), hil.codec (encode/decode), hil.reading and hil.sunspec (scan)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from hil import MAPS_DIR
from hil.codec import EncodeError, decode, encode, raw_to_registers, registers_to_raw
from hil.reading import ModbusReadError, ModbusWriteError, decode_registers, read_points, write_point
from hil.registers import Point, RegisterMap, RegisterMapError, load_map, parse_map
from hil.sunspec import MODEL_DEFS, MODEL_LENGTHS, SunSpecError, scan
from hil_support import register_bank

DEVICES = ["inverter", "capbank", "regulator", "recloser"]


def _image_of(regmap: RegisterMap) -> dict[int, int]:
    """Registers of a map filled with its defaults (scale factors first)."""
    regs: dict[int, int] = {}
    for p in regmap.points:
        for a in range(p.address, p.end):
            regs[a] = 0
    sfs: dict[str, int] = {}
    for p in sorted(regmap.points, key=lambda q: q.type != "sunssf"):
        if p.default is None:
            continue
        sf = sfs.get(p.sf) if p.sf else None
        for i, r in enumerate(encode(p, p.default, sf)):
            regs[p.address + i] = r
        if p.type == "sunssf":
            sfs[p.name] = int(p.default)
    return regs


# --------------------------------------------------------------------------- #
# shipped maps
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("device", DEVICES)
def test_shipped_maps_load(device):
    m = load_map(MAPS_DIR / f"{device}.yaml")
    assert m.device == device
    assert "Heartbeat" in m and m["Heartbeat"].access == "r"
    assert "WdgCount" in m
    for p in m.points:
        if p.writable:
            assert p.doc, f"{p.name} needs a doc line"


SUNSPEC_TYPES = {"enum16": "uint16", "bitfield16": "uint16", "pad": "uint16", "bitfield32": "uint32",
                 "enum32": "uint32"}  # as they are on the wire


def _sunspec_json(model_id: int) -> list[dict]:
    """The points of a SunSpec model as the SunSpec Alliance publishes them (pysunspec2's model JSON)."""
    import json

    import sunspec2  # a test dependency (pyproject [test]): the comparison must not be skipped

    path = Path(sunspec2.__file__).parent / "models" / "json" / f"model_{model_id}.json"
    group = json.loads(path.read_text(encoding="utf-8"))["group"]
    assert "groups" not in group, "repeating groups are not expected in models 1, 103, 123"
    return group["points"]


@pytest.mark.parametrize("mid", [1, 103, 123])
def test_inverter_map_matches_the_official_sunspec_models(mid):
    """The stub's map and the scanner's definitions against pysunspec2's model_<id>.json: names, offsets, sizes,
    types, scale-factor names and access."""
    m = load_map(MAPS_DIR / "inverter.yaml")
    base = {1: 40002, 103: 40070, 123: 40122}[mid]
    official = _sunspec_json(mid)
    assert [p["name"] for p in official[:2]] == ["ID", "L"]
    body = official[2:]
    assert m[f"M{mid}_ID"].address == base and m[f"M{mid}_ID"].default == mid
    assert m[f"M{mid}_L"].address == base + 1 and m[f"M{mid}_L"].default == sum(p["size"] for p in body)
    own = MODEL_DEFS[mid][1]
    assert [d[0] for d in own] == [p["name"] for p in body]
    offset = 0
    for p, (name, typ, size, sf, _units, access) in zip(body, own):
        expected = (SUNSPEC_TYPES.get(p["type"], p["type"]), p["size"], p.get("sf"),
                    "rw" if p.get("access") == "RW" else "r")
        point = m[p["name"]]
        assert point.address == base + 2 + offset, p["name"]
        assert (point.type, point.size, point.sf, point.access) == expected, p["name"]
        assert (typ, size, sf, access) == expected, p["name"]
        offset += p["size"]
    assert MODEL_LENGTHS[mid] == offset


def test_the_sunspec_chain_is_closed():
    m = load_map(MAPS_DIR / "inverter.yaml")
    assert m["SunS"].address == 40000 and m["SunS"].default == "SunS"
    assert m["M1_ID"].address == 40002
    assert m["End_ID"].address == 40506 and m["End_ID"].default == 0xFFFF
    assert m["End_L"].address == 40507 and m["End_L"].default == 0
    assert MODEL_LENGTHS == {1: 66, 103: 50, 123: 24}
    # the vendor block lies outside the chain
    for name in ("Heartbeat", "PAvail", "VTermPu", "HzIn"):
        assert m[name].address >= 41000
    assert m["PAvail"].writable and m["VTermPu"].writable


# --------------------------------------------------------------------------- #
# encode / decode
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("type_", "value", "dt"),
    [
        ("int16", -1234, ModbusTcpClient.DATATYPE.INT16),
        ("uint16", 54321, ModbusTcpClient.DATATYPE.UINT16),
        ("int32", -123456789, ModbusTcpClient.DATATYPE.INT32),
        ("uint32", 4000000000, ModbusTcpClient.DATATYPE.UINT32),
        ("acc32", 123456789, ModbusTcpClient.DATATYPE.UINT32),
        ("float32", 1.5e6, ModbusTcpClient.DATATYPE.FLOAT32),
    ],
)
def test_raw_conversion_agrees_with_pymodbus(type_, value, dt):
    regs = raw_to_registers(type_, value)
    assert regs == ModbusTcpClient.convert_to_registers(value, dt)
    assert registers_to_raw(type_, regs) == ModbusTcpClient.convert_from_registers(regs, dt)
    assert registers_to_raw(type_, regs) == pytest.approx(value)


def test_string_encoding():
    regs = raw_to_registers("string", "SunS", 2)
    assert regs == [0x5375, 0x6E53]
    assert raw_to_registers("string", "ab", 4) == [0x6162, 0, 0, 0]
    assert registers_to_raw("string", [0x6162, 0, 0, 0]) == "ab"
    assert ModbusTcpClient.convert_from_registers(regs, ModbusTcpClient.DATATYPE.STRING) == "SunS"
    with pytest.raises(EncodeError):
        raw_to_registers("string", "too long", 2)


def test_scale_and_sf():
    pct = Point(name="WMaxLimPct", address=0, type="uint16", sf="WMaxLimPct_SF", access="rw")
    assert encode(pct, 50, sf=-1) == [500]
    assert decode(pct, [500], sf=-1) == 50.0
    assert decode(pct, [3], sf=-1) == 0.3  # no binary noise
    w = Point(name="W", address=0, type="int16", sf="W_SF")
    assert encode(w, 123456, sf=2) == [1235]
    assert decode(w, [1235], sf=2) == 123500.0
    assert encode(w, -50000, sf=2) == [(-500) & 0xFFFF]
    assert decode(w, [(-500) & 0xFFFF], sf=2) == -50000.0
    v = Point(name="VSetPu", address=0, type="uint16", scale=0.0001)
    assert encode(v, 1.0) == [10000]
    assert decode(v, [10250]) == 1.025
    f = Point(name="PAvail", address=0, type="float32", unit="W")
    assert decode(f, encode(f, 812345.5)) == 812345.5
    plain = Point(name="N", address=0, type="uint16")
    assert decode(plain, [7]) == 7 and isinstance(decode(plain, [7]), int)
    sf = Point(name="X_SF", address=0, type="sunssf")
    assert decode(sf, encode(sf, -3)) == -3


def test_encode_errors():
    w = Point(name="W", address=0, type="int16", sf="W_SF")
    with pytest.raises(EncodeError, match="W_SF"):
        encode(w, 100)  # scale factor value missing
    with pytest.raises(EncodeError, match="int16"):
        encode(w, 1e9, sf=0)
    u = Point(name="U", address=0, type="uint16")
    with pytest.raises(EncodeError):
        encode(u, -1)
    with pytest.raises(EncodeError):
        encode(u, "text")
    s = Point(name="S", address=0, type="string", length=2)
    with pytest.raises(EncodeError):
        encode(s, 5)


def test_sunspec_not_implemented_values():
    m = parse_map(
        {
            "device": "t",
            "sunspec_na": True,
            "points": [
                {"name": "A", "address": 0, "type": "uint16", "sf": "A_SF"},
                {"name": "A_SF", "address": 1, "type": "sunssf"},
                {"name": "T", "address": 2, "type": "int16"},
                {"name": "F", "address": 3, "type": "float32"},
            ],
        }
    )
    out = decode_registers(m, 0, [0xFFFF, 0xFFFE, 0x8000, 0x7FC0, 0])
    assert out["A"] is None and out["A_SF"] == -2 and out["T"] is None
    assert out["F"] is None
    out = decode_registers(m, 0, [1234, 0x8000, 5, 0x3F80, 0])
    assert out["A_SF"] is None and out["A"] is None and out["T"] == 5 and out["F"] == 1.0
    out = decode_registers(m, 0, [1234, 0xFFFE, 5])  # F not entirely inside: skipped
    assert out == {"A": 12.34, "A_SF": -2, "T": 5}


# --------------------------------------------------------------------------- #
# map validation errors name file, entry and field
# --------------------------------------------------------------------------- #
def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad_map.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("body", "entry", "field"),
    [
        ("- {name: Y, address: 5, type: uint17}", "points[1] 'Y'", "field 'type'"),
        ("- {name: Y, address: 5, type: uint16, sf: Nope}", "points[1] 'Y'", "field 'sf'"),
        ("- {name: Y, address: 5, type: uint16, sf: X}", "points[1] 'Y'", "field 'sf'"),
        ("- {name: Y, address: 0, type: uint16}", "points[1] 'Y'", "field 'address'"),
        ("- {name: Y, address: 5, type: string}", "points[1] 'Y'", "field 'length'"),
        ("- {name: Y, address: 5, type: uint16, scal: 2}", "points[1] 'Y'", "field 'scal'"),
        ("- {name: Y, address: 5, type: uint16, access: w}", "points[1] 'Y'", "field 'access'"),
        ("- {name: Y, address: 5, type: uint16, min: 5, max: 1}", "points[1] 'Y'", "field 'min'"),
        ("- {name: Y, address: 5, type: uint16, max: 10, default: 11}", "points[1] 'Y'", "field 'default'"),
        ("- {name: Y, address: 5, type: uint16, scale: 0.1, sf: X}", "points[1] 'Y'", "field 'scale'/'sf'"),
        ("- {name: X, address: 5, type: uint16}", "points[1] 'X'", "field 'name'"),
        ("- {name: Y, address: 70000, type: uint16}", "points[1] 'Y'", "field 'address'"),
    ],
)
def test_map_errors_name_file_entry_field(tmp_path, body, entry, field):
    path = _write(tmp_path, f"device: t\npoints:\n- {{name: X, address: 0, type: int32}}\n{body}\n")
    with pytest.raises(RegisterMapError) as ei:
        load_map(path)
    msg = str(ei.value)
    assert str(path) in msg and entry in msg and field in msg, msg


def test_map_file_level_errors(tmp_path):
    with pytest.raises(RegisterMapError, match="bad_map.yaml.*invalid YAML"):
        load_map(_write(tmp_path, "device: t\npoints: [\n"))
    with pytest.raises(RegisterMapError, match="bad_map.yaml.*field 'points'"):
        load_map(_write(tmp_path, "device: t\n"))
    with pytest.raises(RegisterMapError, match="bad_map.yaml.*top level"):
        load_map(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(RegisterMapError, match="cannot read"):
        load_map(tmp_path / "missing.yaml")


def test_blocks_and_lookup():
    m = parse_map(
        {
            "device": "t",
            "points": [
                {"name": "A", "address": 10, "type": "uint32"},
                {"name": "B", "address": 12, "type": "uint16"},
                {"name": "C", "address": 20, "type": "string", "length": 4},
                {"name": "D", "address": 24, "type": "uint16"},
            ],
        }
    )
    assert m.blocks() == [(10, 3), (20, 5)]
    assert m.blocks(["D", "A"]) == [(10, 2), (24, 1)]
    assert m.blocks(max_count=4) == [(10, 3), (20, 4), (24, 1)]
    assert m.point_at(11).name == "A" and m.point_at(13) is None
    with pytest.raises(KeyError):
        m["nope"]


# --------------------------------------------------------------------------- #
# the read path and the SunSpec scan, over Modbus-TCP on 127.0.0.1
# --------------------------------------------------------------------------- #
def test_read_and_write_points_over_tcp():
    m = load_map(MAPS_DIR / "inverter.yaml")
    regs = _image_of(m)

    async def go():
        async with register_bank(regs, {a for p in m.points if p.writable for a in range(p.address, p.end)}) as c:
            vals = await read_points(c, m, ["WMaxLimPct", "Mn", "PAvail", "Hz"])
            assert vals == {"WMaxLimPct": 100.0, "Mn": "CosimTestbed", "PAvail": 0.0, "Hz": 50.0}
            written = await write_point(c, m, "WMaxLimPct", 42.5)  # reads WMaxLimPct_SF first
            assert written == [425]
            assert (await read_points(c, m, ["WMaxLimPct"]))["WMaxLimPct"] == 42.5
            with pytest.raises(ModbusWriteError) as ei:
                await write_point(c, m, "W", 1.0)
            assert ei.value.exception_code == 2
            with pytest.raises(ModbusReadError) as ei:
                await read_points(c, load_map(MAPS_DIR / "capbank.yaml"))
            assert ei.value.exception_code == 2

    asyncio.run(go())


def _sunspec_regs(base: int) -> dict[int, int]:
    m = load_map(MAPS_DIR / "inverter.yaml")
    img = _image_of(m)
    regs = {a - 40000 + base: v for a, v in img.items() if 40000 <= a < 40150}
    # append a vendor model (id 64900, length 3) before the end marker
    end = base + 148
    regs[end], regs[end + 1], regs[end + 2], regs[end + 3], regs[end + 4] = 64900, 3, 1, 2, 3
    regs[end + 5], regs[end + 6] = 0xFFFF, 0
    return regs


def _scan(regs: dict[int, int]):
    async def go():
        async with register_bank(regs) as c:
            return await scan(c)

    return asyncio.run(go())


def test_scan_walks_chain_at_base_zero():
    models = _scan(_sunspec_regs(0))
    assert [(mo.id, mo.address, mo.length) for mo in models] == [
        (1, 2, 66),
        (103, 70, 50),
        (123, 122, 24),
        (64900, 148, 3),
        (0xFFFF, 153, 0),
    ]
    common, inv, ctl, vendor, end = models
    assert common.points["Mn"] == "CosimTestbed" and common.points["DA"] == 1
    assert inv.points["Hz"] == 50.0 and inv.points["W_SF"] == 2
    assert ctl.points["WMaxLimPct"] == 100.0 and ctl.point_address("WMaxLimPct") == 127
    assert vendor.points == {} and vendor.registers == [1, 2, 3]
    assert end.is_end


def test_scan_tries_40000_first():
    regs = {**_sunspec_regs(0), **_sunspec_regs(40000)}
    assert _scan(regs)[0].address == 40002


def test_scan_without_marker_raises():
    with pytest.raises(SunSpecError, match="no SunSpec marker"):
        _scan({0: 1, 1: 2})


def test_scan_broken_chain_raises():
    regs = _sunspec_regs(40000)
    del regs[40148 + 5]  # end marker missing
    with pytest.raises(SunSpecError):
        _scan(regs)


def test_decode_is_finite_for_defaults():
    for dev in DEVICES:
        m = load_map(MAPS_DIR / f"{dev}.yaml")
        img = _image_of(m)
        sfs = {q.name: q.default for q in m.points if q.type == "sunssf"}  # a block may end before its points' sf
        for start, count in m.blocks():
            vals = decode_registers(m, start, [img[a] for a in range(start, start + count)], sfs)
            for p in m.points:
                if p.name == "End_ID" and p.name in vals:  # 0xFFFF is also the SunSpec "not implemented" uint16
                    assert vals[p.name] is None
                elif p.default is not None and p.name in vals and not isinstance(p.default, str):
                    assert math.isclose(float(vals[p.name]), float(p.default), rel_tol=1e-6, abs_tol=1e-3), p.name
