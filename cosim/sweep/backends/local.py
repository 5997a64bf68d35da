"""The default backend: a process pool on this machine (needs nothing else); one job runs in this process."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence

from cosim.sweep.backends.base import Backend, register


@register("local")
class LocalBackend(Backend):
    """`jobs` worker processes (default: one per core), started by forkserver."""

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        """Run the tasks in a pool, or one after another in this process when jobs is 1 or there is one task."""
        jobs = self.jobs if self.jobs > 0 else (os.cpu_count() or 1)
        if jobs <= 1 or len(tasks) <= 1:
            for i, task in enumerate(tasks):
                try:
                    yield i, fn(*task)
                except Exception as exc:  # noqa: BLE001 - reported as this task's outcome
                    yield i, exc
            return
        # forkserver: workers start from a clean process that imported fn's module once (no fork of a
        # parent holding threads or a torch runtime, no full re-import per worker as with spawn)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([fn.__module__])
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
            futures = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result()
                except Exception as exc:  # noqa: BLE001 - the worker itself died
                    yield futures[future], exc
