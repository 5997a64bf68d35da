"""Crash-safe columnar recording of every published signal: a Parquet dataset folder of chunk files.

`timeseries.parquet` is a folder of self-contained Parquet files (`part-00000.parquet`, ...), one
per chunk of rows, each written to a hidden temporary name and renamed into place, so the folder
only ever holds complete files. A chunk is written when it fills, and the chunk being filled is
rewritten every `flush_s` seconds of wall time, so after a SIGKILL everything up to the last
write (at most a few seconds of rows) is readable with `read_timeseries`, `pandas.read_parquet`
or `pyarrow.dataset`. Tables are built, compressed and written by one background thread (pyarrow
releases the GIL); the step only copies its rows, so a real-time step does not wait for a chunk of
thousands of rows.
"""

from __future__ import annotations

import math
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cosim.files import replace_atomic

PART = "part-{:05d}.parquet"


def part_files(path: Path) -> list[Path]:
    """The complete chunk files of a recording folder, in row order (hidden temporary files excluded)."""
    return sorted(p for p in Path(path).glob("part-*.parquet") if p.is_file())


def _fresh_folder(path: Path) -> None:
    """An empty folder at `path` (a previous recording there, file or folder, is removed)."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.mkdir(parents=True)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write one Parquet file under a hidden temporary name (readers skip it), then rename it into place."""
    replace_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


class Recording:
    """Rows of signals keyed by name; the first row fixes the columns and which of them hold text."""

    def __init__(self, path: Path, start: np.datetime64, step_s: float, chunk_rows: int = 4096,
                 chunk_values: int = 2_000_000, flush_s: float = 2.0):
        self.path = Path(path)
        self.start = np.datetime64(start, "ms")
        self.step_ms = int(round(step_s * 1000))
        self.chunk_rows = chunk_rows
        self.chunk_values = chunk_values  # caps a chunk's memory (16 MB) on feeders with 10^4+ signals
        self.flush_s = flush_s
        self.columns: list[str] | None = None
        self._index: dict[str, int] = {}
        self._buf: np.ndarray | None = None
        self._steps = np.zeros(chunk_rows, np.int64)
        self._fill = 0
        self._chunk = 0  # number of the chunk being filled (its file name)
        self._last_flush = time.monotonic()
        self.rows = 0
        self._text: dict[str, np.ndarray] = {}  # text columns (e.g. label.kind): their chunk buffers
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording")
        self._pending: list[Future] = []
        _fresh_folder(self.path)
        pa.array(np.zeros(1))  # pyarrow's one-time set-up (~0.4 s) now, not in the middle of a run

    def append(self, step: int, values: dict[str, float | str]) -> None:
        """Record one step's values; the first row fixes the columns, a later name outside them is not recorded."""
        if self.columns is None:
            self.columns = list(values)
            self._index = {c: i for i, c in enumerate(self.columns)}
            self.chunk_rows = max(1, min(self.chunk_rows, self.chunk_values // max(1, len(self.columns))))
            self._steps = np.zeros(self.chunk_rows, np.int64)
            self._buf = np.empty((self.chunk_rows, len(self.columns)), np.float64)
            self._text = {c: np.empty(self.chunk_rows, object) for c, v in values.items() if isinstance(v, str)}
        if self._text:  # slow path, only for runs that record text: strings aside, NaN in their float slot
            for c, buf in self._text.items():
                buf[self._fill] = str(values.get(c, ""))
            values = {c: (math.nan if c in self._text else v) for c, v in values.items()}
        row = self._buf[self._fill]
        if len(values) == len(self.columns) and values.keys() == self._index.keys():
            row[:] = np.fromiter(values.values(), np.float64, len(values)) if values else row[:0]
        else:
            row[:] = math.nan
            for name, v in values.items():
                i = self._index.get(name)
                if i is not None:
                    row[i] = v
        self._steps[self._fill] = step
        self._fill += 1
        self.rows += 1
        if self._fill == self.chunk_rows:
            self._flush(final=True)
        elif time.monotonic() - self._last_flush >= self.flush_s and self._idle():
            self._flush(final=False)  # the partial chunk, so a kill loses at most flush_s of rows

    def _table(self, steps: np.ndarray, block: np.ndarray, text: dict[str, np.ndarray]) -> pa.Table:
        """Rows of a chunk as an Arrow table (in the writer thread, from copies: the buffers are reused)."""
        times = self.start + steps * np.timedelta64(self.step_ms, "ms")
        arrays = [pa.array(times, pa.timestamp("ms"))] + [
            pa.array(text[c], pa.string()) if c in text else pa.array(block[:, i])
            for i, c in enumerate(self.columns)]
        return pa.Table.from_arrays(arrays, names=["time", *self.columns])

    def _write(self, rows: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]], path: Path) -> None:
        write_parquet(self._table(*rows), path)

    def _flush(self, final: bool) -> None:
        """Write the chunk being filled to its file; a final (full) chunk moves on to the next file.

        The step's thread only copies the rows (a memcpy); the Arrow table is built, compressed and
        written by the one writer thread, in submission order, so a real-time step never waits for a
        file (at most a partial rewrite and a full chunk are in flight: partial rewrites wait for an idle
        writer)."""
        if not self._fill or self.columns is None:
            return
        n = self._fill
        rows = (self._steps[:n].copy(), self._buf[:n].copy(), {c: b[:n].copy() for c, b in self._text.items()})
        self._reap()
        self._pending.append(self._pool.submit(self._write, rows, self.path / PART.format(self._chunk)))
        self._last_flush = time.monotonic()
        if final:
            self._fill = 0
            self._chunk += 1

    def _idle(self) -> bool:
        return all(f.done() for f in self._pending)

    def _reap(self) -> None:
        """Forget the files written (and raise the error of one that failed, if any)."""
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for f in done:
            f.result()

    def _wait(self) -> None:
        """Wait for every file in flight (and raise its error, if any)."""
        pending, self._pending = self._pending, []
        for f in pending:
            f.result()

    def close(self) -> None:
        """Write what is buffered (an empty run still gets a file with a `time` column)."""
        try:
            self._flush(final=True)
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
        if not part_files(self.path):
            write_parquet(pa.table({"time": pa.array([], pa.timestamp("ms"))}), self.path / PART.format(0))
