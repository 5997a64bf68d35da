"""The results directory: run.json, timeseries.parquet (a folder of chunk files), events.csv, metrics.json, report.html."""

from __future__ import annotations

import json
import math
import os
import socket
import threading
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cosim.children import pid_alive
from cosim.files import write_atomic
from cosim.recording import part_files

EVENT_COLUMNS = ["start", "end", "kind", "target", "detail"]
PACKAGES = ["cosim-testbed", "mosaik", "mosaik-api-v3", "pandapower", "lightsim2grid", "numpy", "pandas",
            "pyarrow", "pydantic", "pymodbus", "torch"]


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a run's numbers."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _clean(value):
    """JSON has no NaN: write it as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename), NaN as null."""
    write_atomic(path, json.dumps(_clean(data), indent=2, default=str) + "\n")


def nonconverged_events(ts: pd.DataFrame, step_s: float) -> pd.DataFrame:
    """One event per step whose power flow did not converge."""
    if "grid.converged" not in ts or ts.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    start = ts.loc[ts["grid.converged"] != 1.0, "time"]
    return pd.DataFrame({"start": start, "end": start + pd.Timedelta(seconds=step_s),
                         "kind": "nonconverged", "target": "grid", "detail": ""}, columns=EVENT_COLUMNS)


def iso_format(table: pd.DataFrame, columns: tuple[str, ...] = ("start", "end")) -> str:
    """The ISO timestamp format of a table's time columns: whole seconds, or microseconds when a time has a fraction."""
    fraction = any(len(table[c]) and (pd.to_datetime(table[c]).dt.microsecond != 0).any() for c in columns if c in table)
    return "%Y-%m-%dT%H:%M:%S.%f" if fraction else "%Y-%m-%dT%H:%M:%S"


def write_events(path: Path, events: pd.DataFrame) -> None:
    """events.csv with ISO timestamps (with a fraction of a second only for sub-second steps), sorted by start."""
    events.sort_values("start", kind="stable").to_csv(path, index=False, date_format=iso_format(events))


def read_timeseries(path: Path) -> pd.DataFrame:
    """Load timeseries.parquet (a folder of chunk files, or a single file of older runs) as one DataFrame.

    Single-threaded: pyarrow's threaded reader needs ~10x the memory on feeders with 10^4+ signal
    columns (7.9 GB vs 0.8 GB on SimBench urban). A folder without complete chunks (a run killed
    before its first write) reads as no rows.
    """
    path = Path(path)
    if path.is_dir():
        parts = part_files(path)
        if not parts:
            return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ms]")})
        return pa.concat_tables([pq.read_table(p, use_threads=False) for p in parts]).to_pandas()
    return pq.read_table(path, use_threads=False).to_pandas()



# -- run.json while the run is going: pid, host, heartbeat; and what a folder's run.json says ----------

HEARTBEAT_S = 2.0  # how often a running run refreshes run.json's heartbeat
STALE_AFTER_S = 30.0  # a heartbeat older than this (and older than 10 beats) means the run is dead


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RunRecord:
    """run.json of one run: atomic writes under a lock, and (as a context manager) a heartbeat thread.

    While the run is going, the thread rewrites run.json every `beat_s` seconds with a fresh
    `heartbeat` and whatever `progress()` returns (steps recorded so far), so `cosim status` can
    tell a live run from one whose process was killed.
    """

    def __init__(self, path: Path, info: dict, beat_s: float = HEARTBEAT_S):
        self.path, self.info, self.beat_s = Path(path), info, beat_s
        self.progress: Callable[[], dict] = dict
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        info.update(pid=os.getpid(), host=socket.gethostname(), heartbeat_s=beat_s)

    def update(self, **fields) -> None:
        """Merge `fields` into run.json and write it (with a fresh heartbeat)."""
        with self._lock:
            self.info.update(fields)
            self.info["heartbeat"] = _now().isoformat(timespec="seconds")
            write_json(self.path, self.info)

    def _beat(self) -> None:
        while not self._stop.wait(self.beat_s):
            self.update(**self.progress())

    def __enter__(self) -> "RunRecord":
        self.update()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def readable_rows(path: Path) -> int:
    """Rows of a recording that can be read back (from the chunk files' footers, without reading the data)."""
    path = Path(path)
    if path.is_dir():
        return sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(path))
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


def run_state(info: dict, now: datetime | None = None) -> tuple[str, str]:
    """(state, detail) of a run from its run.json: running, ok, failed, interrupted, degraded or dead.

    A `running` record is `dead` when its process is gone (checked on the same host) or its
    heartbeat is stale (older than STALE_AFTER_S and ten beats), e.g. after a SIGKILL.
    """
    status = str(info.get("status", "unknown"))
    done, planned = info.get("steps_completed"), info.get("steps_planned")
    steps = f"{done if done is not None else '?'} of {planned if planned is not None else '?'} steps"
    if status != "running":
        message = info.get("message", "")
        return status, f"{steps}" + (f": {message}" if message else "")
    pid, host = info.get("pid"), info.get("host")
    beat = info.get("heartbeat")
    age = ((now or _now()) - datetime.fromisoformat(beat)).total_seconds() if beat else None
    where = f"pid {pid} on {host}"
    if pid is None or beat is None:
        return "dead", f"run.json says running but has no pid or heartbeat (written by an older cosim); {steps}"
    if host == socket.gethostname() and not pid_alive(int(pid)):
        return "dead", f"{where} is gone (last heartbeat {age:.0f} s ago); {steps} at the last heartbeat"
    if age > max(STALE_AFTER_S, 10 * float(info.get("heartbeat_s", HEARTBEAT_S))):
        return "dead", f"heartbeat of {where} is stale ({age:.0f} s old); {steps} at the last heartbeat"
    return "running", f"{where}, heartbeat {age:.0f} s ago; {steps} recorded"
