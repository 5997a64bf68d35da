"""`cosim dataset DIST.yaml --runs N`: detector datasets drawn from a distribution (real rollouts, real power flows)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from conftest import SCENARIOS
from controllers.drl.distribution import load_distribution
from cosim.assembly import assemble
from cosim.detection.dataset import read_dataset, with_metering

ATTACKS = "[fdi, fdi_stealthy, replay, delay, drop, sensor_stuck, timestamp_skew, command_injection, command_tamper]"
TINY = f"""name: tiny
clock: {{duration: 2h, step: 1min}}
feeders: [{{feeder: ieee33}}]
ders: {{count: [1, 4], kinds: {{pv: 0.7, wind: 0.3}}}}
loads: {{profiles: [residential, commercial], scale: [0.5, 1.5]}}
events: {{kinds: [dg_trip, cloud_transient, load_step, line_outage], rate_per_day: 12}}
attacks: {{kinds: {ATTACKS}, rate_per_day: 96, duration: [5min, 30min]}}
seed: 7
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-hour distribution and the dataset of 3 runs drawn from it by the CLI."""
    from typer.testing import CliRunner

    from cosim.cli import app

    root = tmp_path_factory.mktemp("dist")
    (root / "d.yaml").write_text(TINY)
    result = CliRunner().invoke(app, ["dataset", str(root / "d.yaml"), "--runs", "3", "--out", str(root / "a"), "-q"])
    assert result.exit_code == 0, result.output
    return root


def test_distribution_dataset_has_its_runs_each_in_one_split_on_different_layouts(tiny):
    data = read_dataset(tiny / "a")
    frame, card = data.frame, data.card
    assert frame.groupby("run")["split"].nunique().max() == 1  # split by run, never by step
    assert list(frame.groupby("run", sort=False)["split"].first()) == ["train", "val", "test"]
    assert len(frame) == 3 * 120 and card["feeders"] == ["ieee33"]
    runs = card["per_run"]
    assert [r["layout_seed"] for r in runs] == [7, 8, 9] and [r["day_seed"] for r in runs] == [7, 8, 9]
    layouts = {tuple((d["kind"], d["bus"], d["p_mw"]) for d in r["ders"]) for r in runs}
    assert len(layouts) == 3
    assert sum(card["events_per_kind"].values()) == sum(sum(r["events_per_kind"].values()) for r in runs) > 3
    assert card["attack_steps"] == int(frame["label.attack"].sum()) > 0


def test_distribution_dataset_carries_true_values_and_targets(tiny):
    frame = read_dataset(tiny / "a").frame
    signals = [c.removeprefix("seen.") for c in frame.columns if c.startswith("seen.")]
    assert all(f"true.{n}" in frame.columns for n in signals)
    calm = frame[frame["label.kind"] == ""]
    volts = [n for n in signals if n.endswith(".vm_pu")]
    error = calm[[f"seen.{n}" for n in volts]].to_numpy() - calm[[f"true.{n}" for n in volts]].to_numpy()
    assert 0 < np.abs(error).max() < 0.05  # meter noise only, no attack: seen is near the truth, never equal
    lone = frame[frame["label.kind"] == "fdi"]
    assert len(lone) and lone["label.target"].str.fullmatch(r"fdi:\S+").all()
    assert (frame.loc[frame["label.kind"] == "", "label.target"] == "").all()


def test_distribution_dataset_is_seeded(tiny, cli):
    assert cli("dataset", tiny / "d.yaml", "--runs", "3", "--out", tiny / "b", "-q")[0] == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tiny / "a" / "steps.parquet"),
                                  pd.read_parquet(tiny / "b" / "steps.parquet"))
    card = {k: v for k, v in json.loads((tiny / "b" / "dataset.json").read_text()).items() if k != "command"}
    assert card == {k: v for k, v in json.loads((tiny / "a" / "dataset.json").read_text()).items() if k != "command"}


def test_runs_with_a_scenario_and_days_with_a_distribution_exit_2(tiny, cli, tmp_path):
    code, output, _ = cli("dataset", SCENARIOS / "ieee33-pv-wind.yaml", "--runs", "2", "--out", tmp_path / "x")
    assert code == 2 and "--runs" in output and "Traceback" not in output
    code, output, _ = cli("dataset", tiny / "d.yaml", "--days", "2", "--out", tmp_path / "x")
    assert code == 2 and "--days" in output and "Traceback" not in output


@pytest.mark.parametrize("text, field", [
    (TINY.replace("seed: 7", "seed: 7\nstrength: 2"), "strength"),
    (TINY.replace("duration: [5min, 30min]", "duration: [5min, 30min], target: bus.3.vm_pu"), "attacks.target"),
    (TINY.replace("[fdi, fdi_stealthy", "[dg_trip, fdi_stealthy"), "attacks.kinds"),
    (TINY.replace("[{feeder: ieee33}]", "[{feeder: ieee33}, {feeder: ieee69}]"), "feeders"),
])
def test_bad_distribution_exits_2_naming_file_and_field(tmp_path, cli, text, field):
    path = tmp_path / "d.yaml"
    path.write_text(text)
    code, output, _ = cli("dataset", path, "--runs", "1", "--out", tmp_path / "x")
    assert code == 2 and str(path) in output.replace("\n", "") and field in output and "Traceback" not in output


def test_shipped_attack_distribution_draws_ieee33_days_with_attacks_and_disruptions():
    dist = load_distribution(SCENARIOS / "detection" / "ieee33-attacks.yaml")
    kinds = set()
    for seed in range(3):
        loaded = dist.draw(seed, seed)
        scn = loaded.scenario
        assert scn.grid.feeder == "ieee33" and 1 <= len(scn.generators) <= 4 and scn.clock.n_steps == 1440
        asm = assemble(dataclasses.replace(loaded, scenario=with_metering(scn)))
        kinds |= {(e.is_attack, e.kind) for e in asm.schedule.events}
    assert {a for a, _ in kinds} == {True, False}  # attacks and physical disruptions
    assert len({k for a, k in kinds if a}) >= 5


def test_seed_option_draws_other_runs_than_the_files_seed(tiny, cli):
    """--seed 20: runs seeded 20, 21 (held-out draws no run of the file's seed 7 has)."""
    assert cli("dataset", tiny / "d.yaml", "--runs", "2", "--seed", "20", "--out", tiny / "c", "-q")[0] == 0
    card = read_dataset(tiny / "c").card
    assert [r["layout_seed"] for r in card["per_run"]] == [20, 21] and card["distribution"]["seed"] == 20


def test_scenario_days_take_a_base_seed_and_dates_drawn_from_a_range(tmp_path, cli):
    """--seed 40 --dates in December: days seeded 40 and 41 on December dates at the file's 11:00, whose midday
    PV (1 MW, clear sky at 52 N) injects less than half of what the file's 21 June does (sun at 14.5 against
    61.5 degrees)."""
    from events_helpers import scenario_text

    path = tmp_path / "noon.yaml"
    path.write_text(scenario_text(duration="1h", step="5min"), encoding="utf-8")
    assert cli("dataset", path, "--days", "2", "--out", tmp_path / "june", "-q")[0] == 0
    code, output, _ = cli("dataset", path, "--days", "2", "--seed", "40", "--dates", "2025-12-01:2025-12-31",
                          "--out", tmp_path / "dec", "-q")
    assert code == 0, output
    card = read_dataset(tmp_path / "dec").card
    assert card["scenarios"][0]["seeds"] == [40, 41] and card["dates"] == ["2025-12-01", "2025-12-31"]
    starts = [pd.Timestamp(r["start"]) for r in card["per_run"]]
    assert all(s.month == 12 and s.year == 2025 and (s.hour, s.minute) == (11, 0) for s in starts)
    june, dec = (read_dataset(tmp_path / d).frame["true.bus.18.p_mw"].mean() for d in ("june", "dec"))
    assert 0 < dec < 0.5 * june
    for bad in ("2025-12-31:2025-12-01", "December"):
        code, output, _ = cli("dataset", path, "--dates", bad, "--out", tmp_path / "x")
        assert code == 2 and "--dates" in output and "Traceback" not in output


def test_dates_with_a_distribution_exits_2(tiny, cli, tmp_path):
    code, output, _ = cli("dataset", tiny / "d.yaml", "--dates", "2025-01-01:2025-02-01", "--out", tmp_path / "x")
    assert code == 2 and "--dates" in output and "dates:" in output and "Traceback" not in output
