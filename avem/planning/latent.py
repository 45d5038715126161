"""Planning in the agent's own model: the E-step for q(a_t) of a generative agent.

For each candidate first action ``a_t = tanh(u)`` the RSSM prior is rolled ``horizon`` steps
from the current filtering state; actions of later steps are drawn from the ACTION PRIOR (the
roll-out policy: the learned ``p_a(a|z)`` or uniform). The estimated future bound is

    R(a_t) = sum_{tau=1..H} gamma^(tau-1) [ r_hat_{t+tau} + w * IG_{t+tau} ] + gamma^H V(z_{t+H})

with ``r_hat`` the reward decoder's mean, ``V`` the soft value supplied by the agent, ``w`` the
information gain's weight (``alpha * beta_ml``: the bound multiplied by the temperature alpha
puts every nat-valued term in reward units, ``avem/objective/README.md``) and (only
with the marginal-likelihood switch) the information gain ``IG = log p(x, r | z) - log p(x, r | h)``
estimated on an imagined sample ``(x, r) ~ p(x, r | h, z)``: the marginal uses ``K`` prior draws
``z^k ~ p(z | h)`` of which one is the true ``z`` (a contrastive estimate, at most ``log K``).
Future actions drawn from the prior contribute ``KL(p_a || p_a) = 0``; the KL of ``q(a_t)`` itself
is accounted for by the closed form ``q* ∝ p_a exp(R / alpha)`` (``planning.importance``).

``common_noise=True``: all candidates of one iteration share the roll-out's random numbers (the
latent transition noise, the future actions' noise, the value's action sample and the imagined
observation), so ``R(a) - R(a')`` measures the first actions, not the luck of independent
roll-outs (common random numbers). With independent roll-outs the spread of one-sample returns
is far larger than the spread the first action causes, and the weights follow the noise.
"""
from __future__ import annotations

from typing import Callable

import torch

from avem.models.rssm import RSSM, State
from avem.nets.distributions import TanhNormal
from avem.objective import gaussian_log_prob, information_gain, iw_log_marginal
from avem.planning.importance import ActionPosterior, infer_action_posterior
from avem.planning.priors import GaussianActionPrior, MixtureProposal, UniformActionPrior

