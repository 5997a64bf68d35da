"""Timing through a device in the loop: setpoints the controller issues at step k reach the grid at k+1.

The rule (docs/hil.md, "Timing"): after a step's writes the bridge waits for one whole firmware
tick of the device (its `Heartbeat` moves) before it reads, so what the grid takes at k+1 is the
device's answer to the writes of step k. Checked against a firmware stub on 127.0.0.1 with an
independent pymodbus client reading the same registers, and in whole runs against the same
scenario without the device (where the setpoint reaches the grid model directly at k+1).
"""

from __future__ import annotations

import asyncio
import gc
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymodbus.client import AsyncModbusTcpClient

from cosim.assembly import RunOptions
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from hil import MAPS_DIR
from hil.reading import read_points
from hil.registers import load_map
from hil_support import Stub, free_port
from test_hil_bridge import command, make_link

INVERTER = load_map(MAPS_DIR / "inverter.yaml")
GRID = {"pv1.p_avail_mw": 0.8, "bus.18.vm_pu": 1.02}
TICK = "0.05"
Q_LSB = 0.001  # Mvar: VArWMaxPct has 0.1 % resolution of the generator's 1 MW (2 MW in the runs: 2 kvar)


def test_every_cycle_reads_the_devices_answer_to_its_own_writes():
    stub = Stub("inverter", "--ramp-rate", "100000", "--tick", TICK)

    async def main():
        link = make_link(stub.port)
        other = AsyncModbusTcpClient("127.0.0.1", port=stub.port, timeout=1, retries=0)  # an independent master
        try:
            await link.start()
            assert await other.connect()
            await link.cycle(GRID)  # the very first exchange already shows the device fed: no phantom 0 W
            seen = await read_points(other, INVERTER, ["W", "VAr", "PAvail"])
            assert seen["PAvail"] == pytest.approx(0.8e6) and seen["W"] == pytest.approx(0.8e6, abs=100)
            assert link.grid_setpoints()["pv1.p_limit_mw"] == pytest.approx(0.8, abs=1e-4)
            for p_mw, q_mvar in [(0.3, -0.2), (0.55, 0.1), (0.55, -0.35), (0.8, 0.0)]:
                command(link, "pv1.p_limit_mw", p_mw)
                command(link, "pv1.q_set_mvar", q_mvar)
                await link.cycle(GRID)  # one step: write, one firmware tick, read
                delivered = link.grid_setpoints()
                assert delivered["pv1.p_limit_mw"] == pytest.approx(p_mw, abs=1e-4)  # this step's setpoint
                assert delivered["pv1.q_set_mvar"] == pytest.approx(q_mvar, abs=Q_LSB)
                seen = await read_points(other, INVERTER, ["W", "VAr", "WMaxLimPct", "VArWMaxPct"])
                assert seen["WMaxLimPct"] == pytest.approx(100 * p_mw) and seen["VArWMaxPct"] == pytest.approx(100 * q_mvar)
                assert seen["W"] / 1e6 == pytest.approx(delivered["pv1.p_limit_mw"], abs=1e-4)  # the device's own W
                assert seen["VAr"] / 1e6 == pytest.approx(delivered["pv1.q_set_mvar"], abs=1e-4)
            assert "device_no_tick" not in {kind for kind, _ in link.notes}
        finally:
            other.close()
            link.close()

    try:
        asyncio.run(main())
    finally:
        stub.stop()


def droop_scenario(tmp_path: Path, device: bool, steps: int = 15) -> Path:
    """IEEE 33 at noon, volt-var droop on 2 MW of PV at bus 18, with or without inverter inv1 acting for it."""
    dev = textwrap.dedent(f"""\
        devices:
          - name: inv1
            kind: inverter
            bus: 18
            modbus: {{port: {free_port()}, timeout: 0.3}}
            emulate: true
            stub_args: {{ramp_rate: 100000, tick: {TICK}}}
        """) if device else ""
    text = textwrap.dedent(f"""\
        name: timing
        seed: 1
        clock: {{start: "2025-06-21T12:00:00", duration: {steps}s, step: 1s}}
        grid: {{feeder: ieee33}}
        loads: {{profile: residential, scale: 0.6}}
        generators:
          - {{name: pv1, kind: pv, bus: 18, p_mw: 2.0, cloudiness: 0.0}}
        controller: {{kind: droop, params: {{v: [0.95, 0.99, 1.01, 1.05]}}}}
        """) + dev
    path = tmp_path / ("device.yaml" if device else "direct.yaml")
    path.write_text(text, encoding="utf-8")
    return path


def run(path: Path, out: Path, realtime: float | None) -> pd.DataFrame:
    outcome = run_scenario(load_scenario(path), out, options=RunOptions(realtime=realtime))
    assert outcome.status == "ok", outcome.message
    return pd.read_parquet(out / "timeseries.parquet")


def settled_at(q: np.ndarray, tol: float) -> int:
    """The first step from which the series stays within `tol` of its final value."""
    off = np.abs(q - q[-1]) > tol
    return int(np.nonzero(off)[0][-1] + 1) if off.any() else 0


@pytest.fixture(scope="module")
def direct(tmp_path_factory) -> pd.DataFrame:
    tmp = tmp_path_factory.mktemp("direct")
    return run(droop_scenario(tmp, device=False), tmp / "out", None)


@pytest.mark.parametrize("realtime", [None, 0.1], ids=["unpaced", "paced"])
def test_the_droop_loop_through_the_device_moves_like_the_loop_without_it(tmp_path, direct, realtime):
    through = run(droop_scenario(tmp_path, device=True), tmp_path / "out", realtime)
    p_avail = through["pv1.p_avail_mw"].to_numpy()
    assert through["pv1.p_mw"].to_numpy() == pytest.approx(p_avail, abs=2e-4)  # never a phantom 0 W step
    assert through["inv1.stale"].sum() == 0
    q_dev, q_direct = through["pv1.q_mvar"].to_numpy(), direct["pv1.q_mvar"].to_numpy()
    assert q_direct[0] == 0 and q_direct[1] < -0.1  # the droop acts from step 1 on (step 0 has no setpoint yet)
    assert q_dev == pytest.approx(q_direct, abs=2 * Q_LSB)  # step for step, to the register resolution
    assert abs(settled_at(q_dev, 4 * Q_LSB) - settled_at(q_direct, 4 * Q_LSB)) <= 1
    assert through["bus.18.vm_pu"].to_numpy() == pytest.approx(direct["bus.18.vm_pu"].to_numpy(), abs=2e-4)
    if realtime is not None:  # the paced run froze its heap for the run (docs/hil.md, Real time) and unfroze it
        metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
        assert {"rt_gc_pause_max_ms", "rt_gc_full_collections", "rt_worst_step_gc_ms"} <= set(metrics)
        assert gc.get_freeze_count() == 0 and (through["bridge.step_ms"] > 0).all()
