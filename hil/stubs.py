"""Firmware-stub processes for a scenario's emulated devices: start, wait for "ready", stop.

Two users: `cosim devices up|down SCENARIO` keeps stubs running between commands (detached
processes, one pid file each under `.cosim/devices/<scenario name>/`), and `DeviceSession`
gives one run the devices it needs — it starts the stubs that are not up yet (their logs go
to the run folder), checks that every device answers, and stops what it started. An emulated
device on Modbus RTU gets, for each run, a socat pair of pseudo-terminals joined back to back
(`pty_pair`, in the run folder): its stub serves one end, the bridge opens the other, and socat
dies with the run; `cosim devices up` leaves such devices to the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cosim.children import bound_to_run, pid_alive
from cosim.scenario.loader import LoadedScenario
from hil.client import reachable
from hil.devices import Coupling, couplings, map_path
from hil.kinds import KINDS
from hil.serial_line import SerialLine, line_of, openable

READY = re.compile(r"ready \S+ on (\S+):(\d+)")
READY_SERIAL = re.compile(r"ready \S+ on serial (\S+)")
_SOCAT_SAFE = re.compile(r"[\w./+-]+")  # a path socat's address syntax takes as is
STATE_DIR = Path(".cosim") / "devices"


class DeviceUnavailable(RuntimeError):
    """A device a run needs does not answer, or its stub would not start; the message says which and why."""


@dataclass
class StubInfo:
    """A running stub: what it emulates, where it listens, its process and log."""

    device: str
    kind: str
    host: str
    port: int
    pid: int
    log: str


def stub_command(c: Coupling, line: SerialLine | None = None) -> list[str]:
    """The command line of the firmware stub that emulates device `c` (the stub module its kind declares), on
    Modbus-TCP or, given its end of the serial `line`, on Modbus RTU."""
    s = c.spec
    # -P: the working directory is not put on sys.path, so a folder named `hil` there cannot shadow ours
    iec104 = s.modbus.transport == "iec104"  # the stub's unit is then the station's common address
    cmd = [sys.executable, "-P", "-m", KINDS[s.kind].stub, "--unit", str(s.modbus.common_address if iec104 else s.modbus.unit)]
    if iec104:
        cmd += ["--protocol", "iec104"]
    if line is None:
        cmd += ["--host", s.modbus.host, "--port", str(s.modbus.port or 0)]  # 0: any free port
    else:
        cmd += line.stub_argv()
    if s.watchdog:
        cmd += ["--watchdog", f"{s.watchdog:g}"]
    if s.map is not None:
        cmd += ["--map", str(map_path(s, c.base_dir))]
    return cmd + c.stub_argv()


def _stub_env() -> dict[str, str]:
    """The environment of a stub: this checkout's packages first on its path, whatever the working directory."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def start_stub(c: Coupling, log_path: Path, detach: bool = False, timeout: float = 20.0,
               line: SerialLine | None = None) -> tuple[StubInfo, subprocess.Popen]:
    """Start the stub of `c` (stderr to `log_path`; on the serial `line` when given) and wait for its ready line;
    raise DeviceUnavailable if it fails. A stub on a serial line has the line's path as host and port 0."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(stub_command(c, line), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                env=_stub_env(), **({"start_new_session": True} if detach else bound_to_run()))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        m, m_serial = READY.search(text), READY_SERIAL.search(text)
        s = c.spec
        if m_serial:
            return StubInfo(s.name, s.kind, m_serial.group(1), 0, proc.pid, str(log_path)), proc
        if m:
            return StubInfo(s.name, s.kind, m.group(1), int(m.group(2)), proc.pid, str(log_path)), proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop_process(proc.pid, proc)
    tail = "\n  ".join(log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:])
    raise DeviceUnavailable(f"the {c.spec.kind} stub for device {c.name} did not start "
                            f"(log {log_path}):\n  {tail or 'no output'}")


def pty_pair(bridge_end: Path, stub_end: Path, log_path: Path, timeout: float = 10.0) -> subprocess.Popen:
    """socat joining two raw pseudo-terminals, linked at `bridge_end` and `stub_end`, bound to the run's lifetime;
    returns once both links exist, or raises DeviceUnavailable."""
    if shutil.which("socat") is None:
        raise DeviceUnavailable("socat is not installed; an emulated Modbus RTU device needs it for its pseudo-terminal "
                                "pair (make socat, or apt-get install socat)")
    for end in (bridge_end, stub_end):
        if not _SOCAT_SAFE.fullmatch(str(end)):
            raise DeviceUnavailable(f"cannot make a pseudo-terminal at {end}: socat takes paths of letters, digits "
                                    "and . / _ + - only; choose a run folder without other characters")
        if end.exists() or end.is_symlink():
            raise DeviceUnavailable(f"cannot make a pseudo-terminal at {end}: the path exists already (the serial "
                                    "line of an emulated device is made by the run; give a free path or none)")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(["socat", "-d", "-d", f"pty,raw,echo=0,link={bridge_end}",
                                 f"pty,raw,echo=0,link={stub_end}"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, **bound_to_run())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if bridge_end.exists() and stub_end.exists():
            return proc
        time.sleep(0.02)
    stop_process(proc.pid, proc)
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    raise DeviceUnavailable(f"socat made no pseudo-terminal pair at {bridge_end} (log {log_path}): "
                            f"{' / '.join(tail) or 'no output'}")


def stop_process(pid: int, proc: subprocess.Popen | None = None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; quiet when the process is already gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        elif not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait(timeout=timeout)


def _is_stub(pid: int, port: int) -> bool:
    """True when `pid` is a firmware stub listening on `port` (guards against a recycled pid)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    given = args[args.index(b"--port") + 1] if b"--port" in args[:-1] else b""
    return any(a.startswith(b"firmware_stubs.") for a in args) and given in (str(port).encode(), b"0")