PriorFn = Callable[[torch.Tensor], TanhNormal]
ValueFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``value_fn(feat: (N, F), eps: (N, A) standard-normal noise of its action sample) -> (N,)``."""


IG_ESTIMATORS = ("contrastive", "posterior")
"""Estimators of the imagined information gain (``LatentPlanner.info_gain``)."""


class LatentPlanner:
    """Importance-sampling planner over the RSSM. Sizes are per decision (one current state)."""

    def __init__(self, model: RSSM, act_dim: int, horizon: int, num_samples: int, iterations: int,
                 min_std: float, gamma: float, info_gain_samples: int = 0, info_gain_reward: bool = True,
                 min_ess: float = 0.0, common_noise: bool = False, policy_samples: int = 0,
                 info_gain_estimator: str = "contrastive"):
        if not 0 <= policy_samples <= num_samples:
            raise ValueError(f"policy_samples must be in [0, num_samples={num_samples}], got {policy_samples}")
        if info_gain_estimator not in IG_ESTIMATORS:
            raise ValueError(f"info_gain_estimator must be one of {IG_ESTIMATORS}, got {info_gain_estimator!r}")
        self.ig_estimator = info_gain_estimator
        self.model, self.act_dim, self.min_ess = model, act_dim, min_ess
        self.policy_samples = policy_samples
        self.common_noise = common_noise
        self.ig_reward = info_gain_reward
        self.horizon, self.num_samples, self.iterations = horizon, num_samples, iterations
        self.min_std, self.gamma, self.ig_samples = min_std, gamma, info_gain_samples

    def action_prior(self, feat: torch.Tensor, prior_fn: PriorFn | None):
        """The prior over u at one state ``feat (1, F)``."""
        if prior_fn is None:
            return UniformActionPrior(self.act_dim, device=feat.device)
        dist = prior_fn(feat)
        return GaussianActionPrior(dist.mean[0], dist.std[0])

    @torch.no_grad()
    def plan(self, state: State, prior_fn: PriorFn | None, value_fn: ValueFn, alpha: float,
             ig_weight: float, gen: torch.Generator | None, policy_fn: PriorFn | None = None) -> ActionPosterior:
        """``state``: the current filtering state (batch 1). Returns q(a_t) over u.

        ``alpha``: the temperature of ``q* ∝ p_a exp(R / alpha)``; ``ig_weight``: ``w`` of the
        information gain in ``R`` (the agent passes ``alpha * beta_ml`` with the bound's alpha).

        ``policy_fn``: the amortised policy; with ``policy_samples > 0`` that many first-iteration
        candidates are drawn from it instead of the prior (a mixture proposal, importance-corrected)."""
        feat = self.model.feat(state)
        prior = self.action_prior(feat, prior_fn)
        proposal = None
        if self.policy_samples > 0:
            if policy_fn is None:
                raise ValueError("policy_samples > 0 needs a policy_fn")
            pi = policy_fn(feat)
            proposal = MixtureProposal([prior, GaussianActionPrior(pi.mean[0], pi.std[0])],
                                       [self.num_samples - self.policy_samples, self.policy_samples])
        return_fn = lambda u: self.rollout_return(state, u, prior_fn, value_fn, ig_weight, gen)  # noqa: E731
        return infer_action_posterior(prior, return_fn, alpha, self.num_samples, self.iterations, gen, self.min_std,
                                      self.min_ess, proposal)

    def rollout_return(self, state: State, u: torch.Tensor, prior_fn: PriorFn | None, value_fn: ValueFn,
                       ig_weight: float, gen: torch.Generator | None) -> tuple[torch.Tensor, dict]:
        """``u: (N, A)`` first actions (pre-squash) -> ``(R: (N,), {"reward", "info_gain"}: (N,))``."""
        n = u.shape[0]
        s = {k: v.expand(n, *v.shape[1:]) for k, v in state.items()}
        action = torch.tanh(u)
        ret, rew_sum, ig_sum = (torch.zeros(n, device=u.device) for _ in range(3))
        discount = 1.0
        for tau in range(self.horizon):
            s = self.model.img_step(s, action, gen, sample=False)
            s["stoch"] = s["mean"] + s["std"] * self._noise(n, s["mean"].shape[1:], gen)
            feat = self.model.feat(s)
            obs_mean, rew_mean = self.model.decode(feat)
            step = rew_mean
            rew_sum = rew_sum + discount * rew_mean
            if self.ig_samples > 0:
                ig = self.info_gain(s, obs_mean, rew_mean, gen)
                step = step + ig_weight * ig
                ig_sum = ig_sum + discount * ig
            ret = ret + discount * step
            discount *= self.gamma
            if tau < self.horizon - 1:
                action = self.future_action(feat, prior_fn, gen)
        ret = ret + discount * value_fn(feat, self._noise(n, (self.act_dim,), gen))
        return ret, {"reward": rew_sum, "info_gain": ig_sum}

    def _noise(self, n: int, shape: tuple, gen: torch.Generator | None, draw=torch.randn,
               lead: tuple = ()) -> torch.Tensor:
        """``(*lead, n, *shape)`` noise from ``draw`` (randn or rand); with ``common_noise`` one draw
        is shared by the n rows. Same random stream as drawing ``(*lead, n, *shape)`` directly."""
        rows = 1 if self.common_noise else n
        noise = draw((*lead, rows, *shape), generator=gen, device=self.model.gru.weight_hh.device)
        return noise.expand(*lead, n, *shape)

    def future_action(self, feat: torch.Tensor, prior_fn: PriorFn | None, gen: torch.Generator | None) -> torch.Tensor:
        """An action of a later roll-out step ``(N, A)``, drawn from the action prior at ``feat (N, F)``."""
        n = feat.shape[0]
        if prior_fn is None:
            return self._noise(n, (self.act_dim,), gen, draw=torch.rand) * 2.0 - 1.0
        return prior_fn(feat).sample_from_noise(self._noise(n, (self.act_dim,), gen))[0]

    def info_gain(self, s: State, obs_mean: torch.Tensor, rew_mean: torch.Tensor,
                  gen: torch.Generator | None) -> torch.Tensor:
        """``log p(x, r | h, z) - log p(x, r | h)`` on one imagined sample per row: (N,).

        ``info_gain_reward=False``: ``log p(x | h, z) - log p(x | h)`` (observations only). The marginal
        ``log p(x | h)`` is estimated by ``info_gain_estimator``: ``contrastive`` (the true z against K-1
        draws from the prior; at most log K, far below the gain when the likelihood is sharp) or
        ``posterior`` (the data side's estimator, ``RSSM.loss``: z from the model's posterior q(z | h, x)
        on the imagined x, the marginal importance-weighted with K draws from q, ``_posterior_info_gain``),
        which estimates the same quantity the critic's reward holds.
        """
        cfg, k, obs_std = self.model.cfg, self.ig_samples, self.model.obs_std()
        n = obs_mean.shape[0]
        x = obs_mean + obs_std * self._noise(n, obs_mean.shape[1:], gen)
        r = rew_mean + cfg.reward_std * self._noise(n, rew_mean.shape[1:], gen)
        w_r = 1.0 if self.ig_reward else 0.0
        if self.ig_estimator == "posterior":
            return self._posterior_info_gain(s, x, r, w_r, gen)
        cond = gaussian_log_prob(x, obs_mean, obs_std) + w_r * gaussian_log_prob(
            r.unsqueeze(-1), rew_mean.unsqueeze(-1), cfg.reward_std)
        if k <= 1:
            return torch.zeros_like(cond)
        z = s["mean"] + s["std"] * self._noise(n, s["mean"].shape[1:], gen, lead=(k - 1,))
        feat = torch.cat([s["deter"].expand(k - 1, *s["deter"].shape), z], -1)
        om, rm = self.model.decode(feat)
        others = gaussian_log_prob(x, om, obs_std) + w_r * gaussian_log_prob(
            r.unsqueeze(-1), rm.unsqueeze(-1), cfg.reward_std)
        marg = iw_log_marginal(torch.cat([cond.unsqueeze(0), others], 0))
        return information_gain(cond, marg)

    def _posterior_info_gain(self, s: State, x: torch.Tensor, r: torch.Tensor, w_r: float,
                             gen: torch.Generator | None) -> torch.Tensor:
        """``log p(x, r | h, z) - log p(x, r | h)`` with ``z ~ q(z | h, x)`` and the marginal importance-weighted
        by K draws from q: the estimator of the data side (``RSSM.loss``) on imagined ``x (N, O)``, ``r (N,)``."""
        n, k, model = x.shape[0], self.ig_samples, self.model
        mean, std = model.post_stats(s["deter"], model.embed(x))
        z = mean + std * self._noise(n, mean.shape[1:], gen)
        ll_obs, ll_rew = model.log_likelihood(torch.cat([s["deter"], z], -1), x, r, torch.ones_like(r))
        cond = ll_obs + w_r * ll_rew
        post = {"deter": s["deter"], "mean": mean, "std": std}
        marg = model.iw_marginal(post, {"mean": s["mean"], "std": s["std"]}, x, r, torch.ones_like(r), k, gen,
                                 include_reward=self.ig_reward, noise=self._noise(n, mean.shape[1:], gen, lead=(k,)))
        return information_gain(cond, marg)
