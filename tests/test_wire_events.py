"""Scheduled `events:` that travel on a device's Modbus wire, and the `flood` kind (whole runs, emulated inverter).

An fdi on `inv1.p_mw` is forged in flight by the device's proxy (the grid keeps the device's
real output; labelled as on the simulated channel), a command_injection on a setpoint the
inverter acts for is a rogue client's write (`--read-only` keeps it off), a flood is a bounded
loopback client that stops by itself, and targets the wire cannot carry are refused at validate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.assembly import RunOptions
from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from hil.flood import Flooder
from hil_support import Stub, inverter_scenario, wait_for

LABELS = ["label.attack", "label.disruption", "label.kind", "label.event"]


def _scenario(tmp_path: Path, events: str, steps: int = 20, name: str = "wire.yaml", device: str = "") -> Path:
    text = inverter_scenario("wire-events", f"{steps}s", "{kind: none}",
                             device="stub_args: {ramp_rate: 1000}\n" + device) + "events:\n" + events
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(path: Path, out: Path, **options) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    outcome = run_scenario(load_scenario(path), out, options=RunOptions(**options))
    assert outcome.status == "ok", outcome.message
    return (pd.read_parquet(out / "timeseries.parquet"), pd.read_csv(out / "events.csv"),
            json.loads((out / "metrics.json").read_text()))


def test_an_fdi_on_a_device_signal_is_forged_on_the_wire_and_labelled_as_on_the_channel(tmp_path):
    wire = _scenario(tmp_path, "  - {kind: fdi, at: 5s, duration: 5s, target: inv1.p_mw, scale: 0.5, bias: -0.1}\n")
    ts, events, _ = _run(wire, tmp_path / "wire")
    seen, true, avail = (ts[c].to_numpy() for c in ("inv1.p_mw", "pv1.p_mw", "pv1.p_avail_mw"))
    window = np.zeros(len(ts), bool)
    window[5:10] = True
    # what the bridge (and a controller) saw: the device's output forged in flight, only during the event
    assert seen[window] == pytest.approx(0.5 * avail[window] - 0.1, abs=2e-3)
    assert seen[~window][1:] == pytest.approx(avail[~window][1:], abs=2e-3)
    assert true == pytest.approx(avail, abs=2e-3)  # the grid's pv1 kept the device's real output throughout
    assert "seen.inv1.p_mw" not in ts  # not on the simulated channel as well
    assert not any(events["kind"].str.startswith("wire_"))  # labelled by the schedule, not as a wire: entry
    # the same event on a grid signal (the simulated channel) gets the same labels and events.csv row
    channel = _scenario(tmp_path, "  - {kind: fdi, at: 5s, duration: 5s, target: pv1.p_mw, scale: 0.5, bias: -0.1}\n",
                        name="channel.yaml")
    ts_c, events_c, _ = _run(channel, tmp_path / "channel")
    assert "seen.pv1.p_mw" in ts_c
    pd.testing.assert_frame_equal(ts[LABELS], ts_c[LABELS])
    assert ts["label.attack"].tolist() == window.astype(float).tolist()
    row, row_c = (e[e["kind"] == "fdi"].iloc[0] for e in (events, events_c))
    for key in ("start", "end", "kind", "id", "path", "params"):
        if key != "params":
            assert row[key] == row_c[key], key
    assert json.loads(row["params"]) == {**json.loads(row_c["params"]), "target": "inv1.p_mw"}


def test_a_command_injection_on_a_setpoint_the_inverter_acts_for_is_a_rogue_write(tmp_path):
    path = _scenario(tmp_path, "  - {kind: command_injection, at: 5s, duration: 3s, target: pv1.p_limit_mw, "
                               "value: 0.3}\n", steps=14)
    ts, events, metrics = _run(path, tmp_path / "out")
    log = (tmp_path / "out" / "devices" / "inv1.log").read_text(encoding="utf-8")
    assert re.search(r"write applied: .*WMaxLimPct", log)  # the device took the rogue client's write
    rows = set(zip(events["kind"], events["target"]))
    assert {("command_injection", "pv1.p_limit_mw"), ("device_write_unexpected", "inv1.WMaxLimPct")} <= rows
    assert metrics["device_write_unexpected"] >= 1
    assert ts["inv1.w_max_lim_pct"].iloc[4] == pytest.approx(100.0)
    assert ts["inv1.w_max_lim_pct"].iloc[7] == pytest.approx(30.0)  # 0.3 MW of the 1 MW nameplate
    assert ts["pv1.p_mw"].iloc[9] == pytest.approx(0.3, abs=2e-3)  # ... and the grid got what the device did
    assert ts["label.kind"].iloc[5:8].tolist() == ["command_injection"] * 3

    ts, events, metrics = _run(path, tmp_path / "read-only", read_only=True)
    log = (tmp_path / "read-only" / "devices" / "inv1.log").read_text(encoding="utf-8")
    assert "write applied" not in log  # --read-only kept the attack's writes off the device too
    blocked = events[(events["kind"] == "guard_blocked") & (events["target"] == "inv1.WMaxLimPct")]
    assert blocked[["start", "end"]].values.tolist() == [["2025-06-21T12:00:05", "2025-06-21T12:00:08"]]  # 3 steps
    assert blocked["detail"].str.contains("read-only").all()
    assert (ts["inv1.w_max_lim_pct"] == 100.0).all()


@pytest.mark.slow
def test_a_flood_slows_the_device_during_its_window_and_stops_at_its_end(tmp_path):
    path = _scenario(tmp_path, "  - {kind: flood, at: 6s, duration: 6s, target: inv1, rate_per_s: 2000}\n", steps=20)
    ts, events, metrics = _run(path, tmp_path / "out", realtime=0.5)
    rtt = ts["inv1.rtt_ms"].to_numpy()
    window = ts["label.kind"].eq("flood").to_numpy()
    assert window.tolist() == [6 <= k < 12 for k in range(20)]
    assert np.median(rtt[window]) > np.median(rtt[~window])  # the device answered the bridge later
    started = events[events["kind"] == "flood_started"]
    stopped = events[events["kind"] == "flood_stopped"]
    t0 = pd.Timestamp("2025-06-21T12:00:00")
    assert started["start"].map(pd.Timestamp).tolist() == [t0 + pd.Timedelta(seconds=6)]
    assert stopped["start"].map(pd.Timestamp).tolist() == [t0 + pd.Timedelta(seconds=12)]  # stopped at the end
    sent = int(re.match(r"(\d+) requests sent", stopped["detail"].iloc[0]).group(1))
    assert sent % 2000 == 0 and 2000 <= sent <= 8000  # bursts of one second's 2000 over about 3 wall seconds
    assert ts["inv1.stale"].iloc[12:].sum() == 0 and np.isfinite(rtt[12:]).all()  # the stub answers after
    assert metrics["bridge_rtt_p99_ms"] > metrics["bridge_rtt_p50_ms"]


def test_a_flood_client_stops_by_itself_and_only_floods_loopback():
    stub = Stub("inverter")
    try:
        f = Flooder(stub.host, stub.port, rate_per_s=500, max_s=0.3, fc=3, address=40000, count=2)
        f.start()
        assert wait_for(lambda: not f.running, 5)  # nobody called stop: its own time bound ended it
        assert f.sent == 500 and f.answered == 500  # one second's burst, the next would start after 0.3 s
        assert stub.alive
    finally:
        stub.stop()
    with pytest.raises(ValueError, match="loopback"):
        Flooder("192.0.2.10", 502, rate_per_s=10, max_s=1)


@pytest.mark.parametrize("events, expected", [
    ("  - {kind: flood, at: 2s, duration: 2s, target: inv1, rate_per_s: 100}\n",
     r"events\[0\]\.target.*cannot flood 'inv1': it is at 192\.0\.2\.10, not a loopback address"),
    ("  - {kind: flood, at: 2s, duration: 2s, target: grid_server, rate_per_s: 100}\n",
     r"events\[0\]\.target.*cannot flood 'grid_server': it is neither a device nor grid_server"),
    ("  - {kind: flood, at: 2s, duration: 2s, target: inv1, rate_per_s: 5000}\n", r"rate_per_s.*2000"),
    ("  - {kind: fdi, at: 2s, duration: 2s, target: [inv1.p_mw, bus.18.vm_pu], bias: 0.1}\n",
     r"events\[0\]\.target.*mix.*'bus\.18\.vm_pu'"),
    ("  - {kind: timestamp_skew, at: 2s, duration: 2s, target: inv1.p_mw, skew: 1s}\n",
     r"events\[0\]\.target.*timestamp_skew cannot act on a device's Modbus wire"),
    ("  - {kind: fdi, at: 2s, duration: 2s, target: inv1.p_mw, ramp: 0.1}\n", r"events\[0\]\.ramp.*scale and bias"),
    ("  - {kind: fdi, at: 2s, duration: 2s, target: inv1.nothing, bias: 0.1}\n",
     r"events\[0\]\.target.*matches nothing device inv1's wire carries.*inv1\.p_mw"),
])
def test_events_the_wire_cannot_carry_are_refused_at_validate(tmp_path, cli, events, expected):
    remote = "allow_remote: true\n" if "192" in expected else ""
    path = _scenario(tmp_path, events, steps=10, device=remote)
    if remote:
        text = path.read_text(encoding="utf-8").replace("emulate: true", "emulate: false")
        path.write_text(re.sub(r"modbus: \{port: \d+", "modbus: {host: 192.0.2.10, port: 502", text), encoding="utf-8")
    code, output, _ = cli("validate", path)
    assert code == 2, output
    assert re.search(expected, " ".join(output.split())), output
    assert "Traceback" not in output
