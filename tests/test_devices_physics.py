"""Field devices act on the grid: every run here has emulated devices on 127.0.0.1 and checks that the power
flow answers, against plain pandapower (the independent reference) or hand figures of IEEE 33.

A regulator's tap moves the source voltage (feeder-head regulator) or a transformer's tap changer; a
recloser opens and recloses its line, tripping and locking out on the current the grid computes; a
capacitor bank's step switches a shunt; a SCADA breaker command through the grid server opens a line.
Each device reports at step k what it did with the commands of step k, and the grid takes it at k+1.
"""

from __future__ import annotations

import copy
import functools
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest
from pymodbus.client import ModbusTcpClient

from cosim.assembly import RunOptions
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from hil_support import free_port

TICK = 0.02  # s: the stubs' firmware tick (the bridge waits one per step)
DOWNSTREAM_OF_LINE_6 = range(7, 19)  # IEEE 33 (1-based): opening branch 6 (bus 6-7) cuts buses 7..18 off


def write(tmp_path: Path, devices: str, steps: int = 10, extra: str = "", feeder: str = "ieee33") -> Path:
    """A scenario of `steps` 1 s steps at nominal constant load with the given devices (YAML list items)."""
    path = tmp_path / "devices.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: devices-physics
        seed: 1
        clock: {{start: "2025-06-21T18:00:00", duration: {steps}s, step: 1s}}
        grid: {{feeder: {feeder}}}
        loads: {{profile: constant, scale: 1.0, noise: 0}}
        devices:
        """) + textwrap.indent(textwrap.dedent(devices), "  ") + textwrap.dedent(extra), encoding="utf-8")
    return path


def run(path: Path, realtime: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the scenario; its time series and events."""
    out = path.parent / "out"
    outcome = run_scenario(load_scenario(path), out, options=RunOptions(realtime=realtime))
    assert outcome.status == "ok", outcome.message
    return pd.read_parquet(out / "timeseries.parquet"), pd.read_csv(out / "events.csv")


@functools.lru_cache(maxsize=1)
def _case33bw() -> pp.pandapowerNet:
    return pn.case33bw()  # 2-3 s a call: built once


def case33(**changes) -> pp.pandapowerNet:
    """pandapower's case33bw at nominal load, solved after `changes` (the reference)."""
    net = copy.deepcopy(_case33bw())
    if "source_vm" in changes:
        net.ext_grid["vm_pu"] = changes["source_vm"]
    if "shunt" in changes:
        bus, mvar = changes["shunt"]
        pp.create_shunt(net, bus - 1, q_mvar=-mvar, p_mw=0.0)
    pp.runpp(net)
    return net


def test_a_feeder_head_regulator_moves_the_bus_voltages_with_its_tap(tmp_path):
    # IEEE 33 at nominal load has 0.950 pu at bus 6: the regulator (auto, 1.0 +- 0.01 pu) taps up until in band
    ts, _ = run(write(tmp_path, f"""\
        - name: reg1
          kind: regulator
          bus: 6
          modbus: {{port: {free_port()}}}
          emulate: true
          stub_args: {{mode: auto, delay: 0.05, tick: {TICK}}}
        """, steps=30))
    taps, v6 = ts["reg1.tap"].to_numpy(), ts["bus.6.vm_pu"].to_numpy()
    assert v6[0] == pytest.approx(case33().res_bus.vm_pu.iloc[5], abs=1e-6)  # tap 0 at the start
    refs = {t: case33(source_vm=1 + t * 0.625 / 100).res_bus.vm_pu.to_numpy() for t in set(taps.tolist())}
    for k in range(1, len(ts)):  # the grid at step k has the tap the device reported at step k-1
        assert v6[k] == pytest.approx(refs[taps[k - 1]][5], abs=1e-6), k
    assert taps[-1] >= 7 and 0.99 <= v6[-1] <= 1.01  # 0.625 % a tap: at least 7 taps to reach the band


