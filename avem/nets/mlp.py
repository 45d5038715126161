"""Multi-layer perceptrons."""
from __future__ import annotations

import torch.nn as nn


def mlp(in_dim: int, out_dim: int, hidden: int = 256, depth: int = 2,
        activation: type[nn.Module] = nn.ReLU, layer_norm: bool = False) -> nn.Sequential:
    """``(..., in_dim) -> (..., out_dim)`` with ``depth`` hidden layers of width ``hidden``."""
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers.append(nn.Linear(d, hidden))
        if layer_norm:
            layers.append(nn.LayerNorm(hidden))
        layers.append(activation())
        d = hidden
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)
