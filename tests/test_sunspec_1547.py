"""IEEE 1547-2018 SunSpec models (701, 702, 704, 705, 706) of the inverter stub.

References from outside the code under test: the model definitions shipped in pysunspec2
(``sunspec2/models/json/model_<id>.json``) for offsets, sizes and scale factors, the SunSpec
Alliance client (pysunspec2) for the scan over real Modbus-TCP on 127.0.0.1, and values
computed by hand from the IEEE 1547-2018 Category B default curves and trip settings. The
response-time and trip tests drive the firmware in process with fixed ticks (no wall clock).
"""

from __future__ import annotations

import json
import logging
import math
import struct
from pathlib import Path

import pytest

from firmware_stubs.cli import build_parser
from firmware_stubs.image import RegisterImage
from firmware_stubs.inverter import InverterStub
from hil import MAPS_DIR
from hil.registers import load_map
from tests.hil_support import Stub, wait_for

sunspec2 = pytest.importorskip("sunspec2")
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

JSON_DIR = Path(sunspec2.__file__).parent / "models" / "json"
MAP = load_map(MAPS_DIR / "inverter.yaml")
MODELS = (701, 702, 704, 705, 706)
WIRE = {"enum16": "uint16", "bitfield16": "uint16", "bitfield32": "uint32", "pad": "uint16"}
COUNTS = {(705, "NCrv"): 2, (705, "NPt"): 4, (706, "NCrv"): 2, (706, "NPt"): 2}
TICK = 0.1


def reference_points(model: int) -> list[tuple[str, int, str, int, str | None]]:
    """(map name, offset from the model ID, JSON type, size, JSON sf) of every point, from pysunspec2's JSON."""
    out: list[tuple[str, int, str, int, str | None]] = []

    def walk(group: dict, prefix: str, off: int) -> int:
        for p in group["points"]:
            out.append((f"{prefix}_{p['name']}", off, p["type"], p["size"], p.get("sf")))
            off += p["size"]
        for sub in group.get("groups", []):
            count = sub.get("count", 1)
            count = COUNTS[(model, count)] if isinstance(count, str) else count
            for i in range(1, count + 1):
                off = walk(sub, f"{prefix}_{sub['name']}{i if 'count' in sub else ''}", off)
        return off

    walk(json.loads((JSON_DIR / f"model_{model}.json").read_text())["group"], f"M{model}", 0)
    return out


@pytest.mark.parametrize("model", MODELS)
def test_map_matches_reference_model(model):
    """Every point of the model is mapped at its JSON offset, with its size, wire type and scale factor."""
    base = MAP[f"M{model}_ID"].address
    for name, off, typ, size, sf in reference_points(model):
        if typ == "uint64":  # mapped as <name>_Hi (upper 32 bits) + <name> (acc32, lower 32 bits)
            hi, lo = MAP[name + "_Hi"], MAP[name]
            assert (hi.address, hi.size, lo.address, lo.size) == (base + off, 2, base + off + 2, 2), name
            assert lo.sf == (f"M{model}_{sf}" if sf else None), name
            continue
        p = MAP[name]
        assert (p.address - base, p.size) == (off, size), name
        assert p.type == WIRE.get(typ, typ), name
        assert p.sf == (f"M{model}_{sf}" if sf else None), name


@pytest.fixture
def stub():
    s = Stub("inverter", "--w-max", "1000000", "--va-max", "1100000")
    yield s
    s.stop()


