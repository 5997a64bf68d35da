"""The background paper's detector: a CNN feature extractor per step, an RNN over the sequence, a small head.

Table 1 of the paper (../shared/seeds/002): learning rate 0.003, gamma 0.93 (here the per-epoch
decay of the learning rate), batch 64, sequence length 8, 6 convolution layers with 5 x 5 kernels
(smaller where the image is smaller), 2 x 2 max-pooling (along the dimensions that still have 2 or
more cells) and tanh. The paper's reinforcement-learning "policy" that classifies is, for a
labelled dataset, a classifier head trained with cross-entropy; see docs/detection.md.
Torch only, CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from cosim.detection.features import Layout

FORMAT = "cosim-detector/1"


@dataclass
class Hyper:
    """Hyperparameters (defaults: the paper's Table 1 where it gives one)."""

    lr: float = 0.003
    gamma: float = 0.93
    batch: int = 64
    window: int = 8
    conv_layers: int = 6
    kernel: int = 5
    channels: int = 8
    neurons: int = 32  # RNN hidden units (the search range of the paper: 16..128)
    layers: int = 1  # RNN layers (the search range of the paper: 1..10)
    epochs: int = 10
    residuals: bool = False  # also read each meter's WLS normalised residual (more image rows; docs/detection.md)
    scaling: str = "std"  # how inputs are standardised: std | asinh (cosim.detection.features)
    clock: bool = False  # also read the step's time of day and of year (features.CLOCK)


def _odd(kernel: int, size: int) -> int:
    """The kernel length along a dimension of `size` cells: at most `size`, odd (symmetric 'same' padding)."""
    k = min(kernel, size)
    return k if k % 2 else max(1, k - 1)


class CnnRnn(nn.Module):
    """(batch, length, rows, cols) images -> one logit per window (attack at its last step)."""

    def __init__(self, shape: tuple[int, int], hyper: Hyper):
        super().__init__()
        h, w = shape
        blocks: list[nn.Module] = []
        channels = 1
        for _ in range(hyper.conv_layers):
            blocks += [nn.Conv2d(channels, hyper.channels, (_odd(hyper.kernel, h), _odd(hyper.kernel, w)),
                                 padding="same"), nn.Tanh()]
            pool = (2 if h >= 2 else 1, 2 if w >= 2 else 1)
            if pool != (1, 1):
                blocks.append(nn.MaxPool2d(pool))
                h, w = h // pool[0], w // pool[1]
            channels = hyper.channels
        self.cnn = nn.Sequential(*blocks)
        self.rnn = nn.RNN(channels * h * w, hyper.neurons, hyper.layers, nonlinearity="tanh", batch_first=True)
        self.head = nn.Sequential(nn.Linear(hyper.neurons, hyper.neurons), nn.Tanh(), nn.Linear(hyper.neurons, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length = x.shape[:2]
        features = self.cnn(x.reshape(b * length, 1, *x.shape[2:])).reshape(b, length, -1)
        out, _ = self.rnn(features)
        return self.head(out[:, -1]).squeeze(-1)


class Ensemble(nn.Module):
    """CNN+RNNs of one layout trained with different seeds; their logits are averaged (the seeds' spread
    averages out)."""

    def __init__(self, members: Sequence[CnnRnn]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


@dataclass
class Trained:
    """A trained detector with what it needs to run: layout, hyperparameters, threshold and history (one model
    or an `Ensemble`)."""

    model: CnnRnn | Ensemble
    layout: Layout
    hyper: Hyper
    threshold: float
    feeder: str
    history: list[dict] = field(default_factory=list)
    wls_test: str = "none"  # in a run, also alarm on this test of WLS's estimate: none | chi2 | lnr | any

    def score(self, windows: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Attack probability of each window (n x length x names of seen values)."""
        self.model.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(windows), batch):
                x = torch.from_numpy(self.layout.images(windows[i:i + batch]))
                out.append(torch.sigmoid(self.model(x)).numpy())
        return np.concatenate(out) if out else np.empty(0)

    def save(self, path: Path, extra: dict | None = None) -> None:
        """A checkpoint that `load` (torch only, `weights_only=True`) reads back."""
        torch.save({"format": FORMAT, "arch": "cnn_rnn", "feeder": self.feeder, "layout": self.layout.to_dict(),
                    "hyper": asdict(self.hyper), "threshold": float(self.threshold), "history": self.history,
                    "wls_test": self.wls_test, "state_dict": self.model.state_dict(), "members": self.members,
                    **(extra or {})}, path)

    @property
    def members(self) -> int:
        """Models averaged: 1, or the ensemble's size."""
        return len(self.model.members) if isinstance(self.model, Ensemble) else 1


def load(path: Path) -> Trained:
    """A checkpoint written by `Trained.save`; ValueError naming what is wrong with it."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same bad input
        raise ValueError(f"cannot read {path} as a torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError(f"{path} is not a detector checkpoint of cosim train-detector (format {FORMAT})")
    try:
        layout, hyper = Layout.from_dict(ck["layout"]), Hyper(**ck["hyper"])
        n = int(ck.get("members", 1))
        model = CnnRnn(layout.shape, hyper) if n == 1 else Ensemble([CnnRnn(layout.shape, hyper) for _ in range(n)])
        model.load_state_dict(ck["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:  # a missing entry, an unknown hyperparameter, other weights
        raise ValueError(f"{path} does not match this version's CNN+RNN detector ({type(exc).__name__}: {exc}); "
                         "retrain it with cosim train-detector") from None
    return Trained(model, layout, hyper, float(ck["threshold"]), ck["feeder"], ck.get("history", []),
                   ck.get("wls_test", "none"))


def threshold_at(scores: np.ndarray, clean: np.ndarray, fpr: float) -> float:
    """The lowest threshold with at most `fpr` of the clean windows at or above it."""
    neg = np.sort(scores[clean])
    if not len(neg):
        return 0.5
    k = int(np.floor(fpr * len(neg)))  # windows allowed to alarm
    return float(np.nextafter(neg[len(neg) - k - 1], np.inf)) if k < len(neg) else float(neg[0])


def train(windows: np.ndarray, labels: np.ndarray, val_windows: np.ndarray, val_labels: np.ndarray,
          names: list[str], feeder: str, hyper: Hyper, seed: int, target_fpr: float = 0.01,
          on_epoch: Callable[[dict], None] | None = None, keep_best: bool = False) -> Trained:
    """Fit a CNN+RNN on windows with labels (1 = attack at the window's last step); threshold on validation.
    `keep_best`: the weights of the epoch with the highest validation AUC (early stopping), else the last."""
    from cosim.events.impact import roc_auc

    torch.manual_seed(seed)
    layout = Layout.fit(names, windows[:, -1, :], hyper.scaling)
    model = CnnRnn(layout.shape, hyper)
    x, y = torch.from_numpy(layout.images(windows)), torch.from_numpy(labels.astype(np.float32))
    pos = max(1.0, float(labels.sum()))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(labels) - pos) / pos))
    opt = torch.optim.Adam(model.parameters(), lr=hyper.lr)
    decay = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=hyper.gamma)
    gen = torch.Generator().manual_seed(seed)
    trained = Trained(model, layout, hyper, 0.5, feeder)
    best_auc, best_state = -np.inf, None
    for epoch in range(hyper.epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in range(0, len(y), hyper.batch):
            idx = order[i:i + hyper.batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        decay.step()
        val = trained.score(val_windows)
        entry = {"epoch": epoch + 1, "train_loss": total / max(1, len(y)),
                 "val_auc": roc_auc(val, val_labels >= 0.5) if len(val) else float("nan")}
        trained.history.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
        if keep_best and np.isfinite(entry["val_auc"]) and entry["val_auc"] > best_auc:
            best_auc, best_state = entry["val_auc"], {k: v.clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    val = trained.score(val_windows)
    trained.threshold = threshold_at(val, val_labels < 0.5, target_fpr)
    return trained


def ensemble(members: Sequence[Trained], seeds: Sequence[int], val_windows: np.ndarray, val_labels: np.ndarray,
             target_fpr: float = 0.01) -> Trained:
    """One detector averaging the logits of `members` (trained with `seeds` on the same data), its threshold set
    again on validation; ValueError if they differ in layout or hyperparameters."""
    first = members[0]
    if any(m.layout.to_dict() != first.layout.to_dict() or m.hyper != first.hyper for m in members):
        raise ValueError("an ensemble's members must share the layout and hyperparameters (one dataset, one recipe)")
    history = [{**e, "seed": s} for m, s in zip(members, seeds) for e in m.history]
    out = Trained(Ensemble([m.model for m in members]), first.layout, first.hyper, 0.5, first.feeder, history,
                  first.wls_test)
    out.threshold = threshold_at(out.score(val_windows), val_labels < 0.5, target_fpr)
    return out
