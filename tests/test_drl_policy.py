"""Training smoke tests, torch-only checkpoints, metadata checks and the shipped policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from controllers.base import ControllerInfo
from controllers.baselines.none import DoNothing
from controllers.drl.env import GridEnv, der_infos, heldout_days
from controllers.drl.policy import PolicyController, PolicyMismatch
from controllers.rollout import run_day
from controllers.drl.train import TrainConfig, train
from cosim.scenario.loader import load_scenario

from conftest import REPO, SCENARIOS

SCENARIO = SCENARIOS / "ieee33-pv-wind.yaml"
SHIPPED = REPO / "policies" / "ieee33-voltvar.pt"

TORCH_ONLY = """
import sys
sys.modules["stable_baselines3"] = None  # any import of it now fails
sys.modules["gymnasium"] = None
import numpy as np
from controllers.drl.policy import PolicyController
ctrl = PolicyController(sys.argv[1])
obs = {name: 1.0 if name.startswith("bus.") else 0.5 for name in ctrl.layout.obs_names}
setpoints = ctrl.act(obs)
assert setpoints and all(np.isfinite(v) for v in setpoints.values()), setpoints
print(sorted(setpoints))
"""


def _info(scenario: Path, **changes) -> ControllerInfo:
    loaded = load_scenario(scenario)
    scn = loaded.scenario
    env = GridEnv(loaded)
    info = ControllerInfo(scn.grid.feeder, scn.clock.step, tuple(scn.grid.voltage_limits), der_infos(loaded),
                          tuple(env.model.signal_names))
    return ControllerInfo(**{**info.__dict__, **changes})


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_training_smoke_writes_a_torch_only_checkpoint(tmp_path, algo):
    cfg = TrainConfig(algo=algo, steps=300, seed=1, hidden=(16, 16), batch_size=32, dqn_levels=2)
    result = train(SCENARIO, cfg, tmp_path, command="test")
    assert result.policy.is_file() and result.metadata.is_file()
    assert result.curve_csv.read_text().startswith("episode,timesteps,day,return")
    assert result.curve_png.stat().st_size > 1000
    meta = json.loads(result.metadata.read_text())
    assert meta["feeder"] == "ieee33" and meta["algo"] == algo
    assert meta["layout"]["obs_names"][0] == "bus.18.vm_pu"
    assert {"cosim-testbed", "torch"} <= set(meta["versions"])
    run = subprocess.run([sys.executable, "-c", TORCH_ONLY, str(result.policy)], capture_output=True, text=True,
                         cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "pv1.q_set_mvar" in run.stdout


def test_cli_train_rejects_an_unknown_algorithm(cli, tmp_path):
    code, output, _ = cli("train", SCENARIO, "--algo", "a2c", "--out", tmp_path / "x", "-q")
    assert code == 2
    assert "unknown algorithm 'a2c'" in output and "ppo" in output and "Traceback" not in output


def test_cli_train_rejects_too_many_dqn_actions(cli, tmp_path):
    code, output, _ = cli("train", SCENARIO, "--algo", "dqn", "--curtail", "--out", tmp_path / "x", "-q")
    assert code == 2 and "levels^8 <= 4096" in output and "Traceback" not in output


def test_cli_train_rejects_a_scenario_without_generators(cli, write_scenario, tmp_path):
    path = write_scenario("""\
        name: empty
        clock: {duration: 1h, step: 5min}
        grid: {feeder: ieee33}
        """)
    code, output, _ = cli("train", path, "--steps", "10", "--out", tmp_path / "x", "-q")
    assert code == 2 and "no generators" in output and "Traceback" not in output


def test_policy_rejects_another_feeder():
    ctrl = PolicyController(SHIPPED)
    with pytest.raises(PolicyMismatch) as exc:
        ctrl.setup(_info(SCENARIO, feeder="ieee69"))
    message = str(exc.value)
    assert str(SHIPPED) in message and "'feeder'" in message and "expected 'ieee69'" in message


def test_policy_rejects_other_observation_names(write_scenario):
    renamed = SCENARIO.read_text().replace("name: wt1", "name: wind")
    with pytest.raises(PolicyMismatch, match=r"'layout.obs_names': .*reads wt1\.p_avail_mw"):
        PolicyController(SHIPPED).setup(_info(write_scenario(renamed)))


def test_policy_rejects_a_der_on_another_bus(write_scenario):
    moved = SCENARIO.read_text().replace("bus: 18,", "bus: 17,")
    with pytest.raises(PolicyMismatch, match=r"'ders': expected pv1 at bus 17.*trained with pv1 at bus 18"):
        PolicyController(SHIPPED).setup(_info(write_scenario(moved)))


def test_cli_reports_a_mismatched_policy_as_bad_input(cli, write_scenario):
    path = write_scenario(f"""\
        name: other-feeder
        clock: {{duration: 1h, step: 5min}}
        grid: {{feeder: ieee69}}
        generators:
          - {{name: pv1, kind: pv, bus: 18, p_mw: 2.0}}
        controller: {{kind: drl, policy: {SHIPPED}}}
        """)
    code, output, _ = cli("validate", path)
    assert code == 2, output
    assert "does not match the scenario" in output and "'feeder'" in output and "Traceback" not in output


def test_shipped_drl_scenario_validates(cli):
    code, output, _ = cli("validate", SCENARIOS / "drl" / "ieee33-voltvar.yaml")
    assert code == 0, output


def test_policy_keeps_setpoints_on_missing_or_nan_signals():
    ctrl = PolicyController(SHIPPED)
    info = _info(SCENARIO)
    ctrl.setup(info)
    obs = {name: 1.0 for name in info.measurements} | {"time.hour_sin": 0.0, "time.hour_cos": 1.0, "time.step": 0.0}
    assert set(ctrl.act(obs)) == set(ctrl.layout.action_names)
    assert ctrl.act({**obs, "bus.18.vm_pu": float("nan")}) == {}
    assert ctrl.act({k: v for k, v in obs.items() if k != "pv1.p_avail_mw"}) == {}


def test_shipped_policy_beats_do_nothing_on_a_held_out_day():
    loaded = load_scenario(SCENARIO)
    day = heldout_days(1)[0]
    policy = run_day(loaded, PolicyController(SHIPPED), day)
    nothing = run_day(loaded, DoNothing(), day)
    assert policy["voltage_violation_bus_minutes"] < 0.5 * nothing["voltage_violation_bus_minutes"]


def test_environment_scores_a_policy_like_the_co_simulation_loop():
    """The env (fast flow, vectors) and the rollout (GridModel, named signals, PolicyController) agree."""
    loaded = load_scenario(SCENARIO)
    day = heldout_days(2)[1]
    ctrl = PolicyController(SHIPPED)
    env = GridEnv(loaded, days=[day])
    obs, _ = env.reset()
    done = False
    while not done:
        with torch.no_grad():
            action = ctrl.net(torch.from_numpy(obs)[None])[0].numpy()
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    kpis = run_day(loaded, ctrl, day)
    day_kpis = info["day_kpis"]
    assert day_kpis["voltage_violation_bus_minutes"] == pytest.approx(kpis["voltage_violation_bus_minutes"], abs=1)
    for key in ("loss_energy_kwh", "reactive_energy_kvarh"):
        assert day_kpis[key] == pytest.approx(kpis[key], rel=1e-6), key
