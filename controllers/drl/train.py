"""Train a policy in `GridEnv` with stable-baselines3 and export it as a torch-only checkpoint.

SAC and TD3 (off-policy) and PPO (on-policy, a clipped Gaussian) drive continuous setpoints; DQN
picks from a discretised action table (every combination of `levels` evenly spaced values per
action), as in the background papers. `ALGORITHMS` says how each is built and where its actor is.
A single scenario trains a policy over its named signals (checkpoint format 1, `GridEnv`);
`per_der=True`, or a distribution file, trains one actor shared by every DER (format 2,
`PerDEREnv`) that runs on any feeder and layout.
`envs` > 1 steps that many copies of the environment in worker processes (stable-baselines3
`SubprocVecEnv`, worker i seeded with seed + i); an off-policy learner takes one gradient step per
vector step, so each step of the vector adds `envs` transitions; PPO collects `ppo_n_steps` steps
per worker, then updates. Per-DER workers drive their other DERs
with a copy of the learner's deterministic actor, refreshed every `SYNC_STEPS` vector steps.
Writes `policy.pt` + `policy.json`, `learning_curve.csv` (one row per training day) and
`learning_curve.png` into the output folder.
"""

from __future__ import annotations

import csv
import itertools
import platform
import time
from functools import partial
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import SubprocVecEnv
from torch import nn

from controllers.drl.checkpoint import FORMAT_PER_DER, MLP, save_policy
from controllers.drl.env import DAY_KPIS, HELDOUT_BASE, GridEnv, NoGenerators, RewardWeights
from controllers.drl.features import DEFAULT_FEATURES, PerDERSpec
from controllers.drl.imitate import CURVE_EXTRA, Imitation, imitate
from controllers.drl.per_der_env import PerDEREnv
from controllers.drl.sources import ScenarioSource, open_source
from cosim.scenario.loader import LoadedScenario

CURVE_FIELDS = ("episode", "timesteps", "day", "return", *DAY_KPIS)
MAX_DQN_ACTIONS = 4096
SYNC_STEPS = 250  # vector steps between refreshes of the workers' copy of the per-DER actor


class TrainError(ValueError):
    """A training request that cannot work (unknown algorithm, nothing to control, too many DQN actions)."""


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how; the defaults produced the shipped policy."""

    algo: str = "sac"
    steps: int = 60_000
    seed: int = 0
    curtail: bool = False
    events_per_day: float = 0.0
    hidden: tuple[int, ...] = (64, 64)
    # Setpoints do not change what later steps can achieve (no ramp limits, no storage), so the
    # best policy is myopic: gamma 0 turns the critic into a reward model and learns fastest.
    gamma: float = 0.0
    learning_rate: float = 1e-3
    batch_size: int = 256
    learning_starts: int = 2_000  # random steps before learning (off-policy); at most half of `steps`
    dqn_levels: int = 5
    # PPO: steps per worker per rollout, passes over each rollout, GAE lambda (no effect at gamma 0:
    # the advantage is then r - V(s)), and the clip of the probability ratio
    ppo_n_steps: int = 2_048
    ppo_epochs: int = 10
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    reward: RewardWeights = RewardWeights()
    dagger_rounds: int = 5  # imitation (`--algo dagger`): rounds of labelled days, each followed by a fit
    dagger_margin: float = 0.005  # imitation: pu inside the voltage limits the oracle labels for
    features: tuple[str, ...] = DEFAULT_FEATURES  # what a per-DER actor reads (`controllers.drl.features`)
    per_der: bool = False  # one actor shared by every DER (always so for a distribution)
    envs: int = 1  # environments stepped in parallel worker processes (1: in this process)


@dataclass
class TrainResult:
    """Where the outputs went and how long training took."""

    policy: Path
    metadata: Path
    curve_csv: Path
    curve_png: Path
    wall_s: float
    episodes: int
    env_steps: int  # transitions collected: at least `steps` (SB3 collects whole rollouts of `envs` steps each)


class DiscreteActions(gym.ActionWrapper):
    """Every combination of `levels` values in [-1, 1] per action dimension, as one Discrete space."""

    def __init__(self, env: gym.Env, levels: int):
        super().__init__(env)
        dims = env.action_space.shape[0]
        if levels < 2 or levels**dims > MAX_DQN_ACTIONS:
            raise TrainError(f"DQN needs 2 <= levels and levels^{dims} <= {MAX_DQN_ACTIONS}, got levels={levels}")
        self.table = np.array(list(itertools.product(np.linspace(-1.0, 1.0, levels), repeat=dims)), np.float32)
        self.action_space = gym.spaces.Discrete(len(self.table))

    def action(self, action: int) -> np.ndarray:
        """The continuous action of table row `action`."""
        return self.table[int(action)]


class CurveCallback(BaseCallback):
    """Collects one learning-curve row per finished day and reports progress."""

    def __init__(self, on_progress: Callable[[int], None] | None, sync: Callable[[], None] | None = None):
        super().__init__()
        self.rows: list[dict] = []
        self.on_progress = on_progress
        self.sync = sync
        self._returns: np.ndarray | None = None

    def _on_step(self) -> bool:
        rewards, dones = self.locals["rewards"], self.locals["dones"]
        if self._returns is None:
            self._returns = np.zeros(len(rewards))
        self._returns += rewards
        for i in np.flatnonzero(dones):  # every environment's finished days, in the order they end
            info = self.locals["infos"][i]
            self.rows.append({"episode": len(self.rows) + 1, "timesteps": self.num_timesteps, "day": info.get("day"),
                              "return": float(self._returns[i]), **info.get("day_kpis", {})})
            self._returns[i] = 0.0
        if self.sync is not None and self.n_calls % SYNC_STEPS == 0:
            self.sync()
        if self.on_progress is not None:
            self.on_progress(self.num_timesteps)
        return True


def _linears(module: nn.Module) -> list[nn.Linear]:
    """The Linear layers of an SB3 MLP in order (built with ReLU activations by `_model`)."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _td3_noise(cfg: TrainConfig, env: gym.Env) -> dict:
    """TD3's exploration: Gaussian noise of 0.1 on every action."""
    n = env.action_space.shape[0]
    return {"action_noise": NormalActionNoise(np.zeros(n), 0.1 * np.ones(n))}


