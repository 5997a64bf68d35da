"""Run a checked sweep on a backend: skip what --resume finds complete, record every outcome, write the outputs.

Outputs in DIR: runs/<run id>/ (each run's usual results folder plus sweep-run.json with the
parameters that decided it), summary.parquet and report.html. A run that fails is a row with
its status and message; the other runs go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from cosim.sweep.backends import open_backend
from cosim.sweep.report import write_report
from cosim.sweep.spec import Sweep
from cosim.sweep.summary import frame, row, write_summary
from cosim.sweep.worker import run_task, stored_outcome


@dataclass
class SweepResult:
    """The summary table of a finished sweep and where its outputs are."""

    out_dir: Path
    table: pd.DataFrame

    @property
    def failed(self) -> list[str]:
        """Run ids whose status is not ok."""
        return list(self.table.loc[self.table["status"] != "ok", "run_id"])

    @property
    def resumed(self) -> int:
        """How many runs --resume took from earlier results."""
        return int(self.table["resumed"].sum())


def run_sweep(sweep: Sweep, out_dir: Path, backend: str = "local", jobs: int = 0, address: str | None = None,
              resume: bool = False, on_done: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run every task not already complete (with `resume`), then write summary.parquet and report.html."""
    runs = out_dir.resolve() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict[str, Any]] = {}
    pending: list[int] = []
    for i, task in enumerate(sweep.tasks):
        outcome = stored_outcome(runs / task.run_id, task.params()) if resume else None
        if outcome is not None:
            rows[i] = row(task, outcome, resumed=True)
            if on_done is not None:
                on_done(rows[i])
        else:
            pending.append(i)
    args = [(sweep.tasks[i].params(), str(runs / sweep.tasks[i].run_id)) for i in pending]
    with open_backend(backend, jobs, address) as pool:
        for j, value in pool.map(run_task, args):
            if isinstance(value, BaseException):  # the worker died or the backend lost it
                value = {"status": "failed", "message": f"{type(value).__name__}: {value}", "metrics": {}}
            i = pending[j]
            rows[i] = row(sweep.tasks[i], value)
            if on_done is not None:
                on_done(rows[i])
    table = frame([rows[i] for i in range(len(sweep.tasks))], sweep.override_keys)
    write_summary(out_dir / "summary.parquet", table)
    write_report(out_dir / "report.html", sweep.name, table, sweep.override_keys)
    return SweepResult(out_dir, table)