def test_pysunspec2_scan_decodes_1547_models(stub):
    dev = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr=stub.host, ipport=stub.port, timeout=2)
    try:
        dev.scan()
        chain = [(m.model_id, m.model_addr) for m in dev.model_list]
        assert chain == [(1, 40002), (103, 40070), (123, 40122), (701, 40148), (702, 40303), (704, 40355),
                         (705, 40422), (706, 40473)]
        for model in MODELS:  # the length pysunspec2 accepted is the one its JSON gives for this NPt / NCrv
            ref = reference_points(model)
            assert dev.models[model][0].model_len == ref[-1][1] + ref[-1][3] - 2
        m701, m702 = dev.models[701][0], dev.models[702][0]
        assert m701.ACType.value == 2 and m701.LLV.cvalue == 400.0 and m701.Hz.cvalue == 50.0
        assert m701.LNV.cvalue == pytest.approx(400 / math.sqrt(3), abs=0.1)
        assert m702.WMaxRtg.cvalue == 1e6 and m702.VAMaxRtg.cvalue == 1.1e6 and m702.VNomRtg.cvalue == 400.0
        assert m702.NorOpCatRtg.value == 1  # CAT_B
        vv = dev.models[705][0]
        # IEEE 1547-2018 Table 8, Category B: 92/98/102/108 % VNom -> +44/0/0/-44 % of the VA rating, 5 s
        assert [(p.V.cvalue, p.Var.cvalue) for p in vv.Crv[0].Pt] == [(92, 44), (98, 0), (102, 0), (108, -44)]
        assert vv.Crv[0].DeptRef.value == 3 and vv.Crv[0].RspTms.cvalue == 5 and vv.Ena.value == 0
        vw = dev.models[706][0]  # Table 10: 106 / 110 % VNom -> 100 / 0 % of WMax, 10 s
        assert [(p.V.cvalue, p.W.cvalue) for p in vw.Crv[0].Pt] == [(106, 100), (110, 0)]
        assert vw.Crv[0].RspTms.cvalue == 10
    finally:
        dev.close()


def test_volt_var_step_through_pysunspec2(stub):
    """Adopt curve 2 with a 1 s response time, enable volt-var, step the voltage: Q settles on the curve."""
    dev = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr=stub.host, ipport=stub.port, timeout=2)
    try:
        dev.scan()
        inv, vv = dev.models[103][0], dev.models[705][0]
        vv.Crv[1].RspTms.cvalue = 1
        vv.Crv[1].write()
        vv.AdptCrvReq.value = 2
        vv.write()
        vv.Ena.value = 1
        vv.Ena.write()
        vv.read()
        assert vv.AdptCrvRslt.value == 1 and vv.Crv[0].RspTms.cvalue == 1
        dev.client.write(41002, _float32(500_000.0))  # PAvail
        dev.client.write(41004, _float32(1.05))  # VTermPu
        # hand: 105 % lies between (102, 0) and (108, -44): -22 % of 1.1 MVA = -242 kvar
        expected = -0.22 * 1.1e6

        def settled() -> bool:
            inv.read()
            return abs(inv.VAr.cvalue - expected) <= 200

        assert wait_for(settled, timeout=10.0), inv.VAr.cvalue
        dev.models[701][0].read()
        assert dev.models[701][0].Var.cvalue == pytest.approx(expected, abs=200)
        assert inv.W.cvalue == pytest.approx(500_000.0, abs=100)
    finally:
        dev.close()


def test_probe_finds_and_decodes_1547_models(stub):
    """`cosim probe` lists the models its scanner does not decode, and decodes them with the map."""
    from hil.probe import probe

    rows = probe(stub.host, int(stub.port))
    assert [(r.group, r.address) for r in rows if r.name == "(not decoded)"] == [
        ("model 701", 40148), ("model 702", 40303), ("model 704", 40355), ("model 705", 40422), ("model 706", 40473)]
    values = {r.name: r.value for r in probe(stub.host, int(stub.port), regmap=MAP)}
    assert values["M705_Crv1_Pt1_V"] == 92.0 and values["M706_Crv1_Pt2_V"] == 110.0
    assert values["M702_WMaxRtg"] == 1e6 and values["M701_LLV"] == 400.0


def _float32(x: float) -> bytes:
    return struct.pack(">f", x)


# --------------------------------------------------------------------------- #
# the firmware in process, ticked with fixed steps
# --------------------------------------------------------------------------- #
def firmware(*argv: str) -> InverterStub:
    args = build_parser(InverterStub).parse_args(["--w-max", "1000000", "--va-max", "1100000", *argv])
    dev = InverterStub(RegisterImage(MAP), args, logging.getLogger("test"))
    dev.setup(0.0)
    return dev


