"""IEC 60870-5-104: the grid server and the inverter stub against a real c104 master on 127.0.0.1.

The references are independent of the 104 front end: pandapower's own power flow of IEEE 33
(case33bw), the Modbus grid server read with pymodbus, the register map's ranges, and the
object-address rule of hil/maps/grid_server_iec104.yaml (IOA = base + Modbus address).
"""
# no `from __future__ import annotations`: c104 checks a callback's annotations as real types

import asyncio
import math
import socket
import subprocess
import sys
import textwrap
import threading
import time

import c104
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest
from pymodbus.client import ModbusTcpClient

from cosim.scenario.loader import load_scenario
from hil.grid_server import GridServer, entries, load_layout
from hil.guard import Guard, Rule
from hil.iec104_server import Iec104GridServer, load_objects, objects
from hil_support import REPO, Stub, free_port, run_alongside

MONITORING = {c104.Type.M_ME_NC_1, c104.Type.M_DP_NA_1, c104.Type.M_SP_NA_1}
BUSES, LINES = range(1, 34), range(1, 38)  # IEEE 33: buses 1..33, branches 1..37 (33..37 the open tie lines)
GENS = ["pv1"]


def _new_point(client: c104.Client, station: c104.Station, io_address: int, point_type: c104.Type) -> None:
    station.add_point(io_address=io_address, type=point_type)


def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Until something accepts TCP connections on 127.0.0.1:port (c104 reconnects only after a long pause)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Master:
    """A c104 SCADA master (client) of one station: interrogation and commands, confirmed from the frames received.

    c104 2.2's own waiting for a confirmation can miss one that arrives before it starts to wait (fast on
    loopback), so the master reads the confirmations from the raw frames itself."""

    ACT_CON, ACT_TERM, C_IC_NA_1 = 7, 10, 100

    def __init__(self, port: int, common_address: int = 1):
        wait_listening(port)
        self.ca = common_address
        self.frames: list[tuple[int, int, bool, int]] = []  # (type id, cause, negative, first IOA) of I-frames
        self.cond = threading.Condition()
        self.client = c104.Client(command_timeout_ms=200)
        self.client.on_new_point(callable=_new_point)
        self.con = self.client.add_connection(ip="127.0.0.1", port=port, init=c104.Init.NONE)
        self.con.on_receive_raw(callable=self._frame)
        self.station = self.con.add_station(common_address=common_address)
        self.client.start()
        deadline = time.monotonic() + 10
        while self.con.state != c104.ConnectionState.OPEN:
            assert time.monotonic() < deadline, "no IEC 104 connection"
            if self.con.state == c104.ConnectionState.OPEN_MUTED:
                self.con.unmute()  # the same race can leave the connection muted on the client's side
            time.sleep(0.05)

    def _frame(self, connection: c104.Connection, data: bytes) -> None:
        if len(data) >= 15 and not data[2] & 1:  # an I-frame: type id, cause (P/N bit 6), first IOA
            with self.cond:
                self.frames.append((data[6], data[8] & 0x3F, bool(data[8] & 0x40), int.from_bytes(data[12:15], "little")))
                self.cond.notify_all()

    def _answer(self, since: int, type_id: int, cause: int, ioa: int) -> bool:
        """Whether the answer (type id, cause, IOA) received after frame `since` is positive."""
        def found():
            return next((f for f in self.frames[since:] if f[0] == type_id and f[1] == cause and f[3] == ioa), None)
        with self.cond:
            assert self.cond.wait_for(lambda: found() is not None, timeout=10), (type_id, cause, ioa)
            return not found()[2]

    def interrogate(self) -> dict[int, object]:
        """Station interrogation; every monitoring object the master knows of afterwards, by address."""
        since = len(self.frames)
        assert self.con.interrogation(common_address=self.ca, wait_for_response=False)
        assert self._answer(since, self.C_IC_NA_1, self.ACT_TERM, 0)
        return {p.io_address: p.value for p in self.station.points if p.type in MONITORING}

    def command(self, ioa: int, type_: c104.Type, value: object) -> bool:
        """True on a positive activation confirmation."""
        p = self.station.get_point(ioa) or self.station.add_point(io_address=ioa, type=type_)
        p.value = value
        since = len(self.frames)
        p.transmit(cause=c104.Cot.ACTIVATION)
        return self._answer(since, type_.value, self.ACT_CON, ioa)

    def close(self) -> None:
        self.client.stop()


