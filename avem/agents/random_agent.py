"""Uniformly random actions: the floor every agent must beat."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avem.agents.base import AgentBase
from avem.agents.registry import register


@dataclass(frozen=True)
class RandomConfig:
    """The random agent has no hyperparameters."""


class RandomAgent(AgentBase):
    """Ignores observations; ``act`` returns ``U[-1, 1]^act_dim`` from its seeded ``rng``."""

    def __init__(self, obs_space, act_space, cfg: RandomConfig, seed: int, device: str = "cpu"):
        super().__init__(seed, device)
        self.act_dim = int(act_space.shape[0])

    def act(self, obs, state, explore: bool):
        return self.rng.uniform(-1, 1, self.act_dim).astype(np.float32), state, {}

    def update(self, buffer) -> dict[str, float]:
        return {}


register("random", RandomAgent, RandomConfig, "Uniformly random actions (lower reference)")
