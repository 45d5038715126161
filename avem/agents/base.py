"""The agent interface every registered agent implements.

The training loop (``avem.train.loop``) owns the environment, the replay buffer and the
schedule; an agent owns its networks, optimisers and random number generator.

Shapes: ``obs`` is one observation as the environment returns it, ``(obs_dim,)`` float32
(``(3, 64, 64)`` for pixels); ``action`` is ``(act_dim,)`` float32 in [-1, 1].
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from avem.train.replay import ReplayBuffer


@runtime_checkable
class Agent(Protocol):
    """What the training loop calls. Constructor: ``Agent(obs_space, act_space, cfg, seed)``."""

    def initial_state(self) -> Any:
        """Per-episode recurrent state (frame stack, RNN state, planner warm start); None if stateless."""

    def act(self, obs: np.ndarray, state: Any, explore: bool) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
        """``obs: (obs_dim,)`` -> ``(action: (act_dim,) float32 in [-1,1], next state, extras)``.

        ``explore=False`` is evaluation: the deterministic (mean / planned-mean) action.
        ``extras``: per-step data the loop stores in replay beside the transition (``{}`` for most
        agents; the AVEM planners keep the planned ``q(a_t)`` there for the action prior's consolidation).
        The loop also logs the scalar ones (0-d) as episode means, ``train/<name>`` (``avem.train.schedule``).
        """

    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        """One gradient update from the buffer; returns scalar metrics (every loss term, by name)."""

    def state_dict(self) -> dict:
        """Everything needed to resume exactly: networks, optimisers, RNG states."""

    def load_state_dict(self, state: dict) -> None:
        """Inverse of ``state_dict``."""


def obs_dim(space: gym.Space) -> int:
    """Flat size of a Box observation space."""
    return int(np.prod(space.shape))
