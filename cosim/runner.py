"""Run a loaded scenario end to end and write its results directory.

run.json is written first with status "running" (with the pid, host and a heartbeat refreshed
every few seconds) and last with "ok", "degraded" (too many non-converged power flows),
"interrupted" (SIGINT or SIGTERM: the run stops after the step in progress) or "failed", so a
folder never looks complete when it is not; rows recorded before a failure or a kill are kept,
and metrics, events and the report are written for them.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Callable

import pandas as pd

from cosim.audit import AUDIT_FILE, AuditChain
from cosim.detection.scoring import detectors_metrics
from cosim.events.impact import impact_table, schedule_frame
from cosim.events.restoration import record as record_restoration
from cosim.forecast.metrics import forecast_metrics
from cosim.grid.feeders import load_feeder
from cosim.metrics import compute_metrics, customers_of, reliability_indices
from cosim.recording import Recording
from cosim.report import write_report
from cosim.results import (RunRecord, iso_format, nonconverged_events, package_versions, read_timeseries, write_events,
                           write_json)
from cosim.scenario.loader import LoadedScenario
from cosim.assembly import Assembly, RunOptions, assemble
from cosim.world import run_world


@dataclass
class RunOutcome:
    """What a run produced: its folder, status, metrics and (on failure) the reason."""

    out_dir: Path
    status: str
    metrics: dict[str, float]
    message: str = ""


def default_out_dir(name: str, root: Path = Path("runs")) -> Path:
    """`runs/<name>-<timestamp>`."""
    return root / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


class RunInterrupted(Exception):
    """Raised after a recorded step once SIGINT or SIGTERM has asked the run to stop."""


class StopOnSignal:
    """Context manager: SIGINT / SIGTERM ask the run to stop after the step in progress (a second one
    acts as usual). Only the main thread can handle signals; elsewhere this does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        self.signum = signum
        for sig, handler in self._previous.items():  # a second signal: the usual behaviour (stop now)
            signal.signal(sig, handler)

    def check(self, steps_done: int) -> None:
        """Raise RunInterrupted when a stop was asked for (called after each recorded step)."""
        if self.signum is not None:
            raise RunInterrupted(f"interrupted by {signal.Signals(self.signum).name} after step {steps_done}")

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _stopping(stop: StopOnSignal, on_step: Callable[[int], None] | None) -> Callable[[int], None]:
    """`on_step` (called with the number of steps recorded) that first stops the run if a signal asked for it."""

    def done(n: int) -> None:
        if on_step is not None:
            on_step(n)
        stop.check(n)

    return done


class _Observed:
    """The recording as the recorder sees it: each row is recorded, then handed to `on_row` (the live view)."""

    def __init__(self, recording: Recording, on_row: Callable[[int, dict], None]) -> None:
        self.recording, self.on_row = recording, on_row

    def append(self, step: int, values: dict) -> None:
        self.recording.append(step, values)
        self.on_row(step, values)


def _observed(recording: Recording, on_row: Callable[[int, dict], None] | None) -> Recording | _Observed:
    """`recording`, observed by `on_row` if there is one."""
    return recording if on_row is None else _Observed(recording, on_row)


def degradation(metrics: dict, allowed_share: float) -> str:
    """Why a completed run is degraded (its share of non-converged steps above `allowed_share`), else ''."""
    steps, bad = metrics.get("steps", 0), metrics.get("nonconverged_steps", 0)
    if not steps or bad / steps <= allowed_share:
        return ""
    return f"{bad} of {steps} steps did not converge (grid.max_nonconverged_share: {allowed_share:g})"


def _baseline(loaded: LoadedScenario, path: Path, on_step: Callable[[int], None]) -> pd.DataFrame | None:
    """The same scenario without its events and failures (same seed, sensor noise and controller), for impact
    differences; None if it fails (the impact table then compares with the state before each event)."""
    clean = replace(loaded, scenario=loaded.scenario.model_copy(update={"events": [], "failures": None}),
                    feeder=load_feeder(loaded.scenario.grid.feeder, loaded.base_dir))
    recording = None
    try:
        asm = assemble(clean)
        recording = Recording(path, asm.inputs.times[0], asm.step_s)
        run_world(asm, recording, on_step)
    except Exception:  # noqa: BLE001 - a failed baseline only costs the comparison
        return None
    finally:
        if recording is not None:
            recording.close()
    return read_timeseries(path)


