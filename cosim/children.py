"""Child processes that die with the run that started them, even when the run is killed with SIGKILL.

A run's children (firmware stubs) get their own process group, so a Ctrl-C on the terminal
reaches only the run, which then stops them in order after its last step; and on Linux a
parent-death signal (prctl PR_SET_PDEATHSIG, SIGTERM), so the kernel stops them when the run's
process dies without cleaning up. The signal follows the thread that started the child: start
children from the thread that lives as long as the run (the main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None  # loaded before any fork


def _die_with(parent: int) -> Callable[[], None]:
    """The function a child runs before exec: ask for SIGTERM when its parent dies (and check it still lives)."""

    def preexec() -> None:
        if _LIBC is not None and _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            os._exit(126)  # noqa: SLF001 - cannot promise to die with the run: do not start at all
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(126)

    return preexec


def bound_to_run() -> dict[str, Any]:
    """Keyword arguments for `subprocess.Popen`: own process group, parent-death signal on Linux."""
    return {"process_group": 0, "preexec_fn": _die_with(os.getpid())}


def pid_alive(pid: int) -> bool:
    """True when process `pid` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True
