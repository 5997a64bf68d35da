"""One run of a sweep, as a backend executes it: plain arguments in, plain results out (picklable).

The worker loads the scenario file itself (nothing live crosses a process or host), applies the
overrides, seed and controller, gives HIL parts free ports, and runs it with the usual runner
into the run's folder. Whatever goes wrong becomes a failed result with its message.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from cosim.runner import run_scenario
from cosim.scenario.loader import load_scenario
from cosim.scenario.schema import Controller
from cosim.sweep.overrides import overridden
from cosim.sweep.ports import assign_free_ports
from cosim.validation import validate

PARAMS_FILE = "sweep-run.json"
FINISHED = ("ok", "degraded")  # statuses of a run that reached its horizon: running it again gives the same


def stored_outcome(out_dir: Path, params: dict[str, Any]) -> dict[str, Any] | None:
    """The outcome of a finished run of exactly these parameters in the folder (what --resume keeps), else None."""
    try:
        stored = json.loads((out_dir / PARAMS_FILE).read_text(encoding="utf-8"))
        info = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
        metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if stored != params or info.get("status") not in FINISHED:
        return None
    return {"status": info["status"], "message": info.get("message", ""), "metrics": metrics,
            "wall_s": info.get("wall_time_s", math.nan)}


def run_task(params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Run one task (RunTask.params()) into `out_dir`; {status, message, metrics, wall_s, ports}."""
    t0 = time.perf_counter()
    folder = Path(out_dir)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / PARAMS_FILE).write_text(json.dumps(params, indent=2, default=str) + "\n", encoding="utf-8")
    ports: dict[str, int] = {}
    try:
        loaded = overridden(load_scenario(params["path"]), params["overrides"])
        loaded.scenario.seed = params["seed"]
        loaded.scenario.controller = Controller.model_validate(params["block"])
        ports = assign_free_ports(loaded.scenario)
        outcome = run_scenario(loaded, folder, assembly=validate(loaded))
        status, message, metrics = outcome.status, outcome.message, outcome.metrics
    except Exception as exc:  # noqa: BLE001 - a run that cannot start is a failed row, not a failed sweep
        status, message, metrics = "failed", f"{type(exc).__name__}: {exc}", {}
    return {"status": status, "message": message, "metrics": metrics, "wall_s": time.perf_counter() - t0,
            "ports": ports}