def unreachable(targets: dict[str, tuple[str, int, float]]) -> dict[str, str]:
    """For devices name -> (host, port, timeout): name -> why it cannot be reached, for those that cannot."""

    async def check() -> list[str | None]:
        return await asyncio.gather(*(reachable(h, p, max(t, 1.0)) for h, p, t in targets.values()))

    return {name: why for name, why in zip(targets, asyncio.run(check())) if why is not None}


def _targets(cs: list[Coupling]) -> dict[str, tuple[str, int, float]]:
    """Where the TCP devices (Modbus-TCP, IEC 104) with a port answer (an emulated device without one has no stub yet)."""
    return {c.name: (c.spec.modbus.host, c.spec.modbus.port, c.spec.modbus.timeout) for c in cs
            if c.spec.modbus.transport != "rtu" and c.spec.modbus.port is not None}


def _closed_lines(cs: list[Coupling]) -> dict[str, str]:
    """For the Modbus RTU devices with a serial line: name -> why the line does not open, for those that do not."""
    lines = {c.name: line_of(c.spec.modbus) for c in cs if c.spec.modbus.serial is not None}
    return {name: why for name, line in lines.items() if line is not None and (why := openable(line)) is not None}


# -- `cosim devices up | down` ----------------------------------------------------------------------

def state_dir(loaded: LoadedScenario, root: Path = STATE_DIR) -> Path:
    """Where the pid files of a scenario's stubs live."""
    return root / loaded.scenario.name


def devices_up(loaded: LoadedScenario, root: Path = STATE_DIR) -> list[tuple[StubInfo, str]]:
    """Start every emulated device's stub that is not running yet; (stub, 'started' | 'already running') each."""
    folder = state_dir(loaded, root)
    out = []
    for c in couplings(loaded.scenario, loaded.base_dir):
        if not c.spec.emulate or c.spec.modbus.transport == "rtu":  # an RTU stub's line lives as long as its run
            continue
        pid_file = folder / f"{c.name}.json"
        if pid_file.exists():
            info = StubInfo(**json.loads(pid_file.read_text(encoding="utf-8")))
            if pid_alive(info.pid) and _is_stub(info.pid, info.port):
                out.append((info, "already running"))
                continue
            pid_file.unlink()
        busy = unreachable(_targets([c]))
        if c.spec.modbus.port is not None and c.name not in busy:
            raise DeviceUnavailable(f"device {c.name}: {c.spec.modbus.host}:{c.spec.modbus.port} is already in use by "
                                    "another process; stop it or change modbus.port")
        info, _ = start_stub(c, folder / f"{c.name}.log", detach=True)
        pid_file.write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
        out.append((info, "started"))
    return out


