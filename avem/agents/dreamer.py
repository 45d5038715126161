"""Dreamer (Hafner et al. 2020, "Dream to Control"): the RSSM world model of PlaNet, plus an
actor and a state-value critic trained on imagined latent trajectories with lambda-returns.

Shared code: the world model is ``avem.models.rssm.RSSM`` trained by ``RSSM.loss`` (the ELBO)
through the RSSM belief part, with the model sizes and schedule it shares with PlaNet
(``avem.agents.rssm_baseline``), and imagination is ``RSSM.imagine``; the policy's distribution is
``avem.nets.distributions.TanhNormal`` and the networks are ``avem.nets.mlp``. Dreamer's critic
is a state value V(s) regressed on lambda-returns (not the soft Q of ``avem.nets.actor_critic``),
and its actor a TanhNormal with Dreamer's mean/std parameterisation: both are written here.

One update (official code ``dreamer.py``, ``Dreamer._train``):
1. model: ``RSSM.loss`` on ``(batch_size, seq_len)`` replay windows, Adam step, clip 100;
2. imagination: from EVERY posterior state of the batch (detached), roll ``horizon`` steps of the
   prior with actions sampled (reparameterised) from the actor on detached features;
3. lambda-returns ``V^lambda`` (``lambda_return``) on the imagined rewards (reward decoder mean)
   and values, bootstrapped with the last value, discount ``gamma``; weights
   ``[1, gamma, gamma^2, ...]``;
4. actor: maximise ``mean(weights * V^lambda)`` by backpropagating through the imagined dynamics
   (model and critic frozen, their gradients discarded), plus ``actor_entropy`` times a one-sample
   entropy estimate (0 in Dreamer v1, which explores by action noise only);
5. critic: ``mean(weights * 0.5 (V(s_tau) - sg(V^lambda_tau))^2)`` on detached imagined states.

Schedule: Dreamer trains 100 steps every 1000 simulator steps (= one 1000-step episode) after
5000 prefill steps; here ``updates_per_episode`` updates run at each episode's first step (the loop's
schedule, ``avem.train.schedule``: as PlaNet) and the loop's ``seed_steps = 5000`` is the prefill.
Acting: ``sample + N(0, 0.3^2)`` noise (clipped) in training; ``explore=False`` returns
``tanh(mean)`` (Dreamer v1 takes the most likely of 100 samples) and filters with the posterior mean.

Deviations from the paper: vector observations (MLP encoder/decoder of the shared RSSM, ELU;
the paper uses pixels and ConvNets), decoders of width ``model_hidden`` = 200 (paper: reward
decoder 2 x 400), the task's customary action repeat (Dreamer used 2 everywhere), Adam's epsilon
torch's 1e-8 (TF's 1e-7), the shared RSSM's vector-observation likelihood (no free nats,
observation std 0.1 x each dimension's running std; the paper's ``--set free_nats=3
obs_scale=fixed obs_std=1`` is a nearly flat likelihood on vector observations). Cost: the behaviour part (2500 imagination starts x 15 steps through
a 4 x 400 actor, forward and backward) is nearly all of an update, which takes seconds on one CPU
core, so on CPU ``imagine_starts`` (default 0: all of them, as the paper) imagines from a random subset
of the posterior states (the benchmarks' and the reference study's preset: 256; timings in
``results/benchmarks/``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from avem.agents.registry import register
from avem.agents.rssm_baseline import RSSMBaseline, RSSMBaselineConfig, paper_rssm
from avem.checks import at_least, fields, non_negative, positive, within
from avem.models.rssm import RSSMConfig
from avem.nets.distributions import TanhNormal
from avem.nets.mlp import mlp

if TYPE_CHECKING:  # annotations only: the agents do not depend on the training package
    from avem.train.replay import ReplayBuffer


@dataclass(frozen=True)
class BehaviourConfig:
    """Dreamer's behaviour learning in imagination: actor and value (block ``behaviour``)."""

    horizon: int = 15
    """Imagination horizon (paper: 15)."""
    imagine_starts: int = 0
    """Imagination start states per update: 0 = every posterior state of the batch (paper: 50 x 50 = 2500);
    n > 0 draws n of them uniformly without replacement (a CPU option: the behaviour part is nearly all of an update's cost)."""
    gamma: float = 0.99
    """Discount per agent step (paper: 0.99)."""
    lambda_: float = 0.95
    """lambda of the lambda-returns (paper: 0.95)."""
    actor_lr: float = 8e-5
    """Adam learning rate of the actor (paper: 8e-5)."""
    value_lr: float = 8e-5
    """Adam learning rate of the value network (paper: 8e-5)."""
    ac_grad_clip: float = 100.0
    """Gradient-norm clip of actor and value updates (paper: 100)."""
    units: int = 400
    """Width of the actor and value hidden layers (paper: 400)."""
    actor_layers: int = 4
    """Hidden layers of the actor (paper: 4)."""
    value_layers: int = 3
    """Hidden layers of the value network (paper: 3)."""
    action_init_std: float = 5.0
    """Initial pre-squash std of the actor: ``std = softplus(raw + softplus^-1(init_std)) + min_std`` (paper: 5)."""
    action_min_std: float = 1e-4
    """Floor of the actor's pre-squash std (paper: 1e-4)."""
    action_mean_scale: float = 5.0
    """The actor's pre-squash mean is ``scale * tanh(raw / scale)`` (paper: 5)."""
    actor_entropy: float = 0.0
    """Weight of the actor's entropy bonus (Dreamer v1: 0, exploration by noise; DreamerV2 uses 1e-4)."""

    tiny: ClassVar[dict] = {"horizon": 3, "units": 16, "actor_layers": 2, "value_layers": 2}
    """The ``tiny`` preset of this block (not a field; ``avem.config_tree``)."""

    def checks(self) -> list[tuple[bool, str]]:
        # horizon >= 2: the last imagined step is bootstrapped
        return fields(self, horizon=at_least(2), imagine_starts=non_negative, gamma=within(0, 1, "(]"),
                      lambda_=within(0, 1), actor_lr=positive, value_lr=positive, ac_grad_clip=positive,
                      units=at_least(1), actor_layers=at_least(1), value_layers=at_least(1),
                      action_init_std=positive, action_min_std=non_negative, action_mean_scale=positive,
                      actor_entropy=non_negative)