@dataclass(frozen=True)
class Algorithm:
    """One stable-baselines3 learner: its class, its own arguments, and its deterministic actor's layers and head."""

    cls: type[BaseAlgorithm]
    off_policy: bool
    args: Callable[[TrainConfig, gym.Env], dict]
    actor: Callable[[BaseAlgorithm], list[nn.Linear]]
    head: str  # the `MLP` head that reproduces SB3's deterministic action from those layers


ALGORITHMS: dict[str, Algorithm] = {
    "sac": Algorithm(SAC, True, lambda cfg, env: {}, lambda m: _linears(m.actor.latent_pi) + [m.actor.mu], "tanh"),
    "td3": Algorithm(TD3, True, _td3_noise, lambda m: _linears(m.actor.mu), "tanh"),
    "dqn": Algorithm(DQN, True, lambda cfg, env: {"exploration_fraction": 0.3, "target_update_interval": 1_000,
                                                  "train_freq": 4},
                     lambda m: _linears(m.q_net.q_net), "argmax"),
    # the Gaussian's mean, clipped to the action space as SB3's predict does
    "ppo": Algorithm(PPO, False, lambda cfg, env: {"n_steps": cfg.ppo_n_steps, "n_epochs": cfg.ppo_epochs,
                                                   "gae_lambda": cfg.gae_lambda, "clip_range": cfg.clip_range},
                     lambda m: _linears(m.policy.mlp_extractor.policy_net) + [m.policy.action_net], "clip"),
}
IMITATION = "dagger"  # not reinforcement learning: the per-DER actor imitates the OPF oracle (`controllers.drl.imitate`)
ALGOS = (*ALGORITHMS, IMITATION)


