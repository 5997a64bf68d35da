"""Shared fixtures: scenario files written into a temporary folder, and the CLI runner."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

warnings.filterwarnings("ignore", category=FutureWarning)

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"

BASE = """\
name: t
seed: 7
clock: {start: "2025-06-21T00:00:00", duration: 2h, step: 5min}
grid: {feeder: ieee33}
loads: {profile: residential, noise: 0.03}
generators:
  - {name: pv1, kind: pv, bus: 18, p_mw: 1.0}
  - {name: wt1, kind: wind, bus: 25, p_mw: 0.8}
"""


@pytest.fixture
def write_scenario(tmp_path: Path):
    """Write YAML text (dedented) to tmp_path/<name> and return its path."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def run_cli(*args):
    """Invoke the `cosim` CLI in-process; returns (exit_code, stdout + stderr, the click result)."""
    from cosim.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output, result


@pytest.fixture
def cli():
    """`run_cli` as a fixture."""
    return run_cli
