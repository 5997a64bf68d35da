"""`cosim run --live`: a real run serves its steps as Server-Sent Events on 127.0.0.1, read here with urllib
and compared with the run's timeseries.parquet; the page rendered by a real headless Chromium (slow)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import networkx as nx
import pandapower.networks as pn
import pytest

from cosim.grid.feeders import load_feeder
from cosim.grid.model import GridModel
from cosim.live.layout import one_line
from cosim.results import read_timeseries
from tests.conftest import REPO
from tests.hil_support import free_port, inverter_scenario, wait_for

# IEEE 33, 1-min steps with noisy residential loads and PV: every step's voltages differ from the last
SCENARIO = """\
name: live
seed: 11
clock: {{start: "2025-06-21T10:00:00", duration: {duration}, step: 1min}}
grid: {{feeder: ieee33}}
loads: {{profile: residential, noise: 0.05}}
generators:
  - {{name: pv1, kind: pv, bus: 18, p_mw: 1.0}}
"""
PACE = "0.004"  # wall s per simulated s: 0.24 s per step, so a reader sees most steps one by one


class LiveRun:
    """`cosim run SCENARIO --live` in a subprocess (always ended); `url` is the one it printed."""

    def __init__(self, scenario: Path, out: Path, *extra: str, pace: str = PACE) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "cosim", "run", str(scenario), "--out", str(out), "-q",
                                      "--realtime", pace, "--live", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.first = self.proc.stdout.readline()
        assert self.first.startswith("live view: http://127.0.0.1:"), self.first + self.proc.stderr.read()
        self.url = self.first.split()[-1]

    def wait(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, self.first + out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def sse(url: str):
    """(event, data) of each Server-Sent Event of `url` until the server closes the stream."""
    with urllib.request.urlopen(url, timeout=60) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        event, data = "message", []
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif not line and data:
                yield event, json.loads("\n".join(data))
                event, data = "message", []


@pytest.fixture
def live_run(tmp_path, write_scenario):
    runs: list[LiveRun] = []

    def start(text: str, *extra: str, pace: str = PACE) -> LiveRun:
        run = LiveRun(write_scenario(text), tmp_path / "out", *extra, pace=pace)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()


@pytest.mark.parametrize("feeder", ["ieee33", "ieee69"])
def test_radial_feeder_is_drawn_as_a_tree(feeder):
    f = load_feeder(feeder, REPO)
    topo = one_line(f)
    at = {b["id"]: (b["x"], b["y"]) for b in topo["buses"]}
    assert topo["layout"] == "tree" and len(at) == len(f.net.bus) and len(set(at.values())) == len(at)
    assert at[topo["sources"][0]] == (0.0, 0.0)
    closed = [ln for ln in topo["lines"] if ln["base"]]
    assert len(closed) == len(at) - 1  # radial: n - 1 closed lines
    for ln in closed:  # each closed line joins a bus to one a level further from the substation
        assert abs(at[ln["from"]][0] - at[ln["to"]][0]) == 1
    # x is the number of lines between the bus and the substation (networkx shortest paths)
    graph = nx.Graph([(ln["from"], ln["to"]) for ln in closed])
    depth = nx.single_source_shortest_path_length(graph, topo["sources"][0])
    assert all(at[b][0] == depth[b] for b in at)


def test_streamed_steps_equal_the_recorded_rows(live_run, tmp_path):
    run = live_run(SCENARIO.format(duration="20min"))
    topo = json.load(urllib.request.urlopen(run.url + "topology", timeout=30))
    snaps, end = [], None
    for event, data in sse(run.url + "events"):
        if event == "end":
            end = data
            break
        if "step" in data:
            snaps.append(data)
    code, out, err = run.wait()
    assert code == 0, err
    assert end == {"status": "ok"}
    buses = [b["id"] for b in topo["buses"]]
    assert sorted(buses) == list(range(1, 34)) and len(topo["lines"]) == 37
    ts = read_timeseries(tmp_path / "out" / "timeseries.parquet")
    steps = [s["step"] for s in snaps]
    assert len(set(steps)) >= 3 and steps == sorted(steps) and steps[-1] == len(ts) - 1 == 19
    for snap in snaps:
        row = ts.iloc[snap["step"]]
        assert snap["vm"] == [row[f"bus.{b}.vm_pu"] for b in buses]
        assert snap["time"].startswith(str(row["time"]).replace(" ", "T"))
        # the history: min / max bus voltage of each of the last steps, from the recorded rows
        for k, lo, hi in zip(snap["series"]["step"], snap["series"]["vm_min_pu"], snap["series"]["vm_max_pu"]):
            vm = ts.iloc[k][[f"bus.{b}.vm_pu" for b in buses]]
            assert (lo, hi) == (vm.min(), vm.max())
        assert snap["series"]["step"] == list(range(snap["step"] + 1))  # all 20 steps fit the default window
    assert len({tuple(s["vm"]) for s in snaps}) == len(set(steps))  # the comparison tells the steps apart
    assert snaps[-1]["status"] == "ok" and snaps[-1]["step"] == 19  # the final snapshot, sent with the status
    # open lines: case33bw's five tie lines, out of service in pandapower's own table (line k = index k - 1)
    ties = [int(i) + 1 for i in pn.case33bw().line.index[~pn.case33bw().line.in_service]]
    assert snaps[-1]["open"] == ties == [33, 34, 35, 36, 37]
    assert {ln["id"] for ln in topo["lines"] if not ln["base"]} == set(ties)
    with pytest.raises(urllib.error.URLError):  # the server has stopped with the run
        urllib.request.urlopen(run.url, timeout=5)


def test_device_readings_and_guard_decisions_are_streamed(live_run, tmp_path):
    run = live_run(inverter_scenario("live-hil", "12s"), "--read-only", pace="0.25")  # every write blocked
    snaps = [d for e, d in sse(run.url + "events") if e == "message" and "step" in d]
    code, _, err = run.wait()
    assert code == 0, err
    ts = read_timeseries(tmp_path / "out" / "timeseries.parquet")
    device_columns = [c for c in ts.columns if c.startswith("inv1.")]
    assert {"inv1.stale", "inv1.p_mw", "inv1.w_max_lim_pct"} <= set(device_columns)
    for snap in snaps:
        row = ts.iloc[snap["step"]]
        assert snap["devices"] == {"inv1": {c.removeprefix("inv1."): row[c] for c in device_columns}}
        assert snap["guard"] == {"blocked": row["guard.blocked"], "clamped": row["guard.clamped"]}
    assert any(s["guard"]["blocked"] > 0 for s in snaps)
    assert "guard_blocked" in {e["kind"] for e in snaps[-1]["events"]}


def test_interrupted_run_ends_the_stream_with_its_status(live_run, tmp_path):
    run = live_run(SCENARIO.format(duration="8h"))
    events = sse(run.url + "events")
    first = next(data for event, data in events if "step" in data)
    run.proc.send_signal(signal.SIGINT)
    rest = list(events)
    code, out, err = run.wait()
    assert code == 130, err
    assert rest[-1] == ("end", {"status": "interrupted"})
    steps = [first["step"]] + [d["step"] for e, d in rest if e == "message"]
    recorded = json.loads((tmp_path / "out" / "run.json").read_text())["steps_completed"]
    assert steps[-1] == recorded - 1 < 479  # the last step streamed is the last one recorded


def test_failed_run_stops_the_server_in_process(cli, write_scenario, monkeypatch, tmp_path):
    original, calls = GridModel.step, {"n": 0}

    def failing_step(self, *args, **kwargs):  # the power flow fails at step 8 (fault injection)
        calls["n"] += 1
        if calls["n"] > 8:
            raise RuntimeError("power-flow host lost")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GridModel, "step", failing_step)
    port, seen = free_port(), []

    def read() -> None:
        url = f"http://127.0.0.1:{port}/events"
        assert wait_for(lambda: _listening(port), 60)
        seen.extend(sse(url))

    reader = threading.Thread(target=read)
    reader.start()
    code, output, _ = cli("run", write_scenario(SCENARIO.format(duration="1h")), "--out", tmp_path / "out", "-q",
                          "--realtime", PACE, "--live-port", str(port))
    reader.join(timeout=60)
    assert code == 1 and "power-flow host lost" in output
    assert not reader.is_alive() and seen[-1] == ("end", {"status": "failed"})
    recorded = json.loads((tmp_path / "out" / "run.json").read_text())["steps_completed"]
    assert 0 < recorded < 60 and seen[-2][1]["step"] == recorded - 1  # the last step recorded before the failure
    assert not _listening(port) and "live-view" not in {t.name for t in threading.enumerate()}


def _listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_taken_port_is_bad_input(cli, write_scenario):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output, _ = cli("run", write_scenario(SCENARIO.format(duration="5min")), "--live-port", str(port), "-q")
    assert code == 2 and f"--live-port {port}" in output and "free port" in output
    assert "Traceback" not in output


class DevTools:
    """The smallest client of Chromium's DevTools protocol: one RFC 6455 WebSocket (client frames masked, no
    extensions) to a page target, over which JavaScript is evaluated."""

    def __init__(self, ws_url: str) -> None:
        target = urllib.parse.urlsplit(ws_url)
        self.sock = socket.create_connection((target.hostname, target.port), timeout=30)
        self.buf, self.next_id = b"", 0
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(f"GET {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("DevTools closed the connection")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 \
            else bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(b"\x81" + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _receive(self) -> str:
        message = b""
        while True:
            b0, b1 = self._take(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._take(8))[0]
            payload, opcode = self._take(n), b0 & 0x0F  # a server's frames are not masked
            if opcode == 8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0, 1):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page."""
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": "Runtime.evaluate",
                               "params": {"expression": expression, "returnByValue": True}}))
        while True:
            reply = json.loads(self._receive())
            if reply.get("id") == self.next_id:
                result = reply["result"]
                if "exceptionDetails" in result:
                    raise RuntimeError(result["exceptionDetails"])
                return result["result"].get("value")

    def close(self) -> None:
        self.sock.close()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGE_STATE = """document.getElementById("step") && JSON.stringify({step: document.getElementById("step").textContent,
  status: document.getElementById("status").textContent,
  buses: [...document.querySelectorAll("#diagram circle")].map((c) => [Number(c.dataset.bus), c.getAttribute("fill")])})"""


