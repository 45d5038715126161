"""Stable-Baselines3's SAC as a registered agent: the external anchor of our own ``sac``.

The training loop owns the environment, so SB3 is used as a learner, not as a runner:

- ``stable_baselines3.SAC("MlpPolicy", <spaces-only env>)`` is built once; its policy, critic,
  optimisers, temperature and REPLAY BUFFER are SB3's own (``SAC.train`` samples SB3's buffer).
- ``update(buffer)`` first copies every loop row it has not seen yet into SB3's buffer (reading
  rows, never sampling ours: warm-up episodes included, as ``sac`` trains on them too), then
  calls SB3's public ``SAC.train(gradient_steps=1, batch_size)``.
- ``act`` calls SB3's ``predict(obs, deterministic=not explore)`` on the same frame stack as
  ``sac`` (the first observation repeated at an episode's start).

Hyperparameters are ``sac``'s (``ActorCriticConfig``) mapped onto SB3's arguments where SB3
allows: one learning rate (so ``actor_lr == critic_lr == alpha_lr`` is required),
``ent_coef='auto_<init_temperature>'``, ``target_entropy=-act_dim``, ``net_arch=[hidden]*depth``
(ReLU, as ours), ``tau``, ``gamma``, ``batch_size``, ``train_freq=1``, ``gradient_steps=1``.
SB3's own choices are kept, and differ from ``sac`` in these places (none is a tuning change):

- the Polyak update: SB3's ``train`` applies it at every call (its ``target_update_interval``
  counts gradient steps inside one call, so with one step per call it cannot skip); ours runs
  every ``target_update_every`` updates, which is reproduced exactly by setting SB3's ``tau``
  to 0 on the calls in between (``target.mul_(1 - 0).add_(0 * p)`` leaves the target as it is);
- the policy's log standard deviation is clipped to [-20, 2] (ours: tanh-rescaled to [-5, 2]);
- the temperature is updated BEFORE the critic (ours after the actor), and SB3's reported
  critic loss is ``0.5 (mse1 + mse2)``: logged here times 2, so it means what ``sac`` logs;
- every transition enters SB3's buffer, including the first ``frame_stack - 1`` of an episode
  whose stack is padded by repetition; ``sac`` samples only windows inside an episode, so it
  never trains on those (2 of 125 transitions per cartpole episode).

Randomness: SB3 draws policy noise from torch's GLOBAL generator (saved by the loop) and samples
its buffer with numpy's GLOBAL ``np.random`` (saved here). Both are seeded at construction by
SB3's ``set_random_seed(seed)``. The checkpoint is ``AgentBase``'s where SB3's objects fit it (the
policy's networks, the optimisers, the counters) plus what does not: SB3's buffer contents, the
temperature ``log_ent_coef`` (a bare tensor that SB3's optimiser steps, so it is copied in place,
not reassigned) and ``np.random``'s state (a global, not a generator the agent owns), so a resumed
run reproduces an uninterrupted one exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import gymnasium as gym
import numpy as np
import torch

from avem.agents.base import AgentBase, flat_obs_dim
from avem.agents.registry import register
from avem.checks import at_least, blocks, fields, require
from avem.nets.actor_critic import ActorCriticConfig

if TYPE_CHECKING:  # annotations only: the agents do not depend on the training package
    from avem.train.replay import ReplayBuffer

_BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


@dataclass(frozen=True)
class SB3SACConfig:
    """SB3 SAC hyperparameters: ``sac``'s fields, mapped onto SB3's arguments (module docstring)."""

    batch_size: int = 256
    """Transitions per gradient update (SB3 ``batch_size``)."""
    frame_stack: int = 3
    """Most recent observations concatenated into SB3's observation (as ``sac``)."""
    buffer_size: int = 1_000_000
    """Capacity of SB3's replay buffer, in transitions (SB3's default; a 100k-step run stores 12.5k)."""
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    """``sac``'s soft actor-critic block, mapped onto SB3's arguments (module docstring)."""

    tiny: ClassVar[dict] = {"batch_size": 32, "buffer_size": 4096}
    """The ``tiny`` preset of these settings (not a field); the block has its own (``avem.config_tree``)."""

    def validate(self) -> None:
        ac = self.actor_critic
        require([*fields(self, frame_stack=at_least(1), batch_size=at_least(1), buffer_size=at_least(1)),
                 *blocks(self)])
        if not ac.actor_lr == ac.critic_lr == ac.alpha_lr:
            raise ValueError(f"sb3-sac has one learning rate for actor, critic and temperature; got actor_lr="
                             f"{ac.actor_lr}, critic_lr={ac.critic_lr}, alpha_lr={ac.alpha_lr}")
        if ac.actor_update_every != 1:
            raise ValueError(f"SB3's SAC updates the actor at every step; actor_update_every must be 1, "
                             f"got {ac.actor_update_every}")


