"""Soft actor-critic on (optionally frame-stacked) observations, and its full-state oracle.

``sac`` is the model-free, uniform-prior corner of the AVEM bound (``avem/objective/README.md``): no latent
model, q(a|x) an amortised policy, KL(q(a)||U) = -entropy + const. ``frame_stack > 1`` gives
it a short history on partially observed tasks. ``sac-state`` is the same agent with
``oracle_state=True``: the training loop then feeds it the FULL state on any task (an upper
reference, labelled as an oracle in figures).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from avem.agents.base import AgentBase, flat_obs_dim
from avem.agents.registry import register
from avem.checks import at_least, blocks, fields, non_negative, require
from avem.nets.actor_critic import ActorCriticConfig, SoftActorCritic

if TYPE_CHECKING:  # annotations only: the agents do not depend on the training package
    from avem.train.replay import ReplayBuffer


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters: replay and input settings, and the soft actor-critic's block."""

    batch_size: int = 256
    """Transitions per gradient update."""
    frame_stack: int = 1
    """Number of most recent observations concatenated into the policy/critic input."""
    updates_per_step: int = 1
    """Gradient updates per agent step (update-to-data ratio)."""
    oracle_state: bool = False
    """Train and evaluate on the FULL state observation whatever the task's obs mode (oracle)."""
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    """The soft actor-critic (actor, twin critic, temperature)."""

    tiny: ClassVar[dict] = {"batch_size": 32}
    """The ``tiny`` preset of these settings (not a field); the block has its own (``avem.config_tree``)."""

    def validate(self) -> None:
        require([*fields(self, frame_stack=at_least(1), batch_size=at_least(1), updates_per_step=non_negative),
                 *blocks(self)])


class SACAgent(AgentBase):
    """``obs: (obs_dim,)`` -> stacked ``(frame_stack * obs_dim,)`` features -> squashed Gaussian action."""

    plain_state = ("ac.num_updates",)

    def __init__(self, obs_space, act_space, cfg: SACConfig, seed: int, device: str = "cpu"):
        self.obs_dim = flat_obs_dim(obs_space, "sac", "; use a state/pos/flicker/noisy/distract task or a "
                                    "model-based agent for pixels")
        super().__init__(seed, device)
        self.cfg, self.act_dim = cfg, int(act_space.shape[0])
        self.ac = SoftActorCritic(cfg.frame_stack * self.obs_dim, self.act_dim, cfg.actor_critic, self.gen)
        self.to_device()

    def learners(self) -> dict:
        return {"ac": self.ac}

    def act(self, obs: np.ndarray, state, explore: bool):
        """``state``: (frame_stack, obs_dim) most recent observations (None at episode start)."""
        obs = np.asarray(obs, np.float32)
        state = np.repeat(obs[None], self.cfg.frame_stack, 0) if state is None else np.concatenate([state[1:], obs[None]])
        with torch.no_grad():
            dist = self.ac.actor(self.tensor(state.reshape(1, -1)))
            a = dist.rsample_with_log_prob(self.gen)[0] if explore else dist.mode()
        return a[0].cpu().numpy().astype(np.float32), state, {}

    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        k, cfg = self.cfg.frame_stack, self.cfg
        b = {key: self.tensor(v) for key, v in buffer.sample(self.rng, cfg.batch_size, k + 1).items()}
        obs = b["obs"]
        feat, next_feat = obs[:, :k].flatten(1), obs[:, 1:].flatten(1)
        discount = 1.0 - b["is_terminal"][:, k].float()
        return self.ac.update(feat, b["action"][:, k], b["reward"][:, k], next_feat, discount)


register("sac", SACAgent, SACConfig,
         "Soft actor-critic on the task's observations (frame stack 3): model-free, uniform action prior",
         frame_stack=3)
register("sac-state", SACAgent, SACConfig,
         "ORACLE: soft actor-critic given the full state on any task (upper reference)",
         oracle_state=True)
