"""Sweeps: a matrix of scenarios x override values x controllers x seeds, run on a backend and compared.

`load_sweep` checks a sweep file (bad input: `SweepError`), `run_sweep` runs it and writes
summary.parquet, runs/<id>/ and report.html. Backends (local process pool, Ray) are in
`cosim.sweep.backends` and serve `cosim regress` too. Reference: docs/sweep.md.
"""

from __future__ import annotations

from cosim.sweep.run import SweepResult, run_sweep
from cosim.sweep.spec import RunTask, Sweep, SweepError, load_sweep

__all__ = ["RunTask", "Sweep", "SweepError", "SweepResult", "load_sweep", "run_sweep"]