class _SpacesOnly(gym.Env):
    """A gymnasium env that only carries spaces: SB3 needs one to build its networks; nothing steps it."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        raise NotImplementedError("sb3-sac never steps SB3's env: the avem loop owns the environment")

    def step(self, action):
        raise NotImplementedError("sb3-sac never steps SB3's env: the avem loop owns the environment")


class SB3SACAgent(AgentBase):
    """``obs: (obs_dim,)`` -> stacked ``(frame_stack * obs_dim,)`` -> SB3 SAC policy -> ``(act_dim,)``."""

    plain_state = ("num_updates", "_synced", "_stack", "model._n_updates")

    def __init__(self, obs_space, act_space, cfg: SB3SACConfig, seed: int, device: str = "cpu"):
        from stable_baselines3 import SAC
        from stable_baselines3.common.logger import Logger

        self.obs_dim = flat_obs_dim(obs_space, "sb3-sac")
        super().__init__(seed, device)
        self.cfg, self.act_dim, ac = cfg, int(act_space.shape[0]), cfg.actor_critic
        stacked = gym.spaces.Box(-np.inf, np.inf, (cfg.frame_stack * self.obs_dim,), np.float32)
        box = gym.spaces.Box(-1.0, 1.0, (self.act_dim,), np.float32)  # the loop's actions; SB3 then rescales nothing
        self.model = SAC(
            "MlpPolicy", _SpacesOnly(stacked, box), learning_rate=ac.actor_lr, buffer_size=cfg.buffer_size,
            learning_starts=0, batch_size=cfg.batch_size, tau=ac.tau, gamma=ac.gamma, train_freq=1,
            gradient_steps=1, ent_coef=f"auto_{ac.init_temperature}" if ac.learn_temperature else ac.init_temperature,
            target_update_interval=1, target_entropy="auto" if ac.target_entropy is None else ac.target_entropy,
            policy_kwargs={"net_arch": [ac.hidden] * ac.depth}, seed=seed, device=self.device, verbose=0)
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        self.num_updates = 0
        self._synced = 0  # loop rows already copied into SB3's buffer
        self._stack: np.ndarray | None = None  # frame stack at the last copied row

    def _stack_obs(self, obs: np.ndarray, state: np.ndarray | None) -> np.ndarray:
        """``state (frame_stack, obs_dim)`` -> next stack; None starts an episode (first obs repeated)."""
        obs = np.asarray(obs, np.float32)
        if state is None:
            return np.repeat(obs[None], self.cfg.frame_stack, 0)
        return np.concatenate([state[1:], obs[None]])

    def modules(self) -> dict:
        return {"policy": self.model.policy}

    def optimizers(self) -> dict:
        m = self.model
        opts = {"actor": m.actor.optimizer, "critic": m.critic.optimizer}
        return opts if m.ent_coef_optimizer is None else {**opts, "ent_coef": m.ent_coef_optimizer}

    def generators(self) -> dict:
        """None of the agent's own: SB3 draws from the global generators (module docstring)."""
        return {}

    def act(self, obs: np.ndarray, state, explore: bool):
        """``state``: (frame_stack, obs_dim) most recent observations (None at episode start)."""
        state = self._stack_obs(obs, state)
        action, _ = self.model.predict(state.reshape(-1), deterministic=not explore)
        return np.asarray(action, np.float32).reshape(self.act_dim), state, {}

    def _sync(self, buffer: ReplayBuffer) -> None:
        """Copy loop rows ``[_synced, size)`` into SB3's buffer as (stack, a, r, next stack, terminal)."""
        d, rb = buffer.data, self.model.replay_buffer
        for i in range(self._synced, buffer.size):
            if d["is_first"][i]:
                self._stack = self._stack_obs(d["obs"][i], None)
                continue
            nxt = self._stack_obs(d["obs"][i], self._stack)
            rb.add(self._stack.reshape(1, -1), nxt.reshape(1, -1), d["action"][i][None],
                   np.array([d["reward"][i]], np.float32), np.array([float(d["is_terminal"][i])], np.float32),
                   [{}])
            self._stack = nxt
        self._synced = buffer.size

    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        self._sync(buffer)
        ac = self.cfg.actor_critic
        self.model.tau = ac.tau if self.num_updates % ac.target_update_every == 0 else 0.0
        self.model.train(gradient_steps=1, batch_size=self.cfg.batch_size)
        self.num_updates += 1
        log = self.model.logger.name_to_value
        metrics = {"critic_loss": 2.0 * log["train/critic_loss"], "actor_loss": log["train/actor_loss"],
                   "alpha": log["train/ent_coef"]}
        if "train/ent_coef_loss" in log:
            metrics["alpha_loss"] = log["train/ent_coef_loss"]
        return metrics

    def state_dict(self) -> dict:
        """``AgentBase``'s checkpoint plus SB3's buffer, temperature and ``np.random``'s state (module docstring)."""
        m, rb = self.model, self.model.replay_buffer
        n = rb.buffer_size if rb.full else rb.pos
        state = {**super().state_dict(), "np_random": np.random.get_state(),
                 "buffer": {"pos": rb.pos, "full": rb.full, **{k: getattr(rb, k)[:n].copy() for k in _BUFFER_FIELDS}}}
        if m.ent_coef_optimizer is not None:
            state["log_ent_coef"] = m.log_ent_coef.detach().clone()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        m, rb = self.model, self.model.replay_buffer
        if m.ent_coef_optimizer is not None:
            with torch.no_grad():
                m.log_ent_coef.copy_(state["log_ent_coef"])
        b = state["buffer"]
        for k in _BUFFER_FIELDS:
            getattr(rb, k)[: len(b[k])] = b[k]
        rb.pos, rb.full = b["pos"], b["full"]
        np.random.set_state(state["np_random"])


register("sb3-sac", SB3SACAgent, SB3SACConfig,
         "Stable-Baselines3's SAC (external anchor of sac): same frame stack, hyperparameters and evaluation")
