"""Files the testbed reads and writes: paths relative to the file that names them, and atomic writes.

A path in a scenario (or a sweep, a controller spec) is relative to that file's folder; a
results file is written under a temporary name in the same folder and renamed into place,
so a reader never sees half of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def resolve_path(path: str | Path, base_dir: Path) -> Path:
    """`path` as written (with ~ expanded) if absolute, else relative to `base_dir`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def replace_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` for a hidden temporary file beside `path`, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically, flushed to disk before the rename."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    replace_atomic(path, write)
