"""Reliability indices (SAIFI, SAIDI, CAIDI, ENS) against hand computations on IEEE 33 runs through mosaik.

Hand case: IEEE 33 (Baran & Wu 1989) at constant nominal load, one customer per load: 32 loads
(buses 2..33). Line 25 (bus 6 -> 26) out for 20 min cuts off buses 26..33, 8 loads of
60 + 60 + 60 + 120 + 200 + 150 + 210 + 60 = 920 kW. So SAIFI = 8/32, SAIDI = 8 x 20 / 32 min,
CAIDI = 20 min and ENS = 920 kW x 1/3 h.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cosim.cli import app
from cosim.grid.feeders import load_feeder
from cosim.metrics import METRICS, customers_of, reliability_indices

SCENARIO = """\
name: rel
seed: 3
clock: {{start: "2025-06-21T11:00:00", duration: 1h, step: 1min}}
grid: {{feeder: ieee33}}
loads: {{profile: constant}}
impact: {{baseline: false}}
events:
{events}
"""

CUT_OFF_KW = 60 + 60 + 60 + 120 + 200 + 150 + 210 + 60  # buses 26..33 (Baran & Wu 1989)


def _run(tmp_path: Path, events: str) -> tuple[dict, pd.DataFrame]:
    path = tmp_path / "rel.yaml"
    path.write_text(SCENARIO.format(events=textwrap.indent(textwrap.dedent(events), "  ")), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text()), pd.read_parquet(out / "timeseries.parquet")


@pytest.fixture(scope="module")
def one_outage(tmp_path_factory) -> tuple[dict, pd.DataFrame]:
    return _run(tmp_path_factory.mktemp("rel"), "- {kind: line_outage, at: 10min, duration: 20min, line: 25}\n")


def test_ieee33_has_one_customer_per_load_bus():
    customers = customers_of(load_feeder("ieee33"))
    assert customers == {b: 1.0 for b in range(2, 34)}


def test_one_line_outage_matches_the_hand_computation(one_outage):
    metrics, _ = one_outage
    assert metrics["saifi"] == pytest.approx(8 / 32)
    assert metrics["saidi_min"] == pytest.approx(8 * 20 / 32)
    assert metrics["caidi_min"] == pytest.approx(20.0)
    assert metrics["ens_kwh"] == pytest.approx(CUT_OFF_KW * 20 / 60, rel=1e-9)
    assert metrics["ens_kwh"] == pytest.approx(metrics["unserved_energy_kwh"])


def test_customers_per_kw_weight_the_cut_off_load(one_outage):
    """With one customer per kW, SAIFI is the cut-off share of the feeder's 3715 kW (Baran & Wu)."""
    _, ts = one_outage
    kpis = reliability_indices(ts, 60.0, customers_of(load_feeder("ieee33"), kw_per_customer=1.0))
    assert kpis["saifi"] == pytest.approx(CUT_OFF_KW / 3715.0)
    assert kpis["saidi_min"] == pytest.approx(20 * CUT_OFF_KW / 3715.0)


def test_two_interruptions_of_one_branch_count_twice(tmp_path):
    metrics, _ = _run(tmp_path, """\
        - {kind: line_outage, at: 5min, duration: 10min, line: 25}
        - {kind: line_outage, at: 40min, duration: 5min, line: 25}
        """)
    assert metrics["saifi"] == pytest.approx(2 * 8 / 32)
    assert metrics["saidi_min"] == pytest.approx(8 * 15 / 32)
    assert metrics["caidi_min"] == pytest.approx(7.5)


def test_a_run_without_outages_has_zero_indices_and_no_caidi(tmp_path):
    metrics, _ = _run(tmp_path, "- {kind: load_step, at: 10min, duration: 5min, bus: 18, factor: 1.2}\n")
    assert (metrics["saifi"], metrics["saidi_min"], metrics["ens_kwh"]) == (0.0, 0.0, 0.0)
    assert metrics["caidi_min"] is None


def test_every_reliability_key_has_metadata(one_outage):
    metrics, _ = one_outage
    for key in ("saifi", "saidi_min", "caidi_min", "ens_kwh"):
        assert key in metrics and METRICS[key].group == "reliability"
