"""Discriminative agent's state: a recurrent encoder of the history, no likelihood.

``h_t = GRU(h_{t-1}, MLP([x_t, a_{t-1}]))``; the feature is ``h_t`` (``feat_dim = deter``).
It is trained only through the critic (recurrent SAC, the bound's discriminative agent in ``avem/objective/README.md``: the
state "posterior" is a deterministic function of the history, so ``KL(q(z)||p(z))`` has no
finite value and is not part of this agent's objective or logs).

The reward ``r_t`` is NOT an input: ``Agent.act`` receives only the observation, and the
encoder must see at acting time exactly what it sees in training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from avem.checks import at_least, fields
from avem.nets.mlp import mlp


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes of the recurrent encoder (block ``encoder`` of a discriminative AVEM agent)."""

    deter: int = 128
    """Size of the GRU state h_t (the agent's feature)."""
    model_hidden: int = 128
    """Width of the input layer before the GRU."""

    tiny: ClassVar[dict] = {"deter": 32, "model_hidden": 32}
    """The ``tiny`` preset of this block (not a field; ``avem.config_tree``)."""

    def checks(self) -> list[tuple[bool, str]]:
        return fields(self, deter=at_least(1), model_hidden=at_least(1))


class RecurrentEncoder(nn.Module):
    """``(x_t, a_{t-1}, is_first) -> h_t``; rows follow the replay convention."""

    def __init__(self, obs_dim: int, act_dim: int, deter: int, hidden: int):
        super().__init__()
        self.deter, self.feat_dim = deter, deter
        self.inp = nn.Sequential(mlp(obs_dim + act_dim, hidden, hidden, 1, nn.ELU), nn.ELU())
        self.gru = nn.GRUCell(hidden, deter)

    def initial(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.deter, device=self.gru.weight_hh.device)

    def step(self, h: torch.Tensor, obs: torch.Tensor, prev_action: torch.Tensor,
             is_first: torch.Tensor) -> torch.Tensor:
        """``h (B, D), obs (B, O), prev_action (B, A), is_first (B,) -> h (B, D)``."""
        keep = (1.0 - is_first.float()).unsqueeze(-1)
        return self.gru(self.inp(torch.cat([obs, prev_action * keep], -1)), h * keep)

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor,
                h: torch.Tensor | None = None) -> torch.Tensor:
        """``obs (B,L,O), actions (B,L,A), is_first (B,L) -> features (B,L,D)`` (zero start state)."""
        b, length = obs.shape[:2]
        h = self.initial(b) if h is None else h
        x = self.inp(torch.cat([obs, actions * (1.0 - is_first.float()).unsqueeze(-1)], -1))
        out = []
        for t in range(length):
            h = self.gru(x[:, t], h * (1.0 - is_first[:, t].float()).unsqueeze(-1))
            out.append(h)
        return torch.stack(out, 1)
