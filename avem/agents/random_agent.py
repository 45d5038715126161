"""Uniformly random actions: the floor every agent must beat."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avem.agents.registry import register


@dataclass(frozen=True)
class RandomConfig:
    """The random agent has no hyperparameters."""


class RandomAgent:
    """Ignores observations; ``act`` returns ``U[-1, 1]^act_dim`` from its own seeded generator."""

    def __init__(self, obs_space, act_space, cfg: RandomConfig, seed: int):
        self.act_dim = int(act_space.shape[0])
        self.rng = np.random.default_rng(seed)

    def initial_state(self):
        return None

    def act(self, obs, state, explore: bool):
        return self.rng.uniform(-1, 1, self.act_dim).astype(np.float32), state, {}

    def update(self, buffer) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


register("random", RandomAgent, RandomConfig, "Uniformly random actions (lower reference)")
