"""Columnar recording of every published signal: rows buffered in chunks, written as Parquet row groups.

A run that fails part-way still leaves a readable file with every row recorded before the
failure, because each full chunk is written as it fills and `close()` flushes the rest.
Chunks are compressed and written by one background thread (pyarrow releases the GIL), so a
real-time step does not wait for a row group of thousands of rows to be written.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


class Recording:
    """Rows of signals keyed by name; the first row fixes the columns and which of them hold text."""

    def __init__(self, path: Path, start: np.datetime64, step_s: float, chunk_rows: int = 4096,
                 chunk_values: int = 2_000_000):
        self.path = Path(path)
        self.start = np.datetime64(start, "ms")
        self.step_ms = int(round(step_s * 1000))
        self.chunk_rows = chunk_rows
        self.chunk_values = chunk_values  # caps a chunk's memory (16 MB) on feeders with 10^4+ signals
        self.columns: list[str] | None = None
        self._index: dict[str, int] = {}
        self._buf: np.ndarray | None = None
        self._steps = np.zeros(chunk_rows, np.int64)
        self._fill = 0
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0
        self.unknown: set[str] = set()
        self._text: dict[str, np.ndarray] = {}  # text columns (e.g. label.kind): their chunk buffers
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording")
        self._pending: Future | None = None
        pa.array(np.zeros(1))  # pyarrow's one-time set-up (~0.4 s) now, not in the middle of a run

    def append(self, step: int, values: dict[str, float | str]) -> None:
        """Record one step's values; names never seen in the first row are ignored (and noted)."""
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
                if i is None:
                    self.unknown.add(name)
                else:
                    row[i] = v
        self._steps[self._fill] = step
        self._fill += 1
        self.rows += 1
        if self._fill == self.chunk_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._fill or self.columns is None:
            return
        n = self._fill
        times = self.start + self._steps[:n] * np.timedelta64(self.step_ms, "ms")
        block = self._buf[:n].copy()  # the arrays may share memory with it; the buffer is reused at once
        arrays = [pa.array(times, pa.timestamp("ms"))] + [
            pa.array(self._text[c][:n], pa.string()) if c in self._text else pa.array(block[:, i])
            for i, c in enumerate(self.columns)]
        table = pa.Table.from_arrays(arrays, names=["time", *self.columns])
        self._wait()  # one chunk in flight at a time: row groups stay in order, memory bounded
        self._pending = self._pool.submit(self._write, table)
        self._fill = 0

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table)

    def _wait(self) -> None:
        """Wait for the chunk being written (and raise its error, if any)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Write what is buffered and finish the file (an empty run still gets a `time` column)."""
        try:
            self._flush()
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
        if self._writer is None:
            pq.write_table(pa.table({"time": pa.array([], pa.timestamp("ms"))}), self.path)
        else:
            self._writer.close()
            self._writer = None
