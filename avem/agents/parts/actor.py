"""The AVEM agent's actor: what infers ``q(a_t)`` at acting time (the E-step for the action).

``act(latent, feat, explore, gen, ig_weight) -> (q(a_t) as a TanhNormal over (1, A), extras)``, with
``latent`` the belief's filter state, ``feat: (1, F)`` its feature, ``ig_weight`` the information
gain's weight in the bound (``alpha * beta_ml``). ``extras`` are per-step data the training loop
stores in replay beside the action and logs (scalars, as episode means).

``PolicyActor``: the amortised policy ``pi(a | z)`` of the soft actor-critic; no extras.

``PlanningActor``: ``LatentPlanner`` (``q* ∝ p_a exp(R / alpha)``; the first iteration's proposal
is the prior mixed with the amortised policy, ``plan_policy_fraction``, importance-corrected;
candidates share the roll-out noise, ``plan_common_noise``; the horizon is bootstrapped with the
soft value ``V(z) = E_pi[min Q] - alpha KL(pi || p_a)`` of the critic and the amortised policy,
which keeps training though it never acts). Extras: the planned ``plan_mean``, ``plan_std`` ``(A,)``
(the learned prior's consolidation targets) and, when exploring, the scalar diagnostics
``plan_return`` (estimated bound under q), ``plan_kl_a`` (``KL(q_plan || p_a)``), ``plan_ess``
(effective sample size fraction), ``plan_temperature`` (alpha, raised where ``plan_min_ess``
asks) and, with the marginal likelihood, ``plan_info_gain``.
"""
from __future__ import annotations

import numpy as np
import torch

from avem.agents.avem_config import AVEMConfig
from avem.nets.action_kl import soft_value
from avem.nets.actor_critic import SoftActorCritic
from avem.nets.distributions import TanhNormal
from avem.planning import LatentPlanner


class PolicyActor:
    """Acts with the amortised policy ``pi(a | z)`` (``prior``, ``model``: unused; the actors share one constructor)."""

    def __init__(self, ac: SoftActorCritic, prior, model, cfg: AVEMConfig):
        self.ac = ac

    def modules(self) -> dict:
        return {}

    def optimizers(self) -> dict:
        return {}

    def act(self, latent, feat: torch.Tensor, explore: bool, gen: torch.Generator,
            ig_weight: float) -> tuple[TanhNormal, dict[str, np.ndarray | float]]:
        return self.ac.actor(feat), {}


class PlanningActor:
    """Acts with ``q(a_t)`` planned in the RSSM ``model`` under the prior part ``prior``."""

    def __init__(self, ac: SoftActorCritic, prior, model, cfg: AVEMConfig):
        self.ac, self.prior, self.cfg, plan = ac, prior, cfg, cfg.planner
        self.planner = LatentPlanner(model, ac.act_dim, plan.plan_horizon, plan.plan_samples, plan.plan_iterations,
                                     plan.plan_min_std, cfg.actor_critic.gamma,
                                     plan.plan_info_gain_samples if cfg.marginal_likelihood else 0,
                                     info_gain_reward=cfg.ml is not None and cfg.ml.ml_reward, min_ess=plan.plan_min_ess,
                                     common_noise=plan.plan_common_noise,
                                     policy_samples=round(plan.plan_policy_fraction * plan.plan_samples),
                                     info_gain_estimator=plan.plan_info_gain_estimator)

    def modules(self) -> dict:
        return {}

    def optimizers(self) -> dict:
        return {}

    def value(self, feat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The horizon bootstrap: the soft value (``avem.nets.action_kl.soft_value``) of the online critic."""
        return soft_value(self.ac.actor, self.ac.critic, feat, eps, self.ac.alpha, self.prior)

    def act(self, latent, feat: torch.Tensor, explore: bool, gen: torch.Generator,
            ig_weight: float) -> tuple[TanhNormal, dict[str, np.ndarray | float]]:
        alpha = self.cfg.planner.plan_temperature or float(self.ac.alpha)
        q = self.planner.plan(latent, self.prior.net, self.value, alpha, ig_weight, gen, policy_fn=self.ac.actor)
        extras = {"plan_mean": q.mean.cpu().numpy(), "plan_std": q.std.cpu().numpy()}
        if explore:  # diagnostics of the acting steps (the KL of a uniform prior draws from gen)
            kl = self.planner.action_prior(feat, self.prior.net).kl(q.mean, q.std, gen)
            extras.update({"plan_return": q.expected_return, "plan_kl_a": float(kl), "plan_ess": q.ess,
                           "plan_temperature": q.extras["temperature"]})
            if self.cfg.marginal_likelihood:
                extras["plan_info_gain"] = q.extras["info_gain"]
        return TanhNormal(q.mean[None], q.std[None]), extras


def make_actor(ac: SoftActorCritic, prior, model, cfg: AVEMConfig) -> PolicyActor | PlanningActor:
    """The actor of ``cfg.planning`` (``model``: the belief's RSSM, None for a discriminative belief)."""
    return (PlanningActor if cfg.planning else PolicyActor)(ac, prior, model, cfg)
