"""`cosim` command line: run and validate scenarios (exit 2 on bad input, 1 on a failed run).

The commands live in `cosim.commands`, one module each.
"""

from __future__ import annotations

import sys
import warnings

from cosim.commands import app

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sys.exit(app())
