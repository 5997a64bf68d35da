"""One module per detector kind; importing this package registers every one of them.

Modules are found by listing the package (names starting with `_` are skipped), so a new kind is
one new module here: its model and its build function decorated with `@register`.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