@dataclass(frozen=True)
class DreamerConfig(RSSMBaselineConfig):
    """Dreamer: the RSSM baselines' schedule (``RSSMBaselineConfig``), the model, behaviour learning."""

    rssm: RSSMConfig = field(default_factory=lambda: paper_rssm(model_lr=6e-4, model_grad_clip=100.0))
    """The world model at the paper's values (``paper_rssm``), with its optimiser: Adam 6e-4, clip 100 (paper)."""
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    """Actor and value trained in imagination."""


def lambda_return(reward: torch.Tensor, value: torch.Tensor, bootstrap: torch.Tensor, discount: float,
                  lambda_: float) -> torch.Tensor:
    """TD(lambda) returns along axis 1: ``reward, value: (B, T)``, ``bootstrap: (B,)`` -> ``(B, T)``.

    ``R_t = r_t + discount * ((1 - lambda) v_{t+1} + lambda R_{t+1})`` with ``v_T = R_T = bootstrap``
    (Dreamer's ``tools.lambda_return``: ``r_t`` is the reward predicted in state t and ``v_t`` its value).
    """
    next_value = torch.cat([value[:, 1:], bootstrap[:, None]], 1)
    inputs = reward + discount * (1.0 - lambda_) * next_value
    out, last = [], bootstrap
    for t in reversed(range(reward.shape[1])):
        last = inputs[:, t] + discount * lambda_ * last
        out.append(last)
    return torch.stack(out[::-1], 1)


class DreamerActor(nn.Module):
    """``feat (..., F) -> TanhNormal over (..., A)`` with Dreamer's mean and std parameterisation."""

    def __init__(self, feat_dim: int, act_dim: int, cfg: BehaviourConfig):
        super().__init__()
        self.net = mlp(feat_dim, 2 * act_dim, cfg.units, cfg.actor_layers, nn.ELU)
        self.mean_scale, self.min_std = cfg.action_mean_scale, cfg.action_min_std
        self.raw_init_std = math.log(math.expm1(cfg.action_init_std))

    def forward(self, feat: torch.Tensor) -> TanhNormal:
        mean, std = self.net(feat).chunk(2, -1)
        mean = self.mean_scale * torch.tanh(mean / self.mean_scale)
        return TanhNormal(mean, F.softplus(std + self.raw_init_std) + self.min_std)


class _Frozen:
    """Context: modules' parameters get no gradient (gradients still flow THROUGH them)."""

    def __init__(self, *modules: nn.Module):
        self.modules = modules

    def __enter__(self):
        for m in self.modules:
            m.requires_grad_(False)

    def __exit__(self, *exc):
        for m in self.modules:
            m.requires_grad_(True)