def _results(loaded: LoadedScenario, asm: Assembly, ts: pd.DataFrame, out_dir: Path, completed: bool,
             stop: StopOnSignal) -> tuple[dict, pd.DataFrame]:
    """Metrics and events of the recorded rows, written to metrics.json, events.csv and events_impact.csv.

    The impact baseline (a second run without events) is run only for a completed run, and stops
    on SIGINT / SIGTERM like the run itself.
    """
    scn = loaded.scenario
    metrics: dict[str, float] = {}
    if len(ts):
        metrics = compute_metrics(ts, scn.clock.step, scn.grid.voltage_limits, [g.name for g in scn.generators])
        metrics.update(reliability_indices(ts, scn.clock.step, customers_of(loaded.feeder)))
        metrics.update(forecast_metrics(asm.forecasts, ts))
    frames = [nonconverged_events(ts, scn.clock.step)]
    record_restoration(asm.events, asm.switchings, asm.refusals, len(ts))
    if asm.events.events:
        frames.append(asm.events.frame(asm.inputs.times[0], asm.step_s))
    if asm.schedule.events:
        frames.append(schedule_frame(asm.schedule, asm.inputs.times[0], asm.step_s))
    events = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    if asm.schedule.events and len(ts):
        baseline = None
        if scn.impact.baseline and completed:
            baseline = _baseline(loaded, out_dir / "baseline.parquet", _stopping(stop, None))
        impact = impact_table(ts, asm.schedule, scn.clock.step, scn.grid.voltage_limits, scn.impact.after, baseline)
        impact.to_csv(out_dir / "events_impact.csv", index=False, date_format=iso_format(impact))
    if len(ts):
        metrics.update(detectors_metrics(ts, scn, asm.schedule, scn.clock.step))
    metrics.update(asm.run_metrics)
    write_events(out_dir / "events.csv", events)
    write_json(out_dir / "metrics.json", metrics)
    return metrics, events


def run_scenario(loaded: LoadedScenario, out_dir: Path, on_step: Callable[[int], None] | None = None,
                 options: RunOptions | None = None, assembly: Assembly | None = None, sign_key=None) -> RunOutcome:
    """Run the mosaik world (with the scenario's devices up), write metrics, events and the report, and seal
    the audit chain (signed with `sign_key`, an Ed25519 private key, if given).

    `assembly` is the validated run (`cosim.validation.validate`); without it the scenario is assembled here.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    chain = AuditChain(out_dir / AUDIT_FILE)
    try:
        outcome = _run(loaded, out_dir, on_step, options, assembly, chain)
        chain.seal(out_dir, sign_key)
    finally:
        chain.close()
    return outcome


def _run(loaded: LoadedScenario, out_dir: Path, on_step: Callable[[int], None] | None, options: RunOptions | None,
         assembly: Assembly | None, chain: AuditChain) -> RunOutcome:
    scn = loaded.scenario
    info = {"name": scn.name, "seed": scn.seed, "scenario": str(loaded.path.resolve()), "feeder": scn.grid.feeder,
            "status": "running", "started": datetime.now().isoformat(timespec="seconds"),
            "steps_planned": scn.clock.n_steps, "step_s": scn.clock.step, "versions": package_versions()}
    t0 = time.perf_counter()
    status, message, recording, asm = "ok", "", None, None
    with RunRecord(out_dir / "run.json", info) as record, StopOnSignal() as stop:
        try:
            asm = assembly if assembly is not None else assemble(loaded)
            asm.options = options or RunOptions()
            asm.events.audit = chain.append
            record.update(engine=asm.model.engine.name,
                          **({"engine_note": asm.model.engine_note} if asm.model.engine_note else {}))
            recording = Recording(out_dir / "timeseries.parquet", asm.inputs.times[0], asm.step_s)
            record.progress = lambda: {"steps_completed": recording.rows}
            session, server_log = nullcontext(), nullcontext()
            if scn.devices:
                from hil.stubs import DeviceSession

                session = DeviceSession(loaded, out_dir / "devices", asm.options.degraded)
            if scn.grid_server is not None:
                from hil.grid_server import LOGGER
                from hil.logs import to_file

                server_log = to_file(LOGGER, out_dir / "devices" / "grid_server.log")
            with session, server_log:
                if scn.devices and session.missing:
                    record.update(devices_missing=session.missing)
                stop.check(0)
                run_world(asm, _observed(recording, asm.options.on_row), _stopping(stop, on_step))
        except RunInterrupted as exc:  # SIGINT / SIGTERM: stop cleanly with what was recorded
            status, message = "interrupted", str(exc)
        except Exception as exc:  # the run failed part-way: keep what was recorded and say so
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            record.update(traceback=traceback.format_exc())
        finally:
            if recording is not None:
                recording.close()
            record.progress = dict
        if asm is not None and asm.capture is not None:  # what was captured, also of a run that failed part-way
            asm.capture.write(out_dir, status, message)
        wall = time.perf_counter() - t0
        metrics, steps = {}, 0
        if recording is not None:
            ts = read_timeseries(recording.path)
            steps = len(ts)
            metrics, events = _results(loaded, asm, ts, out_dir, status == "ok", stop)
            if status == "ok" and (why := degradation(metrics, scn.grid.max_nonconverged_share)):
                status, message = "degraded", why
            meta = {"name": scn.name, "seed": scn.seed, "feeder": scn.grid.feeder,
                    "voltage_limits": scn.grid.voltage_limits, "status": status, "message": message,
                    "generators": [g.name for g in scn.generators]}
            write_report(out_dir / "report.html", ts, events, metrics, meta)
        record.update(status=status, steps_completed=steps, wall_time_s=round(wall, 3),
                      steps_per_s=round(steps / wall, 1) if wall > 0 else None, **({"message": message} if message else {}))
    return RunOutcome(out_dir, status, metrics, message)