def _model(cfg: TrainConfig, env: gym.Env) -> BaseAlgorithm:
    """The SB3 learner for `cfg`, on CPU, with ReLU MLPs `export_actor` can copy."""
    algo = ALGORITHMS[cfg.algo]
    common = dict(gamma=cfg.gamma, learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, seed=cfg.seed,
                  verbose=0, device="cpu", policy_kwargs={"net_arch": list(cfg.hidden), "activation_fn": nn.ReLU})
    if algo.off_policy:
        common.update(learning_starts=min(cfg.learning_starts, cfg.steps // 2), buffer_size=cfg.steps)
    return algo.cls("MlpPolicy", env, **common, **algo.args(cfg, env))


def export_actor(model: BaseAlgorithm, algo: str) -> MLP:
    """The deterministic actor (SAC, TD3, PPO) or Q-network (DQN) of an SB3 model as a plain `MLP`."""
    layers = ALGORITHMS[algo].actor(model)
    net = MLP([layers[0].in_features] + [layer.out_features for layer in layers], ALGORITHMS[algo].head)
    for mine, theirs in zip(net.layers, layers):
        mine.load_state_dict(theirs.state_dict())
    return net.eval()


def write_curve(rows: list[dict], csv_path: Path, png_path: Path, extra: tuple[str, ...] = ()) -> None:
    """The learning curve as CSV (with the learner's own `extra` columns) and as a two-panel PNG (return;
    violations and losses per day)."""
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*CURVE_FIELDS, *extra], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["timesteps"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(steps, [r["return"] for r in rows], marker=".")
    top.set_ylabel("return per day")
    top.set_yscale("symlog")  # the first, random days score orders of magnitude worse
    top.set_title("training days")
    bottom.plot(steps, [r.get("voltage_violation_bus_minutes", np.nan) for r in rows], marker=".", color="tab:red")
    bottom.set_ylabel("violation bus-minutes", color="tab:red")
    losses = bottom.twinx()
    losses.plot(steps, [r.get("loss_energy_kwh", np.nan) for r in rows], marker=".", color="tab:blue")
    losses.set_ylabel("losses (kWh)", color="tab:blue")
    bottom.set_xlabel("environment steps")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def _per_der_env(source: ScenarioSource, cfg: TrainConfig) -> PerDEREnv:
    """The per-DER environment of `cfg` (Q, and P limits when curtailing)."""
    return PerDEREnv(source, PerDERSpec(cfg.features, ("q", "p") if cfg.curtail else ("q",)), cfg.reward)


def _env(source: ScenarioSource, cfg: TrainConfig) -> gym.Env:
    """The environment `cfg` trains in: per-DER for a distribution or `per_der`, else `GridEnv`."""
    if cfg.per_der or source.varies_layout:
        return _per_der_env(source, cfg)
    return GridEnv(source.loaded, curtail=cfg.curtail, events_per_day=cfg.events_per_day, weights=cfg.reward)


class WorkerEnv(gym.Wrapper):
    """A worker process's environment (DQN-discretised when asked); `share` hands a per-DER env its others' actor."""

    def share(self, actor: Callable[[np.ndarray], np.ndarray]) -> None:
        """Let the other DERs act with `actor` (a copy of the learner's)."""
        self.env.unwrapped.others = actor


def worker_env(source: ScenarioSource, cfg: TrainConfig) -> gym.Env:
    """What one `SubprocVecEnv` worker builds (in its own process)."""
    env = _env(source, cfg)
    return WorkerEnv(DiscreteActions(env, cfg.dqn_levels) if cfg.algo == "dqn" else env)


def vector_env(source: ScenarioSource, cfg: TrainConfig) -> SubprocVecEnv:
    """`cfg.envs` worker processes, each with its own environment (fork: they inherit the imports, start fast)."""
    return SubprocVecEnv([partial(worker_env, source, cfg) for _ in range(cfg.envs)], start_method="fork")


class ActorCopy:
    """The learner's deterministic actor (or Q-network with its action table) as `PerDEREnv.others`."""

    def __init__(self, net: MLP, table: np.ndarray | None):
        self.net, self.table = net, table

    def __call__(self, features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.net(torch.as_tensor(features, dtype=torch.float32)).numpy()
        return self.table[out.argmax(axis=1)] if self.table is not None else out


def _share(model: BaseAlgorithm, env: PerDEREnv, table: np.ndarray | None) -> None:
    """Let the other DERs act with the learner's current (stochastic) policy."""
    def others(features: np.ndarray) -> np.ndarray:
        action = model.predict(features, deterministic=False)[0]
        return table[np.asarray(action, int)] if table is not None else action
    env.others = others


def _merged(counts: list[dict]) -> dict:
    """Per-key sums of the workers' counters (days drawn per feeder) or union of their notes."""
    out: dict = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v if isinstance(v, int) else v
    return out


def _trained_on(env: gym.Env, source: ScenarioSource) -> dict:
    """What a checkpoint records about its training data: a scenario's layout, or a distribution."""
    if isinstance(env, PerDEREnv):
        kind = "distribution" if source.varies_layout else "scenario"
        return {"per_der": env.spec.to_dict(),
                "trained_on": {"kind": kind, "file": str(source.path),
                               "feeders": env.feeder_days, "engine_notes": env.engine_notes}}
    scn = env.loaded.scenario
    return {"layout": env.layout.to_dict(), "feeder": scn.grid.feeder, "voltage_limits": list(scn.grid.voltage_limits),
            "ders": [asdict(d) for d in env.ders],
            "scenario": {"name": scn.name, "file": str(env.loaded.path), "seed": scn.seed, "step_s": scn.clock.step}}


def train(scenario: str | Path | LoadedScenario | ScenarioSource, cfg: TrainConfig, out_dir: Path, command: str = "",
          on_progress: Callable[[int], None] | None = None) -> TrainResult:
    """Train on random days of a scenario (or draws of a distribution), export the policy and the learning curve.

    TrainError for requests that cannot work; `command` is recorded in the metadata.
    """
    if cfg.algo not in ALGOS:
        raise TrainError(f"unknown algorithm {cfg.algo!r}: expected one of {', '.join(ALGOS)}")
    if cfg.steps < 1:
        raise TrainError(f"--steps must be at least 1, got {cfg.steps}")
    if cfg.envs < 1:
        raise TrainError(f"--envs must be at least 1, got {cfg.envs}")
    if cfg.algo == IMITATION and (cfg.curtail or cfg.envs > 1):
        raise TrainError(f"--algo {IMITATION} learns reactive setpoints in one process; leave out --curtail and --envs")
    torch.set_num_threads(1)  # small networks: one thread is fastest and leaves the other core free
    t0 = time.perf_counter()
    source = scenario if hasattr(scenario, "draw") else open_source(scenario, cfg.events_per_day)
    try:
        env = _per_der_env(source, cfg) if cfg.algo == IMITATION else _env(source, cfg)
        if isinstance(env, PerDEREnv):
            env.reset(seed=cfg.seed)  # fails here, not inside SB3, when a drawn scenario has no DERs
    except NoGenerators as exc:
        raise TrainError(str(exc)) from None
    if cfg.algo == IMITATION:
        (net, rows, env_steps), table = _imitate(env, cfg, on_progress), None
    else:
        net, rows, env_steps, table = _reinforce(env, source, cfg, on_progress)
    wall = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "algo": cfg.algo,
        **_trained_on(env, source),
        "action_table": table.tolist() if table is not None else None,
        "training": {**asdict(cfg), "wall_s": round(wall, 1), "episodes": len(rows),
                     "env_steps_per_s": round(env_steps / wall, 1),
                     "days": f"random seeds in [0, {HELDOUT_BASE}); held-out days use {HELDOUT_BASE} + k",
                     "command": command},
        "versions": {"cosim-testbed": importlib_metadata.version("cosim-testbed"), "torch": torch.__version__,
                     "python": platform.python_version()},
        "created": datetime.now().isoformat(timespec="seconds"),
    }
    fmt = {"fmt": FORMAT_PER_DER} if isinstance(env, PerDEREnv) else {}
    weights, meta_path = save_policy(out_dir / "policy", net, meta, **fmt)
    curve_csv, curve_png = out_dir / "learning_curve.csv", out_dir / "learning_curve.png"
    write_curve(rows, curve_csv, curve_png, CURVE_EXTRA if cfg.algo == IMITATION else ())
    return TrainResult(weights, meta_path, curve_csv, curve_png, wall, len(rows), env_steps)


def _imitate(env: PerDEREnv, cfg: TrainConfig, on_progress: Callable[[int], None] | None) -> tuple:
    """DAgger on the OPF oracle's labels: (actor, learning-curve rows, env steps)."""
    torch.manual_seed(cfg.seed)  # the actor's initial weights
    net = MLP([len(env.spec.features), *cfg.hidden, len(env.spec.actions)], "tanh")
    report = None if on_progress is None else (lambda row: on_progress(row["timesteps"]))
    rows = imitate(env, net, cfg.steps, cfg.seed, Imitation(rounds=cfg.dagger_rounds, learning_rate=cfg.learning_rate,
                                                            margin=cfg.dagger_margin), report)
    return net.eval(), rows, rows[-1]["timesteps"]


def _reinforce(env: gym.Env, source: ScenarioSource, cfg: TrainConfig,
               on_progress: Callable[[int], None] | None) -> tuple:
    """A stable-baselines3 learner in `env` (or `cfg.envs` workers): (actor, learning-curve rows, env steps,
    DQN action table or None)."""
    train_env: gym.Env = DiscreteActions(env, cfg.dqn_levels) if cfg.algo == "dqn" else env
    table = train_env.table if cfg.algo == "dqn" else None
    vec = vector_env(source, cfg) if cfg.envs > 1 else None
    try:
        model = _model(cfg, vec or train_env)  # SB3 seeds worker i with cfg.seed + i
        sync = None
        if vec is not None and isinstance(env, PerDEREnv):
            def sync() -> None:
                vec.env_method("share", ActorCopy(export_actor(model, cfg.algo), table))
            sync()
        elif isinstance(env, PerDEREnv):
            _share(model, env, table)
        callback = CurveCallback(on_progress, sync)
        model.learn(total_timesteps=cfg.steps, callback=callback)
        if vec is not None and isinstance(env, PerDEREnv):
            env.feeder_days = _merged(vec.get_attr("feeder_days"))
            env.engine_notes = _merged(vec.get_attr("engine_notes"))
    finally:
        if vec is not None:
            vec.close()
    return export_actor(model, cfg.algo), callback.rows, model.num_timesteps, table
