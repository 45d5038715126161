"""PlaNet (Hafner et al. 2019): an RSSM trained on the ELBO, and CEM planning in its latent space.
No policy, no value function.

Shared code: the world model is ``avem.models.rssm.RSSM`` (the AVEM family's model) trained by
its own ``RSSM.loss`` (``iw_samples=0``: the ELBO, terms ``cll`` and ``kl_z``) through the RSSM
belief part, with the model sizes and schedule it shares with Dreamer (``avem.agents.rssm_baseline``); the planner is
``avem.planning.cem`` (PlaNet's CEM over action sequences; the AVEM planner infers only the first
action by importance weights, so it cannot be configured as PlaNet's CEM).

Schedule (paper, Algorithm 1): ``S = 5`` seed episodes of random actions (the loop's
``seed_steps = 5000`` on 1000-step episodes), then alternately ``C = 100`` model updates and one
collected episode. The loop runs ``updates_per_episode`` updates at the first step of each episode
(i.e. once the previous episode is in the buffer; ``avem.train.schedule``) and none on the other
steps, so the update-to-data ratio is the paper's whatever the action repeat. The only shift from the paper: the first action of an episode is
planned before, not after, that round of updates.

Acting: filter the observation (``RSSM.obs_step``), plan with CEM from the filtering state,
execute the first action of the mean sequence; training episodes add ``N(0, 0.3^2)`` noise
(clipped to [-1, 1]); evaluation (``explore=False``) returns the CEM mean without noise and
filters with the posterior mean.

Deviations from the paper (each a config field; nothing else differs in kind):
- CEM is scaled down for CPU: 300 candidates, 5 iterations, top-30 instead of 1000 / 10 / top-100
  (horizon 12 kept): 6.7x fewer imagined roll-outs per decision, so a 100k-step cartpole run (12.5k
  agent steps plus evaluation episodes, 125 decisions each) is several times shorter on one core
  (``tests/benchmarks/bench_baselines.py`` prints the decision rate; measured rates and run times:
  ``results/benchmarks/bench_baselines.md``); ``--set plan_candidates=1000 plan_iterations=10 plan_top_k=100``
  restores the paper's planner;
- vector observations (the shared RSSM has MLP encoder/decoder, no pixel ConvNets yet), so
  ``cartpole-swingup-pos`` (positions only: velocities must be inferred, as from pixels) stands
  in for the paper's pixels;
- the shared RSSM uses ELU layers (PlaNet: ReLU) and a one-layer MLP encoder;
- the vector-observation likelihood of the shared RSSM: no free nats, observation std 0.1 x each
  dimension's running std (``RSSMConfig.obs_scale``); the paper's unit std with 3 free nats is a
  nearly flat likelihood on vector observations, under which the clamp cut the KL gradient in most
  updates. ``--set free_nats=3 obs_scale=fixed obs_std=1`` restores the paper's form.
- Two details of the official code that the paper does not state are NOT reproduced by default:
  its reward loss weight of 10 (``reward_std = 10 ** -0.5`` reproduces it exactly) and a linear
  learning-rate warm-up over the first 10k updates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from avem.agents.registry import register
from avem.agents.rssm_baseline import RSSMBaseline, RSSMBaselineConfig, paper_rssm
from avem.checks import fields, positive
from avem.models.rssm import RSSMConfig
from avem.planning.cem import CEMConfig, cem_plan

if TYPE_CHECKING:  # annotations only: the agents do not depend on the training package
    from avem.train.replay import ReplayBuffer


@dataclass(frozen=True)
class PlaNetConfig(RSSMBaselineConfig):
    """PlaNet: the RSSM baselines' schedule (``RSSMBaselineConfig``), the model's Adam epsilon, the model, CEM."""

    model_eps: float = 1e-4
    """Adam epsilon of the model (paper: 1e-4)."""
    rssm: RSSMConfig = field(default_factory=lambda: paper_rssm(model_lr=1e-3, model_grad_clip=1000.0))
    """The world model at the paper's values (``paper_rssm``), with its optimiser: Adam 1e-3, clip 1000 (paper)."""
    planner: CEMConfig = field(default_factory=CEMConfig)
    """CEM planning (CPU-scaled, see the module doc)."""

    def checks(self) -> list[tuple[bool, str]]:
        return [*super().checks(), *fields(self, model_eps=positive)]


class PlaNetAgent(RSSMBaseline):
    """``obs: (obs_dim,)`` -> filtering state ``[h, z]`` -> CEM over ``(H, act_dim)`` -> first action."""

    name = "planet"

    def __init__(self, obs_space, act_space, cfg: PlaNetConfig, seed: int, device: str = "cpu"):
        super().__init__(obs_space, act_space, cfg, seed, adam_eps=cfg.model_eps, device=device)

    @torch.no_grad()
    def act(self, obs: np.ndarray, state, explore: bool):
        """``state``: ``{"latent": filtering state (1, .), "action": a_{t-1} (1, A)}``; None at an episode start.

        Extras when exploring: ``plan_return``, the mean return of the CEM's elite sequences (the loop
        logs its episode mean as ``train/plan_return``)."""
        cfg = self.cfg.planner
        latent, _ = self.filter(obs, state, explore)
        plan = cem_plan(self.model, latent, self.act_dim, cfg.plan_horizon, cfg.plan_candidates,
                        cfg.plan_iterations, cfg.plan_top_k, cfg.plan_discount, self.gen)
        action, extras = plan.mean[0:1], {}
        if explore:
            extras["plan_return"] = float(plan.elite_return)
            action = self.add_noise(action)
        return action[0].cpu().numpy().astype(np.float32), {"latent": latent, "action": action}, extras

    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        """One model update (the world model's ELBO terms and its gradient norm)."""
        seen = self.learn_model(buffer)
        return {**seen.metrics, "model_grad_norm": seen.grad_norm}


register("planet", PlaNetAgent, PlaNetConfig,
         "PlaNet: RSSM on the ELBO + CEM planning (H=12, CPU-scaled 300/5/top-30); no policy or value")