def case33() -> pp.pandapowerNet:
    net = pn.case33bw()
    pp.runpp(net)
    return net


def signals(net: pp.pandapowerNet) -> dict[str, float]:
    """The grid's signals as the co-simulation names them, from pandapower's result."""
    out = {f"bus.{n}.vm_pu": float(net.res_bus.vm_pu.iloc[n - 1]) for n in BUSES}
    for n in LINES:
        out[f"line.{n}.p_mw"] = float(net.res_line.p_from_mw.iloc[n - 1])
        out[f"line.{n}.i_ka"] = float(net.res_line.i_ka.iloc[n - 1])
    return out


def test_every_modbus_entry_is_one_object_per_row_at_base_plus_its_address():
    table = entries(load_layout(), BUSES, LINES, GENS)
    objs = objects(table)
    rows = load_objects().objects
    assert len({o.ioa for o in objs}) == len(objs)  # no two objects share an address
    for r in rows:
        mine = [o for o in objs if o.type == r.type]
        assert [o.entry for o in mine] == [e for e in table if e.table == r.table]
        assert all(o.ioa == r.base + o.entry.address for o in mine)
    by_name = {(o.type, o.entry.name): o.ioa for o in objs}
    assert by_name["M_ME_NC_1", "bus.1.vm_pu"] == 100000 and by_name["M_ME_NC_1", "bus.33.vm_pu"] == 100064
    assert by_name["M_DP_NA_1", "line.6.closed"] == 200006 and by_name["C_DC_NA_1", "line.6.closed"] == 300006
    assert by_name["C_SE_NC_1", "pv1.q_set_mvar"] == 501000


def scada_guard(breakers: list[int], read_only: bool = False) -> Guard:
    rules = {"pv1.p_limit_mw": Rule(0.0, 1.0), "pv1.q_set_mvar": Rule(-1.1, 1.1)}
    rules |= {f"line.{n}.closed": Rule(0.0, 1.0) for n in breakers}
    return Guard("scada", rules.keys(), rules, read_only)


def test_interrogation_returns_every_object_with_the_modbus_servers_values_from_a_real_power_flow():
    net = case33()
    grid, closed = signals(net), net.line.in_service.tolist()
    table = entries(load_layout(), BUSES, LINES, GENS)
    modbus, iec = GridServer(table, scada_guard([])), Iec104GridServer(table, scada_guard([]), port=free_port())
    seen: dict = {}

    def scada() -> None:
        client = ModbusTcpClient("127.0.0.1", port=modbus.port, timeout=2, retries=0)
        assert client.connect()
        rr = client.read_input_registers(0, count=66, device_id=1)  # the 33 bus voltages
        seen["modbus"] = [client.convert_from_registers(rr.registers[i:i + 2], client.DATATYPE.FLOAT32)
                          for i in range(0, 66, 2)]
        client.close()
        master = Master(iec.port)
        seen["iec"] = master.interrogate()
        master.close()

    async def main() -> None:
        await modbus.start()
        await iec.start()
        for server in (modbus, iec):
            server.update(grid, closed, 7)
        await asyncio.to_thread(scada)
        await modbus.stop()
        await iec.stop()

    asyncio.run(main())
    got = seen["iec"]
    monitored = [o for o in objects(table) if o.type in ("M_ME_NC_1", "M_DP_NA_1")]
    assert set(got) == {o.ioa for o in monitored}  # every monitoring object, nothing else
    vm = [got[100000 + 2 * i] for i in range(33)]
    assert vm == seen["modbus"]  # bit for bit the Modbus server's float32
    assert vm == pytest.approx(net.res_bus.vm_pu.tolist(), rel=1e-6)  # and pandapower's result
    assert got[160012] == 7.0  # time.step
    assert math.isnan(got[150000])  # a value the grid does not publish (pv1.p_mw here): NaN, marked invalid
    assert [got[200000 + n] for n in LINES] == [c104.Double.ON if c else c104.Double.OFF for c in closed]


