"""Soft actor-critic on feature vectors: the model-free, uniform-prior corner of the bound.

Shared by ``sac`` (features = stacked observations), the AVEM family (features = latent
state) and ``sac-state``. The action KL is a rule passed to ``update`` (``avem.nets.action_kl``):
by default ``UniformKL``, standard SAC (Haarnoja et al. 2018, twin Q, target networks, learned
temperature) with the uniform prior's constant ``d log 2`` dropped from the targets; with a
learned prior (``LearnedKL``) the entropy bonus becomes ``-alpha KL(q(a|z) || p_a(a|z))``:
KL-regularised soft RL. The rule also gives the reported ``kl_a`` and the temperature's loss.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from avem.checks import at_least, fields, positive, within
from avem.nets.action_kl import ActionKL, UniformKL, soft_value, target_entropy
from avem.nets.distributions import TanhNormal
from avem.nets.mlp import mlp


@dataclass(frozen=True)
class ActorCriticConfig:
    """Hyperparameters of the soft actor-critic (block ``actor_critic`` of every agent that trains one)."""

    hidden: int = 256
    """Width of actor and critic hidden layers."""
    depth: int = 2
    """Number of hidden layers of actor and critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy."""
    critic_lr: float = 3e-4
    """Adam learning rate of the twin Q networks (and of any encoder trained through them)."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log(temperature)."""
    init_temperature: float = 0.1
    """Initial temperature alpha (weight of the action KL / entropy term)."""
    learn_temperature: bool = True
    """Tune alpha so that the policy entropy tracks ``target_entropy``."""
    target_entropy: float | None = None
    """Entropy target; None means -act_dim (Haarnoja et al. 2018)."""
    gamma: float = 0.99
    """Discount per agent step."""
    tau: float = 0.005
    """Polyak rate of the target critic."""
    target_update_every: int = 2
    """Update the target critic every this many updates."""
    actor_update_every: int = 1
    """Update actor and temperature every this many critic updates."""
    log_std_min: float = -5.0
    """Lower bound of the policy's pre-squash log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the policy's pre-squash log standard deviation."""

    tiny: ClassVar[dict] = {"hidden": 32}
    """The ``tiny`` preset of this block, for every agent that holds it (not a field; ``avem.config_tree``)."""

    def checks(self) -> list[tuple[bool, str]]:
        return [*fields(self, hidden=at_least(1), depth=at_least(1), actor_lr=positive, critic_lr=positive,
                        alpha_lr=positive, init_temperature=positive, gamma=within(0, 1, "(]"), tau=within(0, 1, "(]"),
                        target_update_every=at_least(1), actor_update_every=at_least(1)),
                (self.log_std_min < self.log_std_max,
                 f"need log_std_min < log_std_max, got {self.log_std_min}, {self.log_std_max}")]


class Actor(nn.Module):
    """``feat: (B, F) -> TanhNormal over (B, act_dim)``."""

    def __init__(self, feat_dim: int, act_dim: int, cfg: ActorCriticConfig):
        super().__init__()
        self.net = mlp(feat_dim, 2 * act_dim, cfg.hidden, cfg.depth)
        self.log_std_min, self.log_std_max = cfg.log_std_min, cfg.log_std_max

    def forward(self, feat: torch.Tensor) -> TanhNormal:
        mean, log_std = self.net(feat).chunk(2, dim=-1)
        log_std = torch.tanh(log_std)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return TanhNormal(mean, log_std.exp())