class DreamerAgent(RSSMBaseline):
    """``obs: (obs_dim,)`` -> filtering state ``[h, z]`` -> actor -> action; learns in imagination."""

    name = "dreamer"

    def build_heads(self) -> None:
        cfg, feat_dim = self.cfg.behaviour, self.model.feat_dim
        self.actor = DreamerActor(feat_dim, self.act_dim, cfg)
        self.value = mlp(feat_dim, 1, cfg.units, cfg.value_layers, nn.ELU)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.value_opt = torch.optim.Adam(self.value.parameters(), lr=cfg.value_lr)

    def modules(self) -> dict:
        return {**super().modules(), "actor": self.actor, "value": self.value}

    def optimizers(self) -> dict:
        return {**super().optimizers(), "actor": self.actor_opt, "value": self.value_opt}

    @torch.no_grad()
    def act(self, obs: np.ndarray, state, explore: bool):
        """``state``: ``{"latent": filtering state (1, .), "action": a_{t-1} (1, A)}``; None at an episode start."""
        latent, feat = self.filter(obs, state, explore)
        dist = self.actor(feat)
        action = self.add_noise(dist.rsample_with_log_prob(self.gen)[0]) if explore else dist.mode()
        return action[0].cpu().numpy().astype(np.float32), {"latent": latent, "action": action}, {}

    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        """One update: world model, then actor and value on imagined trajectories."""
        cfg = self.cfg.behaviour
        # 1. world model
        seen = self.learn_model(buffer)
        # 2.-4. imagination from every posterior state, actor through the dynamics
        start = {k: v.reshape(-1, v.shape[-1]) for k, v in seen.post.items()}
        n = start["deter"].shape[0]
        if 0 < cfg.imagine_starts < n:
            keep = torch.randperm(n, generator=self.gen, device=self.device)[: cfg.imagine_starts]
            start = {k: v[keep] for k, v in start.items()}
        actor_loss, imag = self.behaviour_losses(start)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.ac_grad_clip)
        self.actor_opt.step()
        # 5. value regression on detached imagined states
        value_pred = self.value(imag["feat"][:, :-1].detach()).squeeze(-1)
        value_loss = (imag["weights"] * 0.5 * (value_pred - imag["returns"].detach()).pow(2)).mean()
        self.value_opt.zero_grad(set_to_none=True)
        value_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.value.parameters(), cfg.ac_grad_clip)
        self.value_opt.step()
        return {**seen.metrics, "actor_loss": actor_loss.item(), "value_loss": value_loss.item(),
                "imag_return": imag["returns"].mean().item(), "imag_reward": imag["reward"].mean().item(),
                "value_mean": imag["value"].mean().item(), "entropy": imag["entropy"].item()}

    def behaviour_losses(self, start: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Imagine ``horizon`` steps from ``start`` (N, .) (detached) and return the actor loss and the
        imagined ``feat (N, H, F)``, ``reward``, ``value (N, H)``, ``returns (N, H-1)``, ``weights (H-1,)``,
        ``entropy``. Model and value network are frozen: the loss's gradient reaches only the actor,
        through the actions fed to the dynamics (Dreamer's "dynamics backpropagation")."""
        cfg, log_probs = self.cfg.behaviour, []

        def policy(feat: torch.Tensor) -> torch.Tensor:
            action, log_q = self.actor(feat.detach()).rsample_with_log_prob(self.gen)
            log_probs.append(log_q)
            return action

        with _Frozen(self.model, self.value):
            traj = self.model.imagine(start, policy, cfg.horizon, self.gen)
            value = self.value(traj["feat"]).squeeze(-1)
            returns = lambda_return(traj["reward"][:, :-1], value[:, :-1], value[:, -1], cfg.gamma, cfg.lambda_)
            weights = cfg.gamma ** torch.arange(cfg.horizon - 1, dtype=returns.dtype, device=returns.device)
            entropy = -torch.stack(log_probs, 1).mean()
            actor_loss = -(weights * returns).mean() - cfg.actor_entropy * entropy
        return actor_loss, {"feat": traj["feat"], "reward": traj["reward"], "value": value, "returns": returns,
                            "weights": weights, "entropy": entropy}


register("dreamer", DreamerAgent, DreamerConfig,
         "Dreamer: RSSM on the ELBO + actor-critic in imagination (H=15, lambda-returns)")