def command_decisions(breakers: list[int], commands: bool = True, read_only: bool = False) -> tuple[dict, Iec104GridServer]:
    """Send a fixed set of commands to a grid server; the confirmation of each, and the server afterwards."""
    table = entries(load_layout(), BUSES, LINES, GENS)
    iec = Iec104GridServer(table, scada_guard(breakers, read_only), port=free_port(), commands=commands)
    sent = {"open 6 (double)": (300006, c104.Type.C_DC_NA_1, c104.Double.OFF),
            "open 7 (double)": (300007, c104.Type.C_DC_NA_1, c104.Double.OFF),
            "close 6 (single)": (400006, c104.Type.C_SC_NA_1, True),
            "intermediate 6": (300006, c104.Type.C_DC_NA_1, c104.Double.INTERMEDIATE),
            "p_limit 5 MW": (500000, c104.Type.C_SE_NC_1, 5.0),
            "q_set nan": (501000, c104.Type.C_SE_NC_1, math.nan)}
    answers: dict = {}

    def scada() -> None:
        master = Master(iec.port)
        for name, (ioa, type_, value) in sent.items():
            answers[name] = master.command(ioa, type_, value)
        master.close()

    async def main() -> None:
        await iec.start()
        iec.update({}, [True] * 37, 0)
        await asyncio.to_thread(scada)
        await iec.stop()

    asyncio.run(main())
    return answers, iec


def test_commands_pass_the_grid_servers_guard_and_allow_list_and_get_confirmations():
    answers, iec = command_decisions(breakers=[6])
    assert answers == {"open 6 (double)": True, "open 7 (double)": False, "close 6 (single)": True,
                       "intermediate 6": False, "p_limit 5 MW": True, "q_set nan": False}
    assert iec.take_commands() == {"line.6.closed": 1.0, "pv1.p_limit_mw": 1.0}  # the last of 6; 5 MW clamped to 1
    notes = {tuple(n[:2]) for n in iec.notes}
    assert {("guard_blocked", "scada.line.7.closed"), ("guard_clamped", "scada.pv1.p_limit_mw"),
            ("guard_blocked", "scada.pv1.q_set_mvar")} <= notes


@pytest.mark.parametrize("why", ["commands: false", "read-only"])
def test_no_command_gets_through_with_commands_off_or_read_only(why):
    answers, iec = command_decisions(breakers=[6], commands=why != "commands: false", read_only=why == "read-only")
    assert not any(answers.values()), answers
    assert iec.take_commands() == {}
    assert ("guard_blocked", "scada.line.6.closed") in {tuple(n[:2]) for n in iec.notes}