class TwinQ(nn.Module):
    """``(feat: (B, F), action: (B, A)) -> (q1: (B,), q2: (B,))``."""

    def __init__(self, feat_dim: int, act_dim: int, cfg: ActorCriticConfig):
        super().__init__()
        self.q1 = mlp(feat_dim + act_dim, 1, cfg.hidden, cfg.depth)
        self.q2 = mlp(feat_dim + act_dim, 1, cfg.hidden, cfg.depth)

    def forward(self, feat: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([feat, action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class SoftActorCritic(nn.Module):
    """Actor, twin critic, target critic and temperature, with their optimisers.

    ``extra_critic_params``: parameters (e.g. an observation encoder) trained by the critic
    loss, as in recurrent SAC / SAC-AE.
    """

    def __init__(self, feat_dim: int, act_dim: int, cfg: ActorCriticConfig,
                 generator: torch.Generator, extra_critic_params=()):
        super().__init__()
        self.cfg, self.act_dim, self.gen = cfg, act_dim, generator
        self.actor = Actor(feat_dim, act_dim, cfg)
        self.critic = TwinQ(feat_dim, act_dim, cfg)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_temperature)))
        self.target_entropy = target_entropy(cfg.target_entropy, act_dim)
        self.entropy_kl = UniformKL(act_dim, self.target_entropy, report_constant=False)
        """The default action-KL rule: plain SAC's entropy bonus (``kl_a`` reported as ``-entropy``)."""
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam([*self.critic.parameters(), *extra_critic_params], lr=cfg.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.num_updates = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    def kl_rule(self, action_kl: ActionKL | None) -> ActionKL:
        """``action_kl``, or plain SAC's ``entropy_kl`` for None."""
        return self.entropy_kl if action_kl is None else action_kl

    def critic_loss(self, feat, action, reward, next_feat, discount,
                    action_kl: ActionKL | None = None) -> tuple[torch.Tensor, dict]:
        """Soft Bellman error. ``feat, next_feat: (B, F)``, ``action: (B, A)``, ``reward, discount: (B,)``."""
        with torch.no_grad():
            eps = torch.randn((*next_feat.shape[:-1], self.act_dim), generator=self.gen, dtype=next_feat.dtype,
                              device=next_feat.device)
            soft_v = soft_value(self.actor, self.critic_target, next_feat, eps, self.alpha, self.kl_rule(action_kl))
            target = reward + discount * self.cfg.gamma * soft_v
        q1, q2 = self.critic(feat, action)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        return loss, {"critic_loss": loss.item(), "q_mean": q1.mean().item()}

    def actor_loss(self, feat, action_kl: ActionKL) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """``feat: (B, F)`` (detached). Returns (actor loss, log q and KL of the samples (B,) detached, metrics)."""
        a, log_q = self.actor(feat).rsample_with_log_prob(self.gen)
        q1, q2 = self.critic(feat, a)
        kl = action_kl.kl(feat, a, log_q)
        loss = (self.alpha * kl - torch.min(q1, q2)).mean()
        return loss, log_q.detach(), kl.detach(), {"actor_loss": loss.item(), "kl_a": action_kl.report(kl),
                                                   "entropy": -log_q.mean().item()}

    def update(self, feat, action, reward, next_feat, discount,
               action_kl: ActionKL | None = None) -> dict[str, float]:
        """One SAC update (critic, then every ``actor_update_every`` the actor and alpha).

        ``action_kl``: the action-KL rule (``avem.nets.action_kl``); None = plain SAC's ``entropy_kl``."""
        cfg, action_kl = self.cfg, self.kl_rule(action_kl)
        loss, metrics = self.critic_loss(feat, action, reward, next_feat, discount, action_kl)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        if self.num_updates % cfg.actor_update_every == 0:
            metrics.update(self.update_actor(feat.detach(), action_kl))
        if self.num_updates % cfg.target_update_every == 0:
            soft_update(self.critic_target, self.critic, cfg.tau)
        self.num_updates += 1
        return metrics

    def update_actor(self, feat, action_kl: ActionKL) -> dict[str, float]:
        """Policy step and (if learned) temperature step on detached features ``(B, F)``."""
        self.critic.requires_grad_(False)
        loss, log_q, kl, metrics = self.actor_loss(feat, action_kl)
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        self.critic.requires_grad_(True)
        if self.cfg.learn_temperature:
            alpha_loss = action_kl.temperature_loss(self.log_alpha, log_q, kl)
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
        metrics["alpha"] = self.alpha.item()
        return metrics

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The actor's, the critic's and the temperature's Adam (an agent declares this module as a learner,
        ``AgentBase.learners``, which checkpoints it with them; its ``num_updates`` is plain state)."""
        return {"actor": self.actor_opt, "critic": self.critic_opt, "alpha": self.alpha_opt}


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- (1 - tau) target + tau source``."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
