"""Recurrent state-space model (PlaNet / Dreamer RSSM) on vector observations.

Deterministic path ``h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])``, stochastic Gaussian latent
``z_t``, transition prior ``p(z_t | h_t)``, filtering posterior ``q(z_t | h_t, x_t)``, and a
likelihood ``p(x_t, r_t | h_t, z_t)`` with Gaussian observation and reward decoders of fixed
standard deviation. Features are ``[h_t, z_t]`` (``feat_dim = deter + stoch``).

Rows follow the replay convention (``avem.train.replay``): row t holds ``x_t``, the action
``a_{t-1}`` that led to it, the reward ``r_t`` that came with it and ``is_first``. So the model
step at row t consumes ``a_{t-1}`` and explains ``(x_t, r_t)``; the reward on an episode's first
row is a placeholder and is masked out of every likelihood.

API (shapes: B batch, L sequence length, H horizon; a state is a dict of (B, .) tensors with
keys ``deter, stoch, mean, std``):

- ``initial(B)`` -> zero state.
- ``obs_step(state, prev_action, embed, is_first, gen, sample)`` -> ``(posterior, prior)``.
- ``img_step(state, action, gen, sample)`` -> prior state (imagination).
- ``observe(obs (B,L,O), actions (B,L,A), is_first (B,L), gen)`` -> ``(post, prior)`` with
  (B, L, .) tensors; ``feat(post)`` -> (B, L, F).
- ``imagine(start, policy, horizon, gen)`` -> dict of (B, H, .) tensors incl. ``feat``, ``action``.
- ``log_likelihood(feat, obs, reward, reward_mask)`` -> ``(log p(x|.), log p(r|.))``.
- ``loss(obs, actions, reward, is_first, gen, iw_samples, beta_ml)`` -> ``ModelLoss``: the
  per-term dict, the scales, the scalar total, metrics and the posterior.

Both ``PlaNet``/``Dreamer`` baselines (ELBO, ``iw_samples=0``) and AVEM (marginal-likelihood
term, ``iw_samples=K``) use this class unchanged; only the config differs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from avem.checks import at_least, fields, non_negative, one_of, positive, within
from avem.nets.mlp import mlp
from avem.objective import free_nats, gaussian_kl, gaussian_log_prob, iw_log_marginal, weighted_sum

State = dict[str, torch.Tensor]
OBS_SCALES = ("fixed", "running")
OBS_SD_FLOOR = 0.05
"""Floor on a dimension's running std (``obs_scale='running'``): a (nearly) constant dimension keeps a finite likelihood std."""
OBS_SD_DECAY = 0.99
"""EMA decay of the running observation moments, per model update (bias-corrected, so the first batch sets them)."""


@dataclass(frozen=True)
class RSSMConfig:
    """Hyperparameters of the RSSM and of its optimiser."""

    deter: int = 128
    """Size of the deterministic GRU state h_t (PlaNet: 200; 128 is faster on CPU, results/benchmarks/world_model.md, and ample for dm-control state tasks)."""
    stoch: int = 16
    """Size of the stochastic Gaussian latent z_t (PlaNet: 30)."""
    model_hidden: int = 128
    """Width of the model's hidden layers: encoder, transition, posterior, decoders (PlaNet: 200)."""
    min_std: float = 0.1
    """Lower bound added to the softplus standard deviation of prior and posterior."""
    free_nats: float = 0.0
    """Free nats on the batch-mean KL(q(z)||p(z)) (PlaNet / Dreamer: 3 on pixels). 0: the KL gradient reaches the prior in every update, as the marginal-likelihood identity needs; with a clamp above the KL the transition prior got no gradient in most updates (results/benchmarks/world_model.md)."""
    kl_balance: float = 0.5
    """KL balancing (DreamerV2): the KL gradient reaches the prior with weight 2*kl_balance and the posterior with 2*(1-kl_balance); 0.5 = the plain ELBO gradient (default: off). The KL value is unchanged."""
    kl_scale: float = 1.0
    """Scale of the KL(q(z)||p(z)) term in the model loss (1.0 = the bound)."""
    obs_std: float = 0.1
    """Standard deviation of the Gaussian observation likelihood: in the observation's units (``obs_scale='fixed'``) or in units of each dimension's running standard deviation (``obs_scale='running'``). 0.1: at 1.0 the likelihood of vector observations is nearly flat, and without free nats the posterior collapsed onto the prior (results/benchmarks/world_model.md)."""
    obs_scale: str = "running"
    """'fixed': the likelihood std is ``obs_std`` in every dimension (the papers' form, on pixels in [-0.5, 0.5]). 'running': ``obs_std`` times each dimension's running std (bias-corrected EMA over the training batches, floored at ``OBS_SD_FLOOR``), i.e. ``obs_std`` on standardised observations, so one setting means the same sharpness on every task; it gave the lowest open-loop errors of the settings compared in results/benchmarks/world_model.md."""
    reward_std: float = 1.0
    """Fixed standard deviation of the Gaussian reward likelihood."""
    model_lr: float = 6e-4
    """Adam learning rate of the model (generative agents)."""
    model_grad_clip: float = 100.0
    """Gradient-norm clip of the model update."""

    tiny: ClassVar[dict] = {"deter": 32, "stoch": 8, "model_hidden": 32}
    """The ``tiny`` preset of this block, for every agent that holds it (not a field; ``avem.config_tree``)."""

    def checks(self) -> list[tuple[bool, str]]:
        """``(ok, message)`` checks of these fields, for the ``validate()`` of every config that embeds them."""
        return fields(self, deter=at_least(1), stoch=at_least(1), model_hidden=at_least(1), free_nats=non_negative,
                      obs_scale=one_of(OBS_SCALES), kl_balance=within(0, 1), min_std=positive, obs_std=positive,
                      reward_std=positive, model_lr=positive, model_grad_clip=positive)


