"""`cosim run --capture-modbus`: the Modbus traffic of a HIL run, one row per request / response, with attack labels.

Whole runs over 127.0.0.1 with an emulated inverter (firmware stub) behind the wire attacks' proxy:
the capture has a row for every request the bridge's client counted, one read of the inverter's
measurements per step, rows labelled with an attack exactly inside its window and on its traffic,
the forged values the proxy put in the answers, and it is written (flagged incomplete) when the run
fails part-way; a device on a serial line (RTU, a socat pair) is captured like one over TCP. Register addresses and scale factors come from the shipped map, not the capture.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.assembly import RunOptions
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from hil.registers import load_map
from hil_support import REPO, inverter_scenario

MAP = load_map(REPO / "hil" / "maps" / "inverter.yaml")
W, W_SF, WMAX_LIM_PCT = (MAP[name].address for name in ("W", "W_SF", "WMaxLimPct"))


def _scenario(tmp_path: Path, steps: int, wire: str, events: str = "") -> Path:
    text = inverter_scenario("capture", f"{steps}s", "{kind: none}",
                             device="stub_args: {ramp_rate: 1000}\nwire:\n" + wire)
    path = tmp_path / "capture.yaml"
    path.write_text(text + (f"events:\n{events}" if events else ""), encoding="utf-8")
    return path


def _run(path: Path, out: Path, **kwargs) -> tuple[object, pd.DataFrame, dict]:
    outcome = run_scenario(load_scenario(path), out, options=RunOptions(capture_modbus=True), **kwargs)
    capture = pd.read_parquet(out / "modbus_capture.parquet")
    return outcome, capture, json.loads((out / "modbus_capture.json").read_text())


def _reads_of(rows: pd.DataFrame, address: int) -> pd.Series:
    """Rows of reads whose registers include `address`."""
    return rows["function_code"].isin([3, 4, 23]) & (rows["address"] <= address) & (
        rows["address"] + rows["count"] > address)


def test_a_wire_fdi_and_a_rogue_write_are_captured_and_labelled(tmp_path):
    path = _scenario(tmp_path, 20, "  - {kind: fdi, at: 5s, duration: 5s, point: W, scale: 0.5}\n",
                     "  - {kind: command_injection, at: 12s, duration: 3s, target: pv1.p_limit_mw, value: 0.3}\n")
    outcome, cap, card = _run(path, tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    bridge = cap[cap["master"] == "bridge"]
    requests = bridge[bridge["direction"] == "request"]
    assert len(requests) == metrics["bridge_requests"] > 0  # every request the client counted, once
    assert (bridge["direction"] == "response").sum() == len(requests)  # each answered
    assert card["complete"] and card["rows"] == len(cap) and card["requests_by_master"]["bridge"] == len(requests)

    # one read of the measurements (W among them) per step, and one more on connecting (docs/hil.md, Faults),
    # labelled exactly inside the fdi's window
    reads_w = requests[_reads_of(requests, W)]
    assert reads_w["step"].tolist() == [0, *range(20)]
    window = bridge["step"].between(5, 9) & _reads_of(bridge, W)
    assert (bridge.loc[window, "label.attack"] == 1).all() and window.sum() == 10  # 5 requests + 5 answers
    assert set(bridge.loc[window, "label.kind"]) == {"wire_fdi"}
    assert set(bridge.loc[window, "label.target"]) == {"wire_fdi:inv1.W"}
    assert (bridge.loc[~window, "label.attack"] == 0).all() and (bridge.loc[~window, "label.kind"] == "").all()

    # the captured answers carry the forged W: half of what the device really produced, which the grid's pv1 takes
    # one step later (docs/hil.md, Devices in the physics); after the injection the device holds 30 %
    answers = bridge[(bridge["direction"] == "response") & _reads_of(bridge, W)].groupby("step").last()
    regs = answers.apply(lambda r: (int(r["values"][W - r["address"]]), int(r["values"][W_SF - r["address"]])), axis=1)
    w_mw = np.array([np.int16(np.uint16(v)) * 10.0 ** np.int16(np.uint16(sf)) / 1e6 for v, sf in regs])
    true = ts["pv1.p_mw"].to_numpy()[1:]  # the device's real output of steps 0..18
    inside = np.isin(np.arange(19), range(5, 10))
    assert w_mw[:19][inside] == pytest.approx(0.5 * true[inside], abs=2e-3)
    assert w_mw[:19][~inside] == pytest.approx(true[~inside], abs=2e-3)
    assert w_mw[18] == pytest.approx(0.3, abs=2e-3)
    assert w_mw == pytest.approx(ts["inv1.p_mw"].to_numpy(), abs=1e-9)  # the very answer the bridge decoded

    # the rogue client's own frames, only during the injection, with the 30 % (0.3 of 1 MW, WMaxLimPct_SF -1)
    rogue = cap[cap["master"] == "rogue"]
    assert set(rogue["step"]) == {12, 13, 14}
    assert (rogue["label.kind"] == "command_injection").all()
    assert set(rogue["label.target"]) == {"command_injection:pv1.p_limit_mw"}
    writes = rogue[(rogue["direction"] == "request") & (rogue["write_address"] == WMAX_LIM_PCT)]
    assert writes["step"].tolist() == [12, 13, 14] and all(list(v) == [300] for v in writes["values"])
    assert (cap["sim_time"] == pd.Timestamp("2025-06-21T12:00:00") + pd.to_timedelta(cap["step"], "s")).all()


def test_delay_and_drop_show_in_latency_and_unanswered_requests_inside_their_windows(tmp_path):
    path = _scenario(tmp_path, 14, "  - {kind: delay, at: 3s, duration: 3s, seconds: 0.05}\n"
                                   "  - {kind: drop, at: 8s, duration: 2s, rate: 1.0}\n")
    outcome, cap, card = _run(path, tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    requests = cap[cap["direction"] == "request"]
    assert len(requests) == metrics["bridge_requests"]
    unanswered = requests[requests["latency_ms"].isna()]
    assert len(unanswered) == card["unanswered_requests"] == metrics["bridge_timeouts"] > 0
    assert set(unanswered["step"]) <= {8, 9} and (unanswered["label.kind"] == "wire_drop").all()
    delayed = cap["step"].between(3, 5)
    assert (cap.loc[delayed, "label.kind"] == "wire_delay").all()
    assert (cap.loc[delayed, "latency_ms"] >= 50.0).all()  # the proxy held each request 0.05 s before relaying it
    dropped = cap["step"].between(8, 9)
    assert (cap.loc[dropped, "label.kind"] == "wire_drop").all() and (cap.loc[dropped, "direction"] == "request").all()
    assert (cap.loc[~(delayed | dropped), "label.attack"] == 0).all()
    assert card["rows_by_kind"] == {"wire_delay": int(delayed.sum()), "wire_drop": int(dropped.sum())}


def test_a_run_that_fails_part_way_still_writes_its_capture_flagged_incomplete(tmp_path):
    path = _scenario(tmp_path, 20, "  - {kind: fdi, at: 5s, duration: 5s, point: W, scale: 0.5}\n")

    def stop_at_six(n: int) -> None:
        if n == 6:
            raise RuntimeError("the operator's tool crashed")

    outcome, cap, card = _run(path, tmp_path / "out", on_step=stop_at_six)
    assert outcome.status == "failed"
    assert card["complete"] is False and card["run_status"] == "failed" and "crashed" in card["message"]
    assert card["rows"] == len(cap) > 0 and cap["step"].max() < 19
    assert (cap.loc[cap["step"] < 5, "label.attack"] == 0).all()


def test_capture_of_a_scenario_without_devices_is_refused(tmp_path, cli):
    path = tmp_path / "plain.yaml"
    path.write_text('name: plain\nclock: {start: "2025-06-21T12:00:00", duration: 5s, step: 1s}\n'
                    "grid: {feeder: ieee33}\nloads: {profile: constant}\n", encoding="utf-8")
    code, output, _ = cli("run", path, "--capture-modbus", "--out", tmp_path / "out", "-q")
    assert code == 2, output
    text = " ".join(output.split())
    assert str(path) in text and "no `devices:` block" in text and "Traceback" not in output
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("socat") is None, reason="an emulated RTU device needs socat (make socat)")
def test_an_rtu_device_is_captured_too(tmp_path):
    text = inverter_scenario("capture-rtu", "8s", "{kind: droop}", device="stub_args: {ramp_rate: 1000}\n")
    path = tmp_path / "rtu.yaml"
    path.write_text(re.sub(r"modbus: \{port: \d+, ", "modbus: {transport: rtu, ", text), encoding="utf-8")
    outcome, cap, card = _run(path, tmp_path / "out")
    assert outcome.status == "ok", outcome.message
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    requests = cap[cap["direction"] == "request"]
    assert len(requests) == metrics["bridge_requests"] == (cap["direction"] == "response").sum()
    assert (cap["transaction_id"] == 0).all() and (cap["unit_id"] == 1).all()  # RTU frames carry no transaction id
    assert requests.loc[_reads_of(requests, W), "step"].tolist() == [0, *range(8)]
    assert card["complete"] and card["attack_rows"] == 0
