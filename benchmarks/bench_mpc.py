"""MPC against the baselines on the high-PV day with batteries: violations, losses, curtailment, run time.

    .venv/bin/python benchmarks/bench_mpc.py [--scenario scenarios/ieee33-pv-battery.yaml] [--controllers ...]

Each controller is a real `cosim run` of the scenario (mosaik, the scenario's engine); the
table is Markdown. The goal of issue 11: mpc has fewer violation bus-minutes than droop with
no higher losses. Only mpc drives the batteries; the others leave them idle.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_controllers import COLUMNS, compare  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ["none", "droop", "droop_tuned", "opf", "drl:policies/ieee33-voltvar.pt", "mpc",
           "{kind: mpc, params: {forecast: oracle}}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "ieee33-pv-battery.yaml")
    parser.add_argument("--controllers", nargs="+", default=DEFAULT)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = compare(args.scenario, args.controllers, args.out or Path(tmp))
    print(f"{args.scenario.name}")
    print("| controller | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