def _split_stats(x: torch.Tensor, min_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    mean, raw = x.chunk(2, dim=-1)
    return mean, F.softplus(raw) + min_std


def _sample(mean: torch.Tensor, std: torch.Tensor, gen: torch.Generator | None, sample: bool) -> torch.Tensor:
    if not sample:
        return mean
    return mean + std * torch.randn(mean.shape, generator=gen, dtype=mean.dtype, device=mean.device)


@dataclass
class ModelLoss:
    """What ``RSSM.loss`` returns."""

    total: torch.Tensor
    """Scalar loss ``sum_k scales[k] * terms[k]`` (to minimise)."""
    terms: dict[str, torch.Tensor]
    """Scalar loss terms: ``cll`` (-log-likelihood), ``kl_z`` (free-nats KL), ``mll`` (+IW log marginal)."""
    scales: dict[str, float]
    """Per-term scales (same keys as ``terms``)."""
    metrics: dict[str, float]
    """Logged values of the bound's terms (per step, batch mean, unclipped)."""
    post: State
    """Posterior states (B, L, .), with the graph (detach before feeding a critic)."""
    prior: State
    """Prior statistics (B, L, .)."""
    info_gain: torch.Tensor | None = None
    """Per-row information gain ``log p(x_t | h_t, z_t) - log p(x_t | past)`` on the data (B, L), detached; None without the IW term."""


class RSSM(nn.Module):
    """``obs_dim``-dimensional vector observations, ``act_dim`` actions in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: RSSMConfig):
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        d, s, h = cfg.deter, cfg.stoch, cfg.model_hidden
        self.feat_dim = d + s
        self.encoder = mlp(obs_dim, h, h, 1, nn.ELU)
        self.img_in = nn.Sequential(nn.Linear(s + act_dim, h), nn.ELU())
        self.gru = nn.GRUCell(h, d)
        self.prior_net = mlp(d, 2 * s, h, 1, nn.ELU)
        self.post_net = mlp(d + h, 2 * s, h, 1, nn.ELU)
        self.obs_decoder = mlp(d + s, obs_dim, h, 2, nn.ELU)
        self.reward_decoder = mlp(d + s, 1, h, 2, nn.ELU)
        if cfg.obs_scale == "running":  # (first moment, second moment) per dimension, and the update count
            self.register_buffer("obs_moments", torch.zeros(2, obs_dim))
            self.register_buffer("obs_updates", torch.zeros((), dtype=torch.long))

    # ---- the likelihood's scale ---------------------------------------------------------
    def obs_std(self) -> torch.Tensor | float:
        """The observation likelihood's std: the float ``obs_std`` ('fixed'), or (O,) per dimension ('running')."""
        if self.cfg.obs_scale == "fixed":
            return self.cfg.obs_std
        n = int(self.obs_updates)
        if n == 0:
            return torch.full((self.obs_dim,), self.cfg.obs_std, device=self.obs_moments.device)
        mean, second = self.obs_moments / (1.0 - OBS_SD_DECAY ** n)
        sd = (second - mean.pow(2)).clamp(min=0.0).sqrt().clamp(min=OBS_SD_FLOOR)
        return self.cfg.obs_std * sd

    @torch.no_grad()
    def track_obs_scale(self, obs: torch.Tensor) -> None:
        """Fold a training batch ``obs (..., O)`` into the running moments ('running' only; no-op otherwise)."""
        if self.cfg.obs_scale != "running":
            return
        flat = obs.reshape(-1, self.obs_dim)
        batch = torch.stack([flat.mean(0), flat.pow(2).mean(0)])
        self.obs_moments.mul_(OBS_SD_DECAY).add_((1.0 - OBS_SD_DECAY) * batch)
        self.obs_updates += 1

    # ---- single steps -------------------------------------------------------------------
    def initial(self, batch: int) -> State:
        device = self.gru.weight_hh.device
        z = torch.zeros(batch, self.cfg.stoch, device=device)
        return {"deter": torch.zeros(batch, self.cfg.deter, device=device), "stoch": z, "mean": z,
                "std": torch.ones_like(z)}

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """``(..., O) -> (..., model_hidden)``."""
        return self.encoder(obs)

    def prior_stats(self, deter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _split_stats(self.prior_net(deter), self.cfg.min_std)

    def post_stats(self, deter: torch.Tensor, embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z | h, x)``: mean and std (..., stoch) from ``deter (..., D)`` and ``embed(x) (..., model_hidden)``."""
        return _split_stats(self.post_net(torch.cat([deter, embed], -1)), self.cfg.min_std)

    def img_step(self, state: State, action: torch.Tensor, gen: torch.Generator | None = None,
                 sample: bool = True) -> State:
        """Prior transition ``(state at t, a_t) -> state at t+1`` with ``z ~ p(z|h)``."""
        x = self.img_in(torch.cat([state["stoch"], action], -1))
        deter = self.gru(x, state["deter"])
        mean, std = self.prior_stats(deter)
        return {"deter": deter, "stoch": _sample(mean, std, gen, sample), "mean": mean, "std": std}

    def obs_step(self, state: State, prev_action: torch.Tensor, embed: torch.Tensor,
                 is_first: torch.Tensor, gen: torch.Generator | None = None,
                 sample: bool = True) -> tuple[State, State]:
        """Filter one row: reset where ``is_first`` (B,), step the prior with ``a_{t-1}``, condition on ``x_t``."""
        post = self._post_step(state, prev_action, embed, is_first, gen, sample)
        mean, std = self.prior_stats(post["deter"])
        return post, {"deter": post["deter"], "stoch": mean, "mean": mean, "std": std}

    @torch.no_grad()
    def filter_obs(self, obs, agent_state: dict | None, gen: torch.Generator | None = None,
                   sample: bool = True) -> State:
        """The acting-time filter shared by every RSSM agent: one observation ``obs: (obs_dim,)`` and the
        agent's state ``{"latent": State (1, .), "action": a_{t-1} (1, A)}`` (None at an episode start)
        -> the new filtering state (1, .)."""
        device = self.gru.weight_hh.device
        x = torch.as_tensor(np.asarray(obs, np.float32), device=device).reshape(1, -1)
        first = torch.tensor([agent_state is None], device=device)
        latent = self.initial(1) if agent_state is None else agent_state["latent"]
        prev_a = torch.zeros(1, self.act_dim, device=device) if agent_state is None else agent_state["action"]
        return self.obs_step(latent, prev_a, self.embed(x), first, gen, sample=sample)[0]

    def _post_step(self, state: State, prev_action: torch.Tensor, embed: torch.Tensor,
                   is_first: torch.Tensor, gen: torch.Generator | None, sample: bool) -> State:
        keep = (1.0 - is_first.float()).unsqueeze(-1)
        x = self.img_in(torch.cat([state["stoch"] * keep, prev_action * keep], -1))
        deter = self.gru(x, state["deter"] * keep)
        mean, std = self.post_stats(deter, embed)
        return {"deter": deter, "stoch": _sample(mean, std, gen, sample), "mean": mean, "std": std}

    @staticmethod
    def feat(state: State) -> torch.Tensor:
        """``[h, z]``: (..., deter + stoch)."""
        return torch.cat([state["deter"], state["stoch"]], -1)

    # ---- sequences ----------------------------------------------------------------------
    def observe(self, obs: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor,
                gen: torch.Generator | None = None, state: State | None = None,
                sample: bool = True) -> tuple[State, State]:
        """Filter a batch of windows: ``obs (B,L,O), actions (B,L,A), is_first (B,L)`` -> (post, prior) (B,L,.).

        A window that does not start an episode starts from the zero state (as Dreamer does).
        """
        b, length = obs.shape[:2]
        state = self.initial(b) if state is None else state
        embeds = self.embed(obs)
        posts = []
        for t in range(length):  # only the posterior is sequential; the prior is batched below
            state = self._post_step(state, actions[:, t], embeds[:, t], is_first[:, t], gen, sample)
            posts.append(state)
        post = {k: torch.stack([s[k] for s in posts], 1) for k in posts[0]}
        mean, std = self.prior_stats(post["deter"])
        return post, {"deter": post["deter"], "stoch": mean, "mean": mean, "std": std}

    def imagine(self, start: State, policy: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor,
                horizon: int, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Roll the prior forward ``horizon`` steps from ``start`` (B, .).

        ``policy``: a callable ``feat (B, F) -> action (B, A)``, or fixed actions ``(B, H, A)``.
        Returns (B, H, .) tensors: the imagined states, ``feat``, ``action`` (the action taken
        in the state BEFORE each imagined step) and ``reward`` (decoder mean).
        """
        state, out = start, []
        for t in range(horizon):
            action = policy[:, t] if isinstance(policy, torch.Tensor) else policy(self.feat(state))
            state = self.img_step(state, action, gen)
            out.append({**state, "action": action})
        traj = {k: torch.stack([s[k] for s in out], 1) for k in out[0]}
        traj["feat"] = self.feat(traj)
        traj["reward"] = self.reward_decoder(traj["feat"]).squeeze(-1)
        return traj

    # ---- likelihoods and losses ---------------------------------------------------------
    def decode(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Likelihood means: ``feat (..., F) -> (obs (..., O), reward (...))``."""
        return self.obs_decoder(feat), self.reward_decoder(feat).squeeze(-1)

    def log_likelihood(self, feat: torch.Tensor, obs: torch.Tensor, reward: torch.Tensor,
                       reward_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log p(x|h,z), mask * log p(r|h,z))``, each (...), for ``feat (..., F)``."""
        obs_mean, reward_mean = self.decode(feat)
        ll_obs = gaussian_log_prob(obs, obs_mean, self.obs_std())
        ll_rew = gaussian_log_prob(reward.unsqueeze(-1), reward_mean.unsqueeze(-1), self.cfg.reward_std)
        return ll_obs, ll_rew * reward_mask

    def iw_marginal(self, post: State, prior: State, obs: torch.Tensor, reward: torch.Tensor,
                    reward_mask: torch.Tensor, k: int, gen: torch.Generator | None,
                    include_reward: bool = True, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One-step predictive ``log p(x_t, r_t | past)`` by importance sampling with K draws from q: (...).

        ``log (1/K) sum_k p(x,r|h,z^k) p(z^k|h) / q(z^k|h,x)``, ``z^k ~ q`` (reparameterised).
        ``include_reward=False``: ``log p(x_t | past)`` (the reward factor left out of the weights).
        ``noise``: the K standard-normal draws ``(k, ...)``, given by a caller that controls its random
        numbers (the planner's common noise); None draws them from ``gen``.
        """
        mean, std = post["mean"], post["std"]
        if noise is None:
            noise = torch.randn((k, *mean.shape), generator=gen, dtype=mean.dtype, device=mean.device)
        z = mean + std * noise
        deter = post["deter"].expand(k, *post["deter"].shape)
        feat = torch.cat([deter, z], -1)
        ll_obs, ll_rew = self.log_likelihood(feat, obs.expand(k, *obs.shape), reward.expand(k, *reward.shape),
                                             reward_mask)
        ll = ll_obs + ll_rew if include_reward else ll_obs
        log_w = ll + gaussian_log_prob(z, prior["mean"], prior["std"]) - gaussian_log_prob(z, mean, std)
        return iw_log_marginal(log_w)

    def kl_loss(self, post: State, prior: State) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(KL loss term: scalar, per-step KL(q||p): (B, L), the fraction of the term that carries gradient).

        The term's VALUE is ``max(mean KL, free_nats)`` (so the fraction is 1.0 or, when the clamp
        holds, 0.0; always 1.0 with ``free_nats = 0``); its gradient reaches the prior with
        weight ``2 * kl_balance`` and the posterior with ``2 * (1 - kl_balance)`` (0.5: exactly
        the ELBO gradient; 0.8 is DreamerV2's balancing with twice its KL scale).
        """
        cfg = self.cfg
        kl = gaussian_kl(post["mean"], post["std"], prior["mean"], prior["std"])
        kl_mean = kl.mean()
        if cfg.kl_balance != 0.5:
            sg = lambda s: {k: v.detach() for k, v in s.items()}  # noqa: E731
            q, p = sg(post), sg(prior)
            to_prior = gaussian_kl(q["mean"], q["std"], prior["mean"], prior["std"]).mean()
            to_post = gaussian_kl(post["mean"], post["std"], p["mean"], p["std"]).mean()
            kl_mean = kl_mean + (2 * cfg.kl_balance - 1) * (to_prior - to_post)  # same value, reweighted gradient
        grad_frac = 1.0 if cfg.free_nats <= 0 or kl_mean.item() > cfg.free_nats else 0.0
        return free_nats(kl_mean, cfg.free_nats), kl, grad_frac

    def train_step(self, opt: torch.optim.Optimizer, windows: dict[str, torch.Tensor], gen: torch.Generator | None,
                   **loss_kwargs) -> tuple[ModelLoss, float]:
        """One model update on replay ``windows`` (``obs, action, reward, is_first``: (B, L, .)):
        ``loss`` -> backward -> clip to ``model_grad_clip`` -> ``opt.step()``. Returns (loss, gradient norm)."""
        self.track_obs_scale(windows["obs"])
        out = self.loss(windows["obs"], windows["action"], windows["reward"], windows["is_first"], gen, **loss_kwargs)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters(), self.cfg.model_grad_clip)
        opt.step()
        return out, float(grad_norm)

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, reward: torch.Tensor, is_first: torch.Tensor,
             gen: torch.Generator | None = None, iw_samples: int = 0, beta_ml: float = 0.0,
             ml_reward: bool = True) -> ModelLoss:
        """Model loss on windows ``obs (B,L,O), actions (B,L,A), reward (B,L), is_first (B,L)``.

        ``iw_samples = 0``: the conventional ELBO, terms ``{cll, kl_z}``. ``iw_samples = K > 0``
        adds ``mll = +log p(x, r | past)`` (IW estimate) with scale ``beta_ml``: the bound's
        ``-log p(x_t, r_t | past)`` enters the LOSS with a plus sign. ``beta_ml = 0`` gives
        exactly the ELBO path's total. ``ml_reward=False``: the marginal is ``log p(x | past)``
        (observations only), so at ``beta_ml = 1`` the loss is ``-log p(r|z)`` plus the gap
        ``KL(q(z) || p(z | x, past))`` instead of the gap alone (``MarginalLikelihoodConfig.ml_reward``).
        """
        post, prior = self.observe(obs, actions, is_first, gen)
        mask = 1.0 - is_first.float()
        ll_obs, ll_rew = self.log_likelihood(self.feat(post), obs, reward, mask)
        cll = ll_obs + ll_rew
        kl_term, kl, grad_frac = self.kl_loss(post, prior)
        terms = {"cll": -cll.mean(), "kl_z": kl_term}
        scales = {"cll": 1.0, "kl_z": self.cfg.kl_scale}
        metrics = {"cll": cll.mean().item(), "cll_obs": ll_obs.mean().item(),
                   "cll_reward": (ll_rew.sum() / mask.sum().clamp(min=1)).item(),
                   "kl_z": kl.mean().item(), "kl_grad_frac": grad_frac, "elbo": (cll - kl).mean().item()}
        info_gain = None
        if iw_samples > 0:
            mll = self.iw_marginal(post, prior, obs, reward, mask, iw_samples, gen, include_reward=ml_reward)
            terms["mll"] = mll.mean()
            scales["mll"] = float(beta_ml)
            info_gain = ((cll if ml_reward else ll_obs) - mll).detach()
            metrics.update({"mll": mll.mean().item(), "info_gain": info_gain.mean().item(), "beta_ml": float(beta_ml)})
        total = weighted_sum(terms, scales)
        metrics["model_loss"] = total.item()
        return ModelLoss(total, terms, scales, metrics, post, prior, info_gain)
