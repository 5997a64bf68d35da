"""Hardware-in-the-loop speed (issue 5), measured side by side in one run on 127.0.0.1.

1. Bridge round trip: 10 emulated inverters (firmware stubs), the bridge's read of each (one
   request covering every point it needs), median per read, one device at a time and all ten
   at once (concurrently on one event loop).
2. Added step time: the same IEEE 33 scenario with volt-var droop, run as fast as possible
   with 10 emulated inverters in the loop and with none; the difference per step.
3. Real-time soak: 10 steps per second in real time (100 ms steps, --realtime 1) with the 10
   emulated inverters for --soak-minutes (default 0.5; the issue's goal is 10): lateness p50 /
   p99 / max and deadline misses, from metrics.json, with the run's phase figures (longest GC
   pause and full collections during the run, the pacer's latest wake-up, the worst step's GC
   time) and the device_no_tick events (a tick wait cut at 70 % of the slot).

The stubs tick every --tick seconds (default 0.01): the bridge reads a device one firmware tick
after writing to it (docs/hil.md, Timing), so a 100 ms period needs a tick well below it.

With --trace-soak the soak's steps are traced phase by phase (`PhaseTrace`): per phase p50 / p99 /
max, and the five latest steps with every phase over 4 ms that overlapped them.

Usage: python benchmarks/bench_hil.py [--soak-minutes 10] [--steps 600] [--reads 2000] [--tick 0.01] [--trace-soak]
       [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.runner import run_scenario  # noqa: E402
from cosim.scenario.loader import load_scenario  # noqa: E402
from cosim.assembly import RunOptions  # noqa: E402
from hil.client import DeviceClient  # noqa: E402
from hil.devices import couplings  # noqa: E402
from hil.reading import ReadPlan  # noqa: E402
from hil.stubs import DeviceSession  # noqa: E402

BUSES = (18, 17, 16, 15, 33, 32, 31, 30, 25, 22)


def scenario(folder: Path, steps: int, devices: bool, base_port: int, tick: float = 0.01, step_ms: int = 1000) -> Path:
    """IEEE 33 at noon, ten 0.3 MW PV plants, droop, `steps` steps of `step_ms`; with `devices`, each behind an
    emulated inverter."""
    lines = ["name: bench-hil" + ("-devices" if devices else "-none"), "seed: 1",
             f'clock: {{start: "2025-06-21T12:00:00", duration: {steps * step_ms}ms, step: {step_ms}ms}}',
             "grid: {feeder: ieee33}", "loads: {profile: constant, scale: 0.8}", "controller: {kind: droop}",
             "generators:"]
    lines += [f"  - {{name: pv{i + 1}, kind: pv, bus: {b}, p_mw: 0.3, cloudiness: 0.0}}" for i, b in enumerate(BUSES)]
    if devices:
        lines.append("devices:")
        lines += [f"  - {{name: inv{i + 1}, kind: inverter, generator: pv{i + 1}, modbus: {{port: {base_port + i}}}, "
                  f"emulate: true, stub_args: {{tick: {tick:g}}}}}" for i in range(len(BUSES))]
    path = folder / ("devices.yaml" if devices else "none.yaml")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def round_trips(loaded, reads: int) -> dict[str, float]:
    """Median per read: each device alone, then all ten concurrently."""
    cs = couplings(loaded.scenario, loaded.base_dir)
    clients = [DeviceClient(c.name, "127.0.0.1", c.spec.modbus.port, timeout=1.0) for c in cs]
    for client in clients:
        assert await client.connect()
    c0 = cs[0]
    spans = ReadPlan(c0.regmap, set(c0.reads) | set(c0.writable)).spans
    assert len(spans) == 1, spans
    start, count = spans[0]
    one = []
    for i in range(reads):
        client = clients[i % len(clients)]
        t0 = time.perf_counter()
        await client.read(start, count)
        one.append(time.perf_counter() - t0)
    together = []
    for _ in range(reads // len(clients)):
        t0 = time.perf_counter()
        await asyncio.gather(*(c.read(start, count) for c in clients))
        together.append((time.perf_counter() - t0) / len(clients))
    for client in clients:
        client.close()
    return {"registers_per_read": count, "read_median_ms": 1000 * float(np.median(one)),
            "read_p99_ms": 1000 * float(np.percentile(one, 99)),
            "read_concurrent10_median_ms_per_device": 1000 * float(np.median(together))}


def timed_run(path: Path, out: Path, options: RunOptions | None = None) -> tuple[float, float, dict]:
    """Wall and CPU seconds of this process per step (end of step 1 to end of the last: set-up excluded), metrics."""
    done: list[tuple[float, float]] = []

    def on_step(k: int) -> None:
        t = os.times()
        done.append((time.perf_counter(), t.user + t.system))

    outcome = run_scenario(load_scenario(path), out, on_step, options)
    assert outcome.status == "ok", outcome.message
    n = len(done) - 1
    return ((done[-1][0] - done[0][0]) / n, (done[-1][1] - done[0][1]) / n,
            json.loads((out / "metrics.json").read_text()))


class PhaseTrace:
    """Wall-clock intervals of the phases of every step (--trace-soak): bridge step, each device's write, tick wait
    and read, grid and controller steps, recorder appends, GC pauses, the pacer's wake-ups. Instruments the classes
    in this process only (a diagnosis, never part of a run)."""

    def __init__(self) -> None:
        import gc

        import cosim.recording as rec
        import cosim.sims.controller as ctl
        import cosim.sims.grid as grid
        import cosim.sims.pacer as pacer
        import hil.bridge as bridge
        import hil.link as link

        self.ev: list[tuple[float, float, str]] = []
        self._sync(rec.Recording, "append", "recorder.append")
        self._sync(grid.GridSim, "step", "grid.step")
        self._sync(ctl.ControllerSim, "step", "controller.step")
        self._async(bridge.Bridge, "step", "bridge.step", named=False)
        for phase in ("_write", "_await_tick", "_read"):
            self._async(link.DeviceLink, phase, phase.strip("_"), named=True)
        step, ev = pacer.PacerSim.step, self.ev

        def paced(sim, time_, inputs, max_advance):
            res = yield from step(sim, time_, inputs, max_advance)
            ev.append((sim.clock.release(time_), time.perf_counter(), "pacer.wake"))
            return res

        pacer.PacerSim.step = paced
        gc_at = [0.0]

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                gc_at[0] = time.perf_counter()
            else:
                ev.append((gc_at[0], time.perf_counter(), f"gc{info['generation']}"))

        gc.callbacks.append(on_gc)

    def _sync(self, cls, name: str, label: str) -> None:
        f, ev = getattr(cls, name), self.ev

        def timed(obj, *a, **k):
            t0 = time.perf_counter()
            out = f(obj, *a, **k)
            ev.append((t0, time.perf_counter(), label))
            return out

        setattr(cls, name, timed)

    def _async(self, cls, name: str, label: str, named: bool) -> None:
        f, ev = getattr(cls, name), self.ev

        async def timed(obj, *a, **k):
            t0 = time.perf_counter()
            out = await f(obj, *a, **k)
            ev.append((t0, time.perf_counter(), f"{label}:{obj.name}" if named else label))
            return out

        setattr(cls, name, timed)

    def report(self, period: float, worst: int = 5) -> dict:
        """Per phase p50/p99/max (ms), and the latest steps with every phase over 4 ms that overlapped them."""
        wake = sorted(e for e in self.ev if e[2] == "pacer.wake")
        done = sorted(e[1] for e in self.ev if e[2] == "recorder.append")
        phases: dict[str, list[float]] = {}
        for a, b, what in self.ev:
            phases.setdefault(what.split(":")[0], []).append(1000 * (b - a))
        late = sorted(((d - (w[0] + period), k) for k, (w, d) in enumerate(zip(wake, done))), reverse=True)[:worst]
        steps = []
        for lateness, k in late:
            t0 = wake[k][0]
            steps.append({"step": k, "lateness_ms": 1000 * lateness, "phases": [
                (what, round(1000 * (a - t0), 1), round(1000 * (b - a), 1)) for a, b, what in sorted(self.ev)
                if b > t0 and a < done[k] and b - a > 0.004 and what != "pacer.wake"]})
        return {"phases_ms": {p: {"n": len(v), "p50": float(np.median(v)), "p99": float(np.percentile(v, 99)),
                                  "max": max(v)} for p, v in sorted(phases.items())},
                "latest_steps": steps}


def no_tick(out: Path) -> int:
    """Steps x devices whose firmware-tick wait ended before the tick (in a paced run: at 70 % of the slot)."""
    events = out / "events.csv"
    return sum(1 for line in events.read_text().splitlines() if ",device_no_tick," in line) if events.exists() else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--soak-minutes", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=600, help="steps of the added-step-time runs")
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--base-port", type=int, default=15120)
    ap.add_argument("--tick", type=float, default=0.01, help="firmware tick of the stubs, s")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_hil.json")
    ap.add_argument("--trace-soak", action="store_true",
                    help="also time every phase of every soak step (results: soak_trace; adds a little overhead)")
    args = ap.parse_args()
    results: dict[str, object] = {"load_average_at_start": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with_devices = scenario(folder, args.steps, True, args.base_port, args.tick)
        loaded = load_scenario(with_devices)
        with DeviceSession(loaded, folder / "stubs"):  # the ten stubs stay up for all three parts
            results["round_trip"] = asyncio.run(round_trips(loaded, args.reads))
            print("round trip:", results["round_trip"], flush=True)
            none_step, none_cpu, _ = timed_run(scenario(folder, args.steps, False, 0), folder / "none")
            dev_step, dev_cpu, dev_metrics = timed_run(with_devices, folder / "dev")
            results["step_time"] = {
                "steps": args.steps, "no_devices_ms_per_step": 1000 * none_step,
                "ten_devices_ms_per_step": 1000 * dev_step, "added_ms_per_step": 1000 * (dev_step - none_step),
                "added_cpu_ms_per_step": 1000 * (dev_cpu - none_cpu),
                "added_ms_per_step_per_device": 1000 * (dev_step - none_step) / len(BUSES),
                "added_cpu_ms_per_step_per_device": 1000 * (dev_cpu - none_cpu) / len(BUSES),
                "bridge_step_p50_ms": dev_metrics["bridge_step_p50_ms"],
                "bridge_requests_per_step": dev_metrics["bridge_requests"] / args.steps}
            print("step time:", results["step_time"], flush=True)
            soak_steps = int(round(args.soak_minutes * 600))
            soak = scenario(folder, soak_steps, True, args.base_port, args.tick, step_ms=100)
            trace = PhaseTrace() if args.trace_soak else None
            step_s, _, m = timed_run(soak, folder / "soak", RunOptions(realtime=1.0))
            if trace is not None:
                results["soak_trace"] = trace.report(0.1)
            results["soak"] = {"minutes": args.soak_minutes, "steps": soak_steps, "step": "100ms", "realtime": 1.0,
                               "wall_ms_per_step": 1000 * step_s,
                               **{k: v for k, v in m.items() if k.startswith(("rt_", "bridge_", "device_stale"))},
                               "device_no_tick_events": no_tick(folder / "soak")}
            print("soak:", results["soak"], flush=True)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    results["load_average_at_end"] = os.getloadavg()
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