def run_for(dev: InverterStub, seconds: float) -> None:
    for _ in range(round(seconds / TICK)):
        dev.tick(0.0, TICK)


def test_volt_var_open_loop_response_time():
    """90 % of the Q step is reached after exactly the curve's open-loop response time (5 s), not before."""
    dev = firmware()
    dev.set("PAvail", 500_000.0)
    dev.set("M705_Ena", 1)
    run_for(dev, 1.0)
    assert dev.get("VAr") == 0.0  # 1.0 pu is inside the dead band
    dev.set("VTermPu", 0.94)  # hand: between (92, 44) and (98, 0): 44 * 4/6 = 29.33 % of 1.1 MVA
    target = 0.44 * 4 / 6 * 1.1e6
    run_for(dev, 4.9)
    assert dev.get("VAr") < 0.9 * target
    run_for(dev, 0.1)
    assert dev.get("VAr") == pytest.approx(0.9 * target, abs=100)
    run_for(dev, 20.0)
    assert dev.get("VAr") == pytest.approx(target, abs=100)


def test_volt_watt_limits_power():
    dev = firmware()
    dev.set("PAvail", 800_000.0)
    dev.set("M706_Ena", 1)
    dev.set("VTermPu", 1.08)  # hand: halfway between (106, 100) and (110, 0): 50 % of WMax
    run_for(dev, 60.0)
    assert dev.get("W") == pytest.approx(500_000.0, abs=100)
    assert dev.get("M701_ThrotSrc") & (1 << 10) and dev.get("St") == 5


def test_zero_voltage_trip_and_enter_service_ramp():
    dev = firmware("--es-delay", "2", "--es-ramp", "4")
    dev.set("PAvail", 800_000.0)
    run_for(dev, 0.5)
    assert dev.get("W") == pytest.approx(800_000.0, abs=100)
    dev.set("VTermPu", 0.0)
    run_for(dev, 0.1)
    assert dev.get("W") == 0.0  # ceases to energize at once
    run_for(dev, 0.1)  # UV2: 0.45 pu, 0.16 s
    assert dev.get("Evt1") == 1 << 11 and dev.get("M701_Alrm") == 1 << 11 and dev.get("St") == 7
    dev.set("VTermPu", 1.0)
    run_for(dev, 1.9)
    assert dev.get("W") == 0.0 and dev.get("St") == 3  # within the enter-service delay
    run_for(dev, 0.1 + 2.0)  # delay over, then half the 4 s ramp: 50 % of WMax
    assert dev.get("W") == pytest.approx(500_000.0, abs=100) and dev.get("Evt1") == 0
    run_for(dev, 2.0)
    assert dev.get("W") == pytest.approx(800_000.0, abs=100)


@pytest.mark.parametrize(("point", "value", "bit"), [("VTermPu", 1.3, 10), ("HzIn", 55.0, 8), ("HzIn", 46.0, 9)])
def test_fixed_trips_set_event_bits(point, value, bit):
    dev = firmware()
    dev.set("PAvail", 800_000.0)
    dev.set(point, value)  # beyond OV2 (1.2 pu) / OF2 (62/60 of nominal) / UF2 (56.5/60): 0.16 s
    run_for(dev, 0.1)
    assert dev.get("Evt1") == 0
    run_for(dev, 0.1)
    assert dev.get("Evt1") == 1 << bit and dev.get("W") == 0.0 and dev.get("M701_InvSt") == 6


def test_reconnect_ramps():
    dev = firmware("--es-delay", "0", "--es-ramp", "10")
    dev.set("PAvail", 1_000_000.0)
    run_for(dev, 0.5)
    dev.set("Conn", 0)
    run_for(dev, 0.5)
    assert dev.get("W") == 0.0 and dev.get("St") == 1
    dev.set("Conn", 1)
    run_for(dev, 2.1)  # one tick to enter service, then 2 s of a 10 s ramp: 20 % of WMax
    assert dev.get("W") == pytest.approx(200_000.0, abs=100)
