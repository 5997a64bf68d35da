"""`learned`: a small LSTM (torch, CPU) from the last hour(s) of a signal and the time of day to the next `leads`
steps, trained on generated days of the scenario's own profiles (other dates and seeds than the run).

One network serves every signal: its input per step is the signal over its scale (a DER's rating, the feeder's
nominal load), the hour of day on the unit circle and the signal's kind (pv, wind, load) one-hot; it predicts
the change from the last value at each lead. Training is seeded and tiny (seconds on one core). With
`model: PATH` the checkpoint there is used, or trained and written there when the file does not exist.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from cosim.files import resolve_path
from cosim.forecast.base import LOAD, Context, Forecaster, Series
from cosim.seeding import rng_for

KIND_ORDER = ("pv", "wind", LOAD)
HIDDEN = 32
ITERATIONS = 300
BATCH = 256
LR = 5e-3
MAX_WINDOWS = 20_000  # training steps over all days (each with every signal)
CHUNK = 4096  # steps predicted per batch


class Net(nn.Module):
    """LSTM over the window, a linear read-out of the last hidden state: one change per lead."""

    def __init__(self, leads: int, hidden: int = HIDDEN):
        super().__init__()
        self.lstm = nn.LSTM(3 + len(KIND_ORDER), hidden, batch_first=True)
        self.out = nn.Linear(hidden, leads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        return self.out(h[:, -1])


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread meanwhile: a net this small gains nothing from more, and on a busy 2-core machine
    two threads made training ten times slower (measured: 34 s against 3.9 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def window_steps(leads: int) -> int:
    """History the network reads: as long as the horizon, 6 to 48 steps."""
    return int(min(max(leads, 6), 48))


def features(series: Series, window: int, steps: np.ndarray) -> np.ndarray:
    """Inputs ending at each of `steps` for every signal: (signals x steps, window, features), history padded
    with the first value."""
    m = series.values.shape[1]
    pu = series.values / series.scale[None, :]
    t = np.asarray(series.times, "datetime64[s]")
    hour = (t - t.astype("datetime64[D]")) / np.timedelta64(1, "h")
    clock = np.column_stack([np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)])
    at = np.maximum(steps[:, None] - np.arange(window - 1, -1, -1)[None, :], 0)  # (steps, window)
    out = np.empty((m, len(steps), window, 3 + len(KIND_ORDER)), np.float32)
    for j in range(m):
        out[j, :, :, 0] = pu[at, j]
        out[j, :, :, 1:3] = clock[at]
        out[j, :, :, 3:] = np.eye(len(KIND_ORDER))[KIND_ORDER.index(series.kinds[j])]
    return out.reshape(m * len(steps), window, -1)


def targets(series: Series, leads: int, steps: np.ndarray) -> np.ndarray:
    """Per signal and each of `steps`: the change at each lead from the value now (signals x steps, leads)."""
    pu = series.values / series.scale[None, :]
    delta = pu[steps[:, None] + np.arange(1, leads + 1)[None, :]].transpose(2, 0, 1) - pu[steps].T[:, :, None]
    return delta.reshape(-1, leads).astype(np.float32)


def training_steps(days: list[Series], leads: int, seed: int) -> list[np.ndarray]:
    """The steps of each day whose leads all lie inside it; at most MAX_WINDOWS in all (a seeded sample of
    steps when there are more: fine clock steps would otherwise fill memory)."""
    steps = [np.arange(max(len(d.values) - leads, 0)) for d in days]
    per_day = MAX_WINDOWS // max(len(days), 1)
    rng = rng_for(seed, "forecast", "learned", "windows")
    return [np.sort(rng.choice(s, per_day, replace=False)) if len(s) > per_day else s for s in steps]


def train(days: list[Series], leads: int, seed: int) -> tuple[Net, dict]:
    """A network fitted on `days` (seeded: the same days and seed give the same weights) and its config."""
    window = window_steps(leads)
    steps = training_steps(days, leads, seed)
    x = torch.from_numpy(np.concatenate([features(d, window, s) for d, s in zip(days, steps)]))
    y = torch.from_numpy(np.concatenate([targets(d, leads, s) for d, s in zip(days, steps)]))
    rng = rng_for(seed, "forecast", "learned")
    with torch.random.fork_rng(devices=[]), one_thread():
        torch.manual_seed(int(rng.integers(2**31)))
        net = Net(leads)
        opt = torch.optim.Adam(net.parameters(), lr=LR)
        for _ in range(ITERATIONS):
            batch = torch.from_numpy(rng.integers(len(x), size=BATCH))
            loss = nn.functional.mse_loss(net(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net, {"leads": leads, "window": window, "hidden": HIDDEN}


def load(path: Path) -> tuple[Net, dict]:
    """A checkpoint written by `save`."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = Net(int(ck["config"]["leads"]), int(ck["config"]["hidden"]))
    net.load_state_dict(ck["state"])
    return net, dict(ck["config"])


def save(net: Net, config: dict, path: Path) -> None:
    """Write a checkpoint that `load` reads back (`weights_only=True`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": net.state_dict(), "config": config}, path)


def checkpoint_config(path: Path) -> dict:
    """The config of a checkpoint file (for the loader's checks); raises on anything that is not one."""
    return dict(torch.load(path, map_location="cpu", weights_only=True)["config"])


class Learned(Forecaster):
    """The LSTM forecaster; see the module docstring."""

    def __init__(self, context: Context):
        super().__init__(context)
        self._net: Net | None = None

    def network(self, leads: int) -> tuple[Net, dict]:
        """The checkpoint's network, or one trained on the scenario's generated days (and written to `model`)."""
        spec = self.context.spec
        path = resolve_path(spec.model, self.context.base_dir) if spec.model else None
        if path is not None and path.is_file():
            return load(path)
        net, config = train([self.context.day(i) for i in range(spec.train_days)], leads, self.context.seed)
        config["step_s"] = self.context.step_s
        if path is not None:
            save(net, config, path)
        return net, config

    def predict(self, series: Series, leads: int) -> np.ndarray:
        net, config = self.network(leads)
        n, m = series.values.shape
        delta = np.empty((m, n, leads))
        with torch.no_grad(), one_thread():
            for start in range(0, n, CHUNK):  # a bounded batch of windows at a time
                steps = np.arange(start, min(start + CHUNK, n))
                x = torch.from_numpy(features(series, int(config["window"]), steps))
                delta[:, steps] = net(x).numpy().reshape(m, len(steps), leads)
        pu = series.values.T[:, :, None] / series.scale[:, None, None] + delta
        upper = np.array([1.0 if k != LOAD else np.inf for k in series.kinds])[:, None, None]
        out = np.clip(pu, 0.0, upper) * series.scale[:, None, None]  # a DER never above its rating
        return out.transpose(1, 2, 0)


FORECASTER = Learned
