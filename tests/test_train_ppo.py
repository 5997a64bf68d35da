"""`cosim train --algo ppo`: stable-baselines3 PPO over the per-DER environment, exported as a format-2 checkpoint.

The exported actor is checked against SB3's own deterministic action (`PPO.predict`), and a short
seeded training, run twice, must give the same checkpoint and the same setpoints on the shipped
four-PV IEEE 33 day.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from stable_baselines3 import PPO

from controllers.drl.checkpoint import FORMAT_PER_DER, load_policy
from controllers.drl.per_der_env import PerDEREnv
from controllers.drl.sources import open_source
from controllers.drl.train import export_actor

from conftest import BASE, SCENARIOS

FOUR_PV = SCENARIOS / "drl" / "ieee33-four-pv.yaml"
Q_SET = [f"ctrl.pv{k}.q_set_mvar" for k in range(1, 5)]


def test_exported_ppo_actor_is_sb3s_deterministic_action(write_scenario):
    env = PerDEREnv(open_source(write_scenario(BASE)))
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=1, device="cpu",
                policy_kwargs={"net_arch": [16, 16], "activation_fn": torch.nn.ReLU})
    model.learn(128)
    with torch.no_grad():  # push part of the means beyond [-1, 1], where SB3 clips
        model.policy.action_net.weight.mul_(200.0)
    obs = np.random.default_rng(0).uniform(-2.0, 2.0, (200, env.observation_space.shape[0])).astype(np.float32)
    expected = model.predict(obs, deterministic=True)[0]
    assert (np.abs(expected) == 1.0).any() and (np.abs(expected) < 1.0).any()
    with torch.no_grad():
        got = export_actor(model, "ppo")(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _four_pv_with(policy, tmp_path, name: str):
    """The shipped four-PV day with `policy` as its controller."""
    path = tmp_path / f"{name}.yaml"
    text = FOUR_PV.read_text(encoding="utf-8")
    assert "controller: {kind: none}" in text
    path.write_text(text.replace("controller: {kind: none}", f"controller: {{kind: drl, policy: {policy}}}"),
                    encoding="utf-8")
    return path


def test_short_seeded_ppo_training_runs_the_four_pv_day_and_repeats_exactly(cli, write_scenario, tmp_path):
    scenario = write_scenario(BASE)
    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"ppo-{name}"
        code, text, _ = cli("train", scenario, "--algo", "ppo", "--per-der", "--steps", "3000", "--seed", "3",
                            "--envs", "2", "--out", out, "-q")
        assert code == 0, text
        meta = json.loads((out / "policy.json").read_text())
        assert meta["format"] == FORMAT_PER_DER and meta["algo"] == "ppo" and meta["network"]["head"] == "clip"
        assert meta["training"]["ppo_n_steps"] == 2048 and meta["training"]["envs"] == 2
        code, text, _ = cli("run", _four_pv_with(out / "policy.pt", tmp_path, name), "--out", tmp_path / f"run-{name}",
                            "-q")
        assert code == 0, text
        events = pd.read_csv(tmp_path / f"run-{name}" / "events.csv")
        assert "controller_error" not in set(events["kind"])
        runs.append(pd.read_parquet(tmp_path / f"run-{name}" / "timeseries.parquet")[Q_SET].to_numpy(float))
    a, b = (load_policy(tmp_path / f"ppo-{n}" / "policy.pt")[0].state_dict() for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same weights
    q = runs[0][1:]  # row 0 is before the controller's first action
    ratings = 1.1 * np.array([2.0, 1.5, 1.5, 1.2])  # the default inverter rating is 1.1 x nameplate
    assert np.isfinite(q).all() and np.abs(q).max() > 0 and (np.abs(q) <= ratings + 1e-9).all()
    np.testing.assert_array_equal(runs[0], runs[1])
