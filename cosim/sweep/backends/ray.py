"""The Ray backend: a local Ray instance (2 CPUs unless --jobs says otherwise), or an existing cluster.

Without an address it starts Ray on this machine (no dashboard) and stops it afterwards. With
`--address HOST:PORT` (the head's GCS address, as `ray start --head` prints it) it joins that
cluster; the address must answer within a few seconds or the sweep does not start. Each task
takes one CPU and is not retried (a failed run is a result, not something to repeat).
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Iterator, Sequence

from cosim.sweep.backends.base import Backend, BackendError, register

LOCAL_CPUS = 2
CONNECT_TIMEOUT_S = 5.0


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `HOST:PORT` or `ray://HOST:PORT`; None for what Ray resolves itself (`auto`)."""
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep:
        return None
    if not port.isdigit() or not host:
        raise BackendError(f"--address {address!r}: expected HOST:PORT of a Ray head (e.g. 127.0.0.1:6379), "
                           "ray://HOST:PORT or auto")
    return host.strip("[]"), int(port)


def check_answers(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise BackendError unless something accepts TCP connections at the address."""
    target = _host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as exc:
        raise BackendError(f"--address {address}: no Ray cluster answers there ({exc}); start one with "
                           "`ray start --head` on that host, or leave --address out for a local Ray instance") from None


@register("ray")
class RayBackend(Backend):
    """Tasks as Ray remote functions on a local instance or a cluster; at most `jobs` in flight when given."""

    takes_address = True

    def __enter__(self) -> "RayBackend":
        import ray

        self._owned = not ray.is_initialized()
        if not self._owned:
            return self
        if self.address:
            check_answers(self.address)
            kwargs: dict[str, Any] = {"address": self.address}
        else:
            kwargs = {"num_cpus": self.jobs if self.jobs > 0 else LOCAL_CPUS, "_node_ip_address": "127.0.0.1",
                      "object_store_memory": 128 * 1024**2}
        try:
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray's own reasons (version mismatch, auth, ...)
            raise BackendError(f"Ray did not start{' at ' + self.address if self.address else ''}: "
                               f"{type(exc).__name__}: {exc}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        if self._owned:
            ray.shutdown()

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        """Submit the tasks (at most `jobs` at once when given) and yield each as it finishes."""
        import ray

        remote = ray.remote(fn).options(num_cpus=1, max_retries=0)
        limit = self.jobs if self.jobs > 0 else len(tasks)
        queue = list(enumerate(tasks))
        running: dict[Any, int] = {}
        while queue or running:
            while queue and len(running) < limit:
                i, task = queue.pop(0)
                running[remote.remote(*task)] = i
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                i = running.pop(ref)
                try:
                    yield i, ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the task raised or its worker died
                    yield i, exc
