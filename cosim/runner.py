"""Run a loaded scenario end to end and write its results directory.

run.json is written first with status "running" and last with "ok" or "failed", so a folder
never looks complete when it is not; rows recorded before a failure are kept.
"""

from __future__ import annotations

import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Callable

import pandas as pd

from cosim.events.impact import detection_metrics, impact_table, schedule_frame
from cosim.grid.feeders import load_feeder
from cosim.metrics import compute_metrics
from cosim.recording import Recording
from cosim.report import write_report
from cosim.results import nonconverged_events, package_versions, read_timeseries, write_events, write_json
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


def _baseline(loaded: LoadedScenario, path: Path) -> pd.DataFrame | None:
    """The same scenario without its events (same seed, sensor noise and controller), for impact
    differences; None if it fails (the impact table then compares with the state before each event)."""
    clean = replace(loaded, scenario=loaded.scenario.model_copy(update={"events": []}),
                    feeder=load_feeder(loaded.scenario.grid.feeder, loaded.base_dir))
    recording = None
    try:
        asm = assemble(clean)
        recording = Recording(path, asm.inputs.times[0], asm.step_s)
        run_world(asm, recording)
    except Exception:  # noqa: BLE001 - a failed baseline only costs the comparison
        return None
    finally:
        if recording is not None:
            recording.close()
    return read_timeseries(path)


def run_scenario(loaded: LoadedScenario, out_dir: Path, on_step: Callable[[int], None] | None = None,
                 options: RunOptions | None = None, assembly: Assembly | None = None) -> RunOutcome:
    """Run the mosaik world (with the scenario's devices up), then write metrics, events and the report.

    `assembly` is the validated run (`cosim.validation.validate`); without it the scenario is assembled here.
    """
    scn = loaded.scenario
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {"name": scn.name, "seed": scn.seed, "scenario": str(loaded.path.resolve()), "feeder": scn.grid.feeder,
            "status": "running", "started": datetime.now().isoformat(timespec="seconds"),
            "steps_planned": scn.clock.n_steps, "step_s": scn.clock.step, "versions": package_versions()}
    write_json(out_dir / "run.json", info)
    t0 = time.perf_counter()
    status, message, recording, asm = "ok", "", None, None
    try:
        asm = assembly if assembly is not None else assemble(loaded)
        asm.options = options or RunOptions()
        info["engine"] = asm.model.engine.name
        if asm.model.engine_note:
            info["engine_note"] = asm.model.engine_note
        recording = Recording(out_dir / "timeseries.parquet", asm.inputs.times[0], asm.step_s)
        session = nullcontext()
        if scn.devices:
            from hil.stubs import DeviceSession

            session = DeviceSession(loaded, out_dir / "devices", asm.options.degraded)
        with session:
            if scn.devices and session.missing:
                info["devices_missing"] = session.missing
            run_world(asm, recording, on_step)
    except Exception as exc:  # the run failed part-way: keep what was recorded and say so
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        info["traceback"] = traceback.format_exc()
    finally:
        if recording is not None:
            recording.close()
    wall = time.perf_counter() - t0
    metrics: dict[str, float] = {}
    ts_path = out_dir / "timeseries.parquet"
    if ts_path.exists():
        ts = read_timeseries(ts_path)
        if len(ts):
            metrics = compute_metrics(ts, scn.clock.step, scn.grid.voltage_limits, [g.name for g in scn.generators])
        frames = [nonconverged_events(ts, scn.clock.step)]
        if asm is not None and asm.events.events:
            frames.append(asm.events.frame(asm.inputs.times[0], asm.step_s))
        if asm is not None and asm.schedule.events:
            frames.append(schedule_frame(asm.schedule, asm.inputs.times[0], asm.step_s))
        events = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        if asm is not None and asm.schedule.events and len(ts):
            baseline = _baseline(loaded, out_dir / "baseline.parquet") if scn.impact.baseline else None
            impact = impact_table(ts, asm.schedule, scn.clock.step, scn.grid.voltage_limits, scn.impact.after,
                                  baseline)
            impact.to_csv(out_dir / "events_impact.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
        if asm is not None and len(ts):
            metrics.update(detection_metrics(ts, asm.schedule, scn.clock.step))
        if asm is not None:
            metrics.update(asm.run_metrics)
        write_events(out_dir / "events.csv", events)
        write_json(out_dir / "metrics.json", metrics)
        meta = {"name": scn.name, "seed": scn.seed, "feeder": scn.grid.feeder, "voltage_limits": scn.grid.voltage_limits,
                "status": status, "message": message, "generators": [g.name for g in scn.generators]}
        write_report(out_dir / "report.html", ts, events, metrics, meta)
        info["steps_completed"] = int(len(ts))
    info.update(status=status, wall_time_s=round(wall, 3),
                steps_per_s=round(info.get("steps_completed", 0) / wall, 1) if wall > 0 else None)
    if message:
        info["message"] = message
    write_json(out_dir / "run.json", info)
    return RunOutcome(out_dir, status, metrics, message)
