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


def _kind(value: Any) -> str:
    """bool, number or str for a plain scalar (ints and floats share a column), else 'other'."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "str" if isinstance(value, str) else "other"


def frame(rows: list[dict[str, Any]], override_keys: list[str]) -> pd.DataFrame:
    """The rows as a table with the fixed columns first (override columns that are not one scalar kind as JSON text)."""
    df = pd.DataFrame(rows)
    for key in override_keys:
        kinds = {_kind(v) for v in df[key]}
        if len(kinds) > 1 or kinds == {"other"}:
            df[key] = [json.dumps(v) for v in df[key]]
    first = FIXED + override_keys + OUTCOME
    return df[first + [c for c in df.columns if c not in first]]


def write_summary(path: Path, table: pd.DataFrame) -> None:
    """Write the table as Parquet (atomically: a reader never sees half a file)."""
    tmp = path.with_suffix(".parquet.tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)
