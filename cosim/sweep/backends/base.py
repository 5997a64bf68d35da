"""What a backend is: a context manager that runs a picklable function over many argument tuples.

`map` yields (index, result) as each task finishes, in whatever order they finish; a task
that raised (or whose worker died) yields its exception instead of a result, so one failure
never stops the others. Backends register themselves by name with `@register`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Iterator, Sequence

BACKENDS: dict[str, type["Backend"]] = {}


class BackendError(Exception):
    """A backend that cannot start (bad option, cluster that does not answer); `str()` is for a terminal."""


def register(name: str) -> Callable[[type["Backend"]], type["Backend"]]:
    """Class decorator: make a backend selectable as `--backend NAME`."""

    def add(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        BACKENDS[name] = cls
        return cls

    return add


class Backend(ABC):
    """Runs tasks; `jobs` is how many at once (0: the backend's default), `address` where (if it can be told)."""

    name = ""
    takes_address = False  # can run elsewhere than this machine (`--address`)

    def __init__(self, jobs: int = 0, address: str | None = None):
        self.jobs, self.address = jobs, address

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @abstractmethod
    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        """Run fn(*task) for every task; yield (task index, result or the exception it raised) as each finishes."""
