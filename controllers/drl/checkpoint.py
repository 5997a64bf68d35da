"""Policy checkpoints: an actor MLP's torch weights (`.pt`) plus JSON metadata (`.json`), torch only.

The metadata holds everything the runtime needs to use the weights without the training
code: the network shape, the observation/action layout, what it was trained on, and versions.
Format 1 (`layout`) names every signal of one scenario; format 2 (`per_der`) describes what one
shared actor reads about one DER (`controllers.drl.features`), so it runs on any feeder and layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

FORMAT = "cosim-drl-policy/1"  # one actor over a fixed list of named signals (`layout`)
FORMAT_PER_DER = "cosim-drl-policy/2"  # one actor shared by every DER over its local features (`per_der`)
FORMATS = (FORMAT, FORMAT_PER_DER)
HEADS = ("tanh", "clip", "argmax")  # continuous actions in [-1, 1] (squashed, or clipped as PPO's Gaussian mean);
# or the row of an action table with the largest value


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the file and the problem, for the user."""


class CheckpointError(PolicyError):
    """A policy file that is missing, unreadable or not a policy checkpoint."""


class MLP(nn.Module):
    """Linear layers with ReLU between them and a `tanh`, `clip` or `argmax` head."""

    def __init__(self, sizes: Sequence[int], head: str = "tanh"):
        super().__init__()
        if head not in HEADS or len(sizes) < 2:
            raise ValueError(f"need >= 2 layer sizes and a head in {HEADS}, got {list(sizes)}, {head!r}")
        self.sizes, self.head = list(sizes), head
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network output: actions in [-1, 1] for `tanh` and `clip`, raw scores for `argmax`."""
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        x = self.layers[-1](x)
        if self.head == "tanh":
            return torch.tanh(x)
        return x.clamp(-1.0, 1.0) if self.head == "clip" else x


def paths(path: str | Path) -> tuple[Path, Path]:
    """The weights and metadata files of a policy given either of them (or their common stem)."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".pt", ".json") else path
    return stem.with_name(stem.name + ".pt"), stem.with_name(stem.name + ".json")


def save_policy(path: str | Path, net: MLP, metadata: dict[str, Any], fmt: str = FORMAT) -> tuple[Path, Path]:
    """Write `<stem>.pt` (state_dict) and `<stem>.json` (metadata plus the network shape) in format `fmt`."""
    weights, meta = paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), weights)
    full = {"format": fmt, "network": {"sizes": net.sizes, "activation": "relu", "head": net.head}, **metadata}
    meta.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return weights, meta


def load_policy(path: str | Path) -> tuple[MLP, dict[str, Any]]:
    """The network (eval mode) and metadata of a saved policy; CheckpointError names the problem."""
    weights, meta = paths(path)
    for f in (weights, meta):
        if not f.is_file():
            raise CheckpointError(f"policy file {f} does not exist")
    try:
        metadata = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read policy metadata {meta}: {exc}") from None
    if not isinstance(metadata, dict) or metadata.get("format") not in FORMATS:
        got = metadata.get("format") if isinstance(metadata, dict) else None
        raise CheckpointError(f"{meta} is not a policy checkpoint: field 'format' is {got!r}, expected one of "
                              f"{', '.join(map(repr, FORMATS))}")
    try:
        shape = metadata["network"]
        net = MLP(shape["sizes"], shape["head"])
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as exc:  # torch raises several types for corrupt or mismatched files
        raise CheckpointError(f"cannot load policy weights {weights} with metadata {meta}: {exc}") from None
    return net.eval(), metadata