def chromium(url: str, profile: Path) -> subprocess.Popen:
    """Headless Chromium showing `url`, its DevTools on a free 127.0.0.1 port (named in DevToolsActivePort)."""
    return subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
                             "--remote-debugging-port=0", url],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def page_target(profile: Path, url: str) -> str:
    """The DevTools WebSocket address of the page showing `url`, from the browser's HTTP JSON endpoint."""
    port_file = profile / "DevToolsActivePort"
    assert wait_for(lambda: port_file.exists() and port_file.read_text().strip(), 60), "Chromium did not start"
    port = int(port_file.read_text().split()[0])
    pages: list[dict] = []

    def listed() -> bool:
        pages[:] = [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
                    if t["type"] == "page" and t["url"].startswith(url)]
        return bool(pages)

    assert wait_for(listed, 60), "the page did not open"
    return pages[0]["webSocketDebuggerUrl"]


@pytest.mark.slow  # a browser and a two-minute run paced to the wall clock
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium (make chromium installs it)")
def test_headless_chromium_renders_the_running_feeder(live_run, tmp_path):
    run = live_run(SCENARIO.format(duration="8h"))
    profile = tmp_path / "chromium-profile"
    browser = chromium(run.url, profile)
    devtools = None
    try:
        devtools = DevTools(page_target(profile, run.url))
        states: list[dict] = []

        def advanced() -> bool:
            state = devtools.evaluate(PAGE_STATE)  # null while the page is still loading
            if state:
                states.append(json.loads(state))
            steps = [int(s["step"]) for s in states if s["step"].isdigit()]
            return len(set(steps)) >= 3

        assert wait_for(advanced, 90, interval=0.5), states[-1:]
    finally:
        if devtools is not None:
            devtools.close()
        os.killpg(browser.pid, signal.SIGTERM)
        browser.wait(timeout=30)
    run.proc.send_signal(signal.SIGINT)
    code, _, err = run.wait()
    assert code == 130, err
    shown = [s for s in states if s["step"].isdigit()]
    steps = [int(s["step"]) for s in shown]
    assert steps == sorted(steps) and steps[-1] > steps[0]  # the step number advances in the page
    ts = read_timeseries(tmp_path / "out" / "timeseries.parquet")
    for state in shown:
        assert [b for b, _ in state["buses"]] == list(range(1, 34))  # one circle per bus
        vm = ts.iloc[int(state["step"])]
        for bus, fill in state["buses"]:
            r, g, b = map(int, fill.removeprefix("rgb(").removesuffix(")").split(","))
            v = vm[f"bus.{bus}.vm_pu"]  # the diverging scale: blue below 1.0 pu, red above, white at it
            assert (b > r) if v < 1 - 1e-6 else (r > b) if v > 1 + 1e-6 else (r == b), (bus, v, fill)
