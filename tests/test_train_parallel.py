"""`cosim train --envs N`: parallel worker environments (SubprocVecEnv), seeded seed + i, write loadable policies."""

from __future__ import annotations

import csv
import json

import numpy as np

from controllers.base import ControllerInfo
from controllers.drl.env import GridEnv, der_infos
from controllers.drl.policy import PolicyController
from controllers.drl.train import TrainConfig, train
from cosim.scenario.loader import load_scenario

from conftest import BASE


def _curve(folder) -> list[dict]:
    with (folder / "learning_curve.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _acts(policy, scenario) -> dict[str, float]:
    """The checkpoint's setpoints on the scenario's first step, through the runtime controller."""
    loaded = load_scenario(scenario)
    env = GridEnv(loaded)
    env.reset(seed=0)
    ctrl = PolicyController(policy)
    ctrl.setup(ControllerInfo("ieee33", loaded.scenario.clock.step, (0.95, 1.05), der_infos(loaded),
                              tuple(env.model.signal_names)))
    return ctrl.act({**env.signals(), "time.hour_sin": 0.0, "time.hour_cos": 1.0})


def test_cli_trains_with_two_workers_and_the_checkpoint_loads(cli, write_scenario, tmp_path):
    scenario = write_scenario(BASE)
    out = tmp_path / "out"
    code, text, _ = cli("train", scenario, "--envs", "2", "--steps", "300", "--seed", "1", "--out", out, "-q")
    assert code == 0, text
    meta = json.loads((out / "policy.json").read_text())
    assert meta["training"]["envs"] == 2 and "2 envs" in text
    setpoints = _acts(out / "policy.pt", scenario)
    assert set(setpoints) == {"pv1.q_set_mvar", "wt1.q_set_mvar"} and all(np.isfinite(list(setpoints.values())))
    # 300 transitions over 2 workers of 23-step days: 12 days finish, each a curve row
    assert len(_curve(out)) == 2 * (150 // 23)


def test_worker_i_is_seeded_with_seed_plus_i(write_scenario, tmp_path):
    scenario = write_scenario(BASE)
    cfg = TrainConfig(steps=60, seed=5, envs=2, hidden=(8,), batch_size=16, learning_starts=10)
    train(scenario, cfg, tmp_path, command="test")
    first_days = {int(row["day"]) for row in _curve(tmp_path)[:2]}  # both workers end their first day at once
    env = GridEnv(scenario)
    assert first_days == {env.reset(seed=5)[1]["day"], env.reset(seed=6)[1]["day"]}


def test_per_der_training_with_two_workers_writes_a_per_der_policy(write_scenario, tmp_path):
    scenario = write_scenario(BASE)
    cfg = TrainConfig(steps=120, seed=0, envs=2, per_der=True, hidden=(8,), batch_size=16, learning_starts=20)
    result = train(scenario, cfg, tmp_path, command="test")
    meta = json.loads(result.metadata.read_text())
    assert meta["trained_on"]["feeders"] == {"ieee33": 2 * (60 // 23 + 1)}  # days begun by the two workers
    assert "v_own" in meta["per_der"]["features"]
    setpoints = _acts(result.policy, scenario)
    assert set(setpoints) == {"pv1.q_set_mvar", "wt1.q_set_mvar"} and all(np.isfinite(list(setpoints.values())))


def test_cli_refuses_zero_workers(cli, write_scenario, tmp_path):
    code, text, _ = cli("train", write_scenario(BASE), "--envs", "0", "--out", tmp_path / "o", "-q")
    assert code == 2 and "--envs must be at least 1" in text
