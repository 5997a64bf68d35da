"""Where sweep and regression runs execute: one module per backend (local process pool, Ray), by name."""

from __future__ import annotations

from cosim.sweep.backends import local, ray  # noqa: F401  (they register themselves)
from cosim.sweep.backends.base import BACKENDS, Backend, BackendError

__all__ = ["BACKENDS", "Backend", "BackendError", "open_backend"]


def open_backend(name: str, jobs: int = 0, address: str | None = None) -> Backend:
    """The backend called `name` (use it as a context manager); BackendError for an unknown name or bad option."""
    if name not in BACKENDS:
        raise BackendError(f"--backend {name!r}: unknown backend (known: {', '.join(BACKENDS)})")
    if address and not BACKENDS[name].takes_address:
        raise BackendError(f"--address: the {name} backend runs on this machine only "
                           f"(backends that take an address: {', '.join(n for n, b in BACKENDS.items() if b.takes_address)})")
    return BACKENDS[name](jobs, address)