def devices_down(loaded: LoadedScenario, root: Path = STATE_DIR) -> list[tuple[StubInfo, str]]:
    """Stop the stubs `devices_up` started for this scenario; (stub, 'stopped' | 'was not running') each."""
    folder = state_dir(loaded, root)
    out = []
    for pid_file in sorted(folder.glob("*.json")):
        info = StubInfo(**json.loads(pid_file.read_text(encoding="utf-8")))
        if pid_alive(info.pid) and _is_stub(info.pid, info.port):
            stop_process(info.pid)
            out.append((info, "stopped"))
        else:
            out.append((info, "was not running"))
        pid_file.unlink()
    return out


# -- one run --------------------------------------------------------------------------------------

class DeviceSession:
    """Context manager: the devices of one run are up and answering (or, when degraded, the missing ones noted)."""

    def __init__(self, loaded: LoadedScenario, log_dir: Path, degraded: bool = False):
        self.loaded = loaded
        self.couplings = couplings(loaded.scenario, loaded.base_dir)
        self.log_dir, self.degraded = log_dir, degraded
        self.started: list[tuple[StubInfo, subprocess.Popen]] = []
        self.ptys: list[subprocess.Popen] = []
        self.missing: dict[str, str] = {}

    def __enter__(self) -> "DeviceSession":
        try:
            down = unreachable(_targets(self.couplings))
            for c in self.couplings:
                if c.spec.emulate and c.spec.modbus.transport == "rtu":
                    self._start_on_line(c)
                elif c.spec.emulate and c.spec.modbus.port is None:  # a free port for this run: the stub's own choice
                    c.spec.modbus.port = self._kept_up(c) or self._start(c).port
                elif c.spec.emulate and c.name in down:
                    self._start(c)
            self.missing = unreachable(_targets(self.couplings)) if self.couplings else {}
            self.missing |= _closed_lines(self.couplings)
        except BaseException:
            self.close()
            raise
        if self.missing and not self.degraded:
            self.close()
            lines = "\n".join(f"  {name}: {why}" for name, why in self.missing.items())
            raise DeviceUnavailable(f"{len(self.missing)} device(s) do not answer:\n{lines}\n"
                                    "start them (emulated ones: cosim devices up SCENARIO) or run with --degraded "
                                    "to start with them marked stale")
        return self

    def _start(self, c: Coupling) -> StubInfo:
        info, proc = start_stub(c, self.log_dir / f"{c.name}.log")
        self.started.append((info, proc))
        return info

    def _start_on_line(self, c: Coupling) -> None:
        """A pseudo-terminal pair for emulated RTU device `c`: its stub on one end, `modbus.serial` the other (both at
        the device's baud rate and stop bits, no parity)."""
        m = c.spec.modbus
        bridge_end = Path(m.serial or self.log_dir / f"{c.name}.pty").absolute()
        stub_end = bridge_end.with_name(bridge_end.name + ".stub")
        self.ptys.append(pty_pair(bridge_end, stub_end, self.log_dir / f"{c.name}.socat.log"))
        m.serial = str(bridge_end)
        m.parity = "N"  # a pseudo-terminal has no parity bit (Linux clears PARENB, and setting it again fails)
        stub_line = SerialLine(str(stub_end), m.baudrate, m.parity, m.stopbits)
        info, proc = start_stub(c, self.log_dir / f"{c.name}.log", line=stub_line)
        self.started.append((info, proc))

    def _kept_up(self, c: Coupling) -> int | None:
        """The port of this device's stub started by `cosim devices up` and still running, if any."""
        pid_file = state_dir(self.loaded) / f"{c.name}.json"
        if not pid_file.exists():
            return None
        info = StubInfo(**json.loads(pid_file.read_text(encoding="utf-8")))
        return info.port if pid_alive(info.pid) and _is_stub(info.pid, info.port) else None

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stubs this session started."""
        for info, proc in self.started:
            stop_process(info.pid, proc)
        self.started.clear()
        for proc in self.ptys:
            stop_process(proc.pid, proc)
        self.ptys.clear()
