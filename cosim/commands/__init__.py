"""The `cosim` commands: one module per command (or group), each registering itself on `app`.

A new command is a new module here that decorates its function with `@app.command()`.
"""

from __future__ import annotations

import importlib
import pkgutil

from cosim.commands._common import app

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["app"]
