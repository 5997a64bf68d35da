"""The summary table of a sweep: one row per run, written as DIR/summary.parquet.

Columns: run_id, scenario, seed, controller, one column per override key (named by the key),
status, message, wall_s, resumed, then every metric of the run's metrics.json. An override
value that is not a plain scalar (a list such as `grid.voltage_limits`) is stored as JSON text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from cosim.sweep.spec import RunTask

FIXED = ["run_id", "scenario", "seed", "controller"]
OUTCOME = ["status", "message", "wall_s", "resumed"]


def row(task: RunTask, outcome: dict[str, Any], resumed: bool = False) -> dict[str, Any]:
    """The summary row of one run from its task and its outcome {status, message, metrics, wall_s}."""
    out: dict[str, Any] = {"run_id": task.run_id, "scenario": task.scenario, "seed": task.seed,
                           "controller": task.controller}
    out.update(task.overrides)
    out.update(status=outcome["status"], message=outcome["message"], wall_s=outcome.get("wall_s", math.nan),
               resumed=resumed)
    out.update(outcome["metrics"])
    return out


def frame(rows: list[dict[str, Any]], override_keys: list[str]) -> pd.DataFrame:
    """The rows as a table with the fixed columns first (non-scalar override values as JSON text)."""
    df = pd.DataFrame(rows)
    for key in override_keys:
        if not all(isinstance(v, (bool, int, float, str)) for v in df[key]) or df[key].map(type).nunique() > 1:
            df[key] = [json.dumps(v) for v in df[key]]
    first = FIXED + override_keys + OUTCOME
    return df[first + [c for c in df.columns if c not in first]]


def write_summary(path: Path, table: pd.DataFrame) -> None:
    """Write the table as Parquet (atomically: a reader never sees half a file)."""
    tmp = path.with_suffix(".parquet.tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)