def scenario(tmp_path, port: int, steps: int, extra: str = "") -> object:
    path = tmp_path / "iec104.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: iec104
        seed: 1
        clock: {{start: "2025-06-21T18:00:00", duration: {steps}s, step: 1s}}
        grid: {{feeder: ieee33}}
        loads: {{profile: constant, scale: 1.0, noise: 0}}
        grid_server: {{protocol: iec104, port: {port}, breakers: [6]{extra}}}
        """), encoding="utf-8")
    return load_scenario(path)


def test_a_breaker_command_over_iec104_opens_the_line_at_the_next_step_of_a_run(tmp_path):
    port, seen = free_port(), {}

    def scada() -> None:
        master = Master(port)
        try:
            while (now := master.interrogate()).get(160012, -1) < 3:  # time.step, fresh from the server
                time.sleep(0.05)
            seen["vm"], seen["before"] = [now[100000 + 2 * i] for i in range(33)], now[160012]
            seen["open6"] = master.command(300006, c104.Type.C_DC_NA_1, c104.Double.OFF)
            seen["open7"] = master.command(300007, c104.Type.C_DC_NA_1, c104.Double.OFF)
            seen["after"] = master.interrogate()[160012]
            deadline = time.monotonic() + 10
            while master.station.get_point(200006).value != c104.Double.OFF and time.monotonic() < deadline:
                time.sleep(0.02)  # the breaker state comes back spontaneously
            seen["dp6"] = master.station.get_point(200006).value
        finally:
            master.close()

    out = tmp_path / "out"
    outcome = run_alongside(scenario(tmp_path, port, 12), out, scada, realtime=0.2, join_s=30)
    assert outcome.status == "ok", outcome.message
    ts, ev = pd.read_parquet(out / "timeseries.parquet"), pd.read_csv(out / "events.csv")
    assert seen["vm"] == pytest.approx(case33().res_bus.vm_pu.tolist(), abs=1e-6)  # pandapower at nominal load
    assert seen["open6"] is True and seen["open7"] is False  # line 7 is not on grid_server.breakers
    i6 = ts["line.6.i_ka"].to_numpy()
    k_open = int((i6 > 0).sum())
    assert (i6[:k_open] > 0).all() and (i6[k_open:] == 0).all()  # open once, and for the rest of the run
    assert seen["before"] + 1 <= k_open <= seen["after"] + 1  # at the step after the one the command arrived in
    assert seen["dp6"] == c104.Double.OFF
    assert ("guard_blocked", "scada.line.7.closed") in set(zip(ev["kind"], ev["target"]))
    accepted = ev[ev["kind"] == "scada_command"]
    assert accepted["target"].tolist() == ["scada.line.6.closed"] and "iec104" in accepted["detail"].iloc[0]


def test_a_scenario_with_a_modbus_key_on_an_iec104_server_is_refused(tmp_path, cli):
    path = tmp_path / "bad.yaml"
    good = scenario(tmp_path, 2404, 2)
    assert good.scenario.grid_server.protocol == "iec104" and good.scenario.grid_server.common_address == 1
    text = (tmp_path / "iec104.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("port: 2404", "unit: 3"), encoding="utf-8")
    code, output, _ = cli("validate", path)
    assert code == 2 and "unit is not a key of protocol iec104" in output and "Traceback" not in output
    path.write_text(text.replace(", port: 2404", ""), encoding="utf-8")
    assert load_scenario(path).scenario.grid_server.port == 2404  # IEC 104's registered port by default


def test_the_inverter_stub_over_iec104_answers_and_checks_set_points_like_its_modbus_writes():
    stub = Stub("inverter", "--protocol", "iec104", "--tick", "0.02")  # --port 0: the port it reports ready on
    try:
        master = Master(stub.port)
        first = master.interrogate()
        accepted = {"WMaxLim_Ena on": master.command(140131, c104.Type.C_SC_NA_1, True),
                    "WMaxLimPct 50": master.command(140127, c104.Type.C_SE_NC_1, 50.0),
                    "WMaxLimPct 150": master.command(140127, c104.Type.C_SE_NC_1, 150.0),  # map: 0..100
                    "VArWMaxPct -30": master.command(140137, c104.Type.C_SE_NC_1, -30.0),
                    "W (no command object)": master.command(140084, c104.Type.C_SE_NC_1, 1.0)}
        deadline = time.monotonic() + 10
        while ((master.station.get_point(40127).value, master.station.get_point(40137).value) != (50.0, -30.0)
               and time.monotonic() < deadline):
            time.sleep(0.02)  # the read-backs arrive spontaneously
        last = master.interrogate()
        master.close()
    finally:
        code = stub.stop()
    assert set(first) == {40084, 40090, 40126, 40127, 40131, 40137, 40144,  # W, VAr, Conn and the controls
                          40108, 40110, 40143, 41000,  # St, Evt1, VArPct_Mod, Heartbeat: what a bridge reads
                          40085, 40091, 40145, 40147}  # the scale factors W_SF, VAr_SF, WMaxLimPct_SF, VArPct_SF
    assert first[40126] is True and first[40127] == 100.0 and first[40131] is False  # the map's defaults
    assert accepted == {"WMaxLim_Ena on": True, "WMaxLimPct 50": True, "WMaxLimPct 150": False,
                        "VArWMaxPct -30": True, "W (no command object)": False}
    assert last[40127] == 50.0 and last[40131] is True and last[40137] == -30.0
    assert "WMaxLimPct=150 outside 0..100" in stub.log and code == 0


def test_the_stub_command_line_refuses_iec104_it_cannot_serve():
    for args, why in ((["--unit", "0"], "common address, 1..65534"),
                      (["--serial-port", "/dev/null"], "--serial-port is for Modbus RTU")):
        done = subprocess.run([sys.executable, "-m", "firmware_stubs.inverter", "--protocol", "iec104", *args],
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert done.returncode == 2 and why in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "firmware_stubs.capbank", "--protocol", "iec104"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 2 and "no IEC 104 object list" in done.stderr
