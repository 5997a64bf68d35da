"""The seed paper's DQN formulation of DG siting and sizing, trained with stable-baselines3, as a comparison.

State: the bus voltages (heaviest snapshot), the losses (per 100 kW) and the emissions (per
500 kg). Action: one DG's site and size, a candidate bus times one of `levels` sizes evenly
spaced in the size range. An episode places the N DGs one per step; a bus already taken is a
wasted step. Reward: the decrease of the penalised F at each step, scaled by the feeder's F
without DG, so an episode's return is (F_0 - F_N) / scale: maximising it minimises the final F,
as the seed's R = -F does. After training, the greedy policy's episode (among the buses still free) is the plan.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

from cosim.planning.problem import Plan, Problem, make_plan

CAP = 10.0  # penalised F beyond CAP x scale is clipped, so infeasible states do not swamp the returns


class PlacementEnv(gym.Env):
    """Place the problem's DGs one by one; see the module docstring."""

    def __init__(self, problem: Problem, levels: int = 20):
        self.problem = problem
        self.sizes = np.linspace(problem.size_min, problem.size_max, levels)
        self.action_space = gym.spaces.Discrete(problem.grid.n * levels)
        n_bus = len(problem.grid.net.bus)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(n_bus + 2,), dtype=np.float32)
        base = problem.baseline()
        self.scale = max(abs(base.value), 1e-9)
        self.best: tuple[float, list[int], list[float]] = (np.inf, [], [])

    def _observe(self):
        s = self.problem.score(self.positions, self.chosen) if self.positions else self.problem.baseline()
        vm = np.nan_to_num(s.evaluation.vm_pu, nan=0.0)
        obs = np.r_[vm, s.terms["loss_kw"] / 100.0, s.terms["emission_kg"] / 500.0].astype(np.float32)
        return obs, min(s.penalised, CAP * self.scale) / self.scale, s

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.positions: list[int] = []
        self.chosen: list[float] = []
        self.steps = 0
        obs, self.g, _ = self._observe()
        return obs, {}

    def decode(self, action: int) -> tuple[int, float]:
        """Candidate position and size of an action."""
        return int(action) // len(self.sizes), float(self.sizes[int(action) % len(self.sizes)])

    def step(self, action):
        position, size = self.decode(action)
        if position not in self.positions:
            self.positions.append(position)
            self.chosen.append(size)
        self.steps += 1
        obs, g, s = self._observe()
        reward, self.g = self.g - g, g
        done = self.steps >= self.problem.n_dgs
        if done and len(self.positions) == self.problem.n_dgs and s.penalised < self.best[0]:
            self.best = (s.penalised, list(self.positions), list(self.chosen))
        return obs, float(reward), done, False, {}


def solve_dqn(problem: Problem, seed: int = 0, steps: int = 20_000, levels: int = 20) -> Plan:
    """Train a DQN on the placement episodes and return its greedy episode (best episode seen in `details`)."""
    import torch
    from stable_baselines3 import DQN

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: one thread is faster, and steady on a shared machine
    try:
        return _train(problem, DQN, seed, steps, levels)
    finally:
        torch.set_num_threads(threads)


def _train(problem: Problem, DQN, seed: int, steps: int, levels: int) -> Plan:
    import torch

    started, solves0 = time.perf_counter(), problem.grid.solves
    env = PlacementEnv(problem, levels)
    model = DQN("MlpPolicy", env, learning_rate=1e-3, buffer_size=min(steps, 50_000), learning_starts=min(500, steps // 4),
                batch_size=64, gamma=0.99, train_freq=4, target_update_interval=250, exploration_fraction=0.6,
                exploration_final_eps=0.05, policy_kwargs={"net_arch": [128, 128]}, seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=steps)
    obs, _ = env.reset()
    done = False
    while not done:  # greedy, among the buses still free
        with torch.no_grad():
            q = model.q_net(torch.as_tensor(obs[None])).numpy()[0]
        taken = np.isin(np.arange(len(q)) // levels, env.positions)
        obs, _, done, _, _ = env.step(int(np.argmax(np.where(taken, -np.inf, q))))
    positions, sizes = list(env.positions), list(env.chosen)
    best_value, best_pos, best_sizes = env.best
    details = {"seed": seed, "train_steps": steps, "size_levels": levels, "episodes": steps // problem.n_dgs,
               "greedy_dgs_placed": len(positions), "engine_note": problem.grid.note,
               "best_seen": {"value_penalised": best_value,
                             "dgs": [{"bus": int(problem.grid.labels[i]), "p_mw": p} for i, p in zip(best_pos, best_sizes)]}}
    return make_plan(problem, "dqn", positions, sizes, started, solves0, details)