@pytest.mark.slow
def test_an_oltc_controller_moves_the_transformers_tap_changer(tmp_path):
    net = pn.example_simple()  # HV/MV trafo 0 with a tap changer on its HV side (-9..9, 1.5 % a tap)
    pp.to_json(net, str(tmp_path / "simple.json"))
    lv = int(net.trafo.lv_bus.iloc[0])
    ts, _ = run(write(tmp_path, f"""\
        - name: reg1
          kind: regulator
          bus: {lv}
          trafo: 0
          modbus: {{port: {free_port()}}}
          emulate: true
          stub_args: {{mode: auto, v_set: 1.06, bandwidth: 0.01, delay: 0.05, tick: {TICK}, tap_step_pct: 1.5, tap_min: -9, tap_max: 9}}
        """, steps=20, feeder="simple.json"))
    taps, positions = ts["reg1.tap"].to_numpy(), ts["trafo.0.tap"].to_numpy()
    assert positions[1:].tolist() == (-taps[:-1]).tolist()  # tap up on the HV side is a lower ratio: MV rises
    got = ts[[f"bus.{b}.vm_pu" for b in net.bus.index]].to_numpy()
    for k in sorted({0, len(ts) // 2, len(ts) - 1}):
        ref = copy.deepcopy(net)
        ref.trafo.at[0, "tap_pos"] = positions[k]
        pp.runpp(ref)
        np.testing.assert_allclose(got[k], ref.res_bus.vm_pu.to_numpy(), atol=1e-6)
    assert taps[-1] > 0 and got[-1, lv] > got[0, lv] + 0.01


def test_a_capacitor_bank_switches_a_shunt(tmp_path):
    # bus 30 sits at 0.916 pu, under the bank's 0.97 pu switch-in voltage: it switches its 4 x 150 kvar in
    ts, _ = run(write(tmp_path, f"""\
        - name: cap1
          kind: capbank
          bus: 30
          modbus: {{port: {free_port()}}}
          emulate: true
          stub_args: {{mode: auto, delay: 0.05, steps: 4, kvar_per_step: 150, tick: {TICK}}}
        """, steps=20))
    steps, shunt = ts["cap1.step"].to_numpy(), ts["cap.0.step"].to_numpy()
    assert shunt[1:].tolist() == steps[:-1].tolist() and steps[-1] == 4
    refs = {n: case33(shunt=(30, 0.15 * n)) for n in set(shunt.tolist())}
    for k in range(len(ts)):
        ref = refs[shunt[k]]
        assert ts["grid.ext_q_mvar"].iloc[k] == pytest.approx(ref.res_ext_grid.q_mvar.sum(), abs=1e-6), k
        assert ts["bus.30.vm_pu"].iloc[k] == pytest.approx(ref.res_bus.vm_pu.iloc[29], abs=1e-6), k
    v30 = ts["bus.30.vm_pu"].iloc[-2]  # the voltage the bank was fed at the last step
    assert ts["cap1.q_mvar"].iloc[-1] == pytest.approx(0.6 * v30 ** 2, rel=1e-3)  # Q = 4 x 150 kvar x V^2


RECLOSER = """\
- name: rec1
  kind: recloser
  line: 6
  modbus: {{port: {port}}}
  emulate: true
  stub_args: {{pickup: {pickup}, trips_to_lockout: 1, tick: {tick}}}
"""


def test_a_recloser_trips_on_the_grids_line_current_and_locks_out(tmp_path):
    # nominal load: 58 A on line 6, under the 80 A pickup; from step 4 the loads behind it double
    events = """\
        events:
          - {kind: load_step, at: 4s, duration: 6s, bus: [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18], factor: 2.0}
        """
    ts, _ = run(write(tmp_path, RECLOSER.format(port=free_port(), pickup=80, tick=TICK), extra=events))
    i6 = ts["line.6.i_ka"].to_numpy()
    assert i6[:4] == pytest.approx(case33().res_line.i_ka.iloc[5], abs=1e-6)  # 58 A
    assert i6[4] > 0.080  # the grid's current crosses the pickup at step 4; the device is fed it in step 4
    assert ts["rec1.tripped"].tolist()[3:6] == [0, 1, 1] and ts["rec1.lockout"].iloc[-1] == 1
    assert (i6[5:] == 0).all()  # tripped in step 4's exchange, open from step 5 on: no current
    assert ts[[f"bus.{b}.vm_pu" for b in DOWNSTREAM_OF_LINE_6]].iloc[5:].isna().all().all()
    cut = case33().load.set_index("bus").p_mw  # every load behind line 6, doubled beyond bus 7
    lost = cut.loc[6] + 2.0 * cut.loc[7:17].sum()
    assert ts["grid.unserved_p_mw"].iloc[5:].to_numpy() == pytest.approx(lost, abs=1e-9)


def scada(port: int, until_step: int, writes: list[tuple[int, bool]], seen: dict) -> threading.Thread:
    """An independent SCADA master: once the grid server shows `until_step`, writes the coils, then polls the
    step number and coil 6 until the server closes."""

    def step(client: ModbusTcpClient) -> float | None:
        rr = client.read_input_registers(60012, count=2, device_id=1)
        return None if rr.isError() else client.convert_from_registers(rr.registers, client.DATATYPE.FLOAT32)

    def work() -> None:
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
        deadline = time.monotonic() + 30
        while not client.connect() and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            while (k := step(client)) is None or k < until_step:
                time.sleep(0.005)
            seen["at"] = k
            seen["writes"] = [client.write_coil(coil, value, device_id=1) for coil, value in writes]
            while time.monotonic() < deadline and (k := step(client)) is not None:
                seen["last"], seen["coil6"] = k, client.read_coils(6, count=1, device_id=1).bits[0]
                time.sleep(0.005)
        except Exception:  # noqa: BLE001 - the server closing ends the polling
            pass
        finally:
            client.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_scada_breaker_command_through_the_grid_server_opens_the_line_at_the_next_step(tmp_path):
    server, seen = free_port(), {}
    thread = scada(server, 3, [(6, False), (7, False)], seen)
    path = write(tmp_path, "[]\n", steps=12, extra=f"grid_server: {{port: {server}, breakers: [6]}}\n")
    ts, ev = run(path, realtime=0.2)
    thread.join(timeout=20)
    k = int(seen["at"])
    allowed, refused = seen["writes"]
    assert not allowed.isError() and refused.isError() and refused.exception_code == 2  # line 7: not allowed
    i6 = ts["line.6.i_ka"].to_numpy()
    assert (i6[: k + 1] > 0).all() and (i6[k + 1:] == 0).all()  # written while step k showed: acts at k+1
    assert seen["last"] == 11 and seen["coil6"] is False  # the last step was visible before the server closed
    assert ("guard_blocked", "scada.line.7.closed") in set(zip(ev["kind"], ev["target"]))


@pytest.mark.slow
def test_a_scada_breaker_command_goes_through_the_recloser_acting_for_the_line(tmp_path):
    server, seen = free_port(), {}
    thread = scada(server, 3, [(6, False)], seen)
    devices = RECLOSER.format(port=free_port(), pickup=1000, tick=TICK)
    ts, _ = run(write(tmp_path, devices, steps=10, extra=f"grid_server: {{port: {server}, breakers: [6]}}\n"),
                 realtime=0.2)
    thread.join(timeout=20)
    k = int(seen["at"])
    assert not seen["writes"][0].isError()
    closed, i6 = ts["rec1.closed"].to_numpy(), ts["line.6.i_ka"].to_numpy()
    # the bridge hands the command to the recloser in its step k+1; the grid takes the open breaker at k+2
    assert closed[: k + 1].tolist() == [1] * (k + 1) and (closed[k + 1:] == 0).all()
    assert (i6[: k + 2] > 0).all() and (i6[k + 2:] == 0).all()
