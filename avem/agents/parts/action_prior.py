"""The AVEM agent's action prior ``p_a(a | z)``: uniform or learned, with its consolidation loss.

A prior part is the soft actor-critic's action-KL rule (``avem.nets.action_kl``: the per-sample KL,
the reported ``kl_a``, the temperature's loss), and adds:

- ``net``: ``feat (N, F) -> TanhNormal`` over ``(N, A)``, the planner's prior and roll-out policy
  (None: uniform);
- ``consolidate(feat, windows, start, policy) -> metrics``: one step of ``min KL(q || p_a)`` on the
  critic rows (``feat: (N, F)`` detached, ``N = B * (L - 1 - start)``; row ``t + 1`` of the replay
  ``windows`` holds ``a_t``). ``UniformPrior``: nothing to learn, ``{}``.

``LearnedPrior`` consolidates toward the planned posteriors ``q(a_t)`` that the planner returned
as per-step extras (``plan_mean``, ``plan_std``: NaN where ``a_t`` was not planned), metrics
``prior_loss`` and ``consolidation_coverage``; without planning toward the amortised policy, at
``noplan_prior_lr_scale`` times the rate (a slower-moving prior keeps ``KL(q || p_a)``
informative), metric ``prior_loss``. Its temperature rule: ``KL(q || p_a)`` tracks ``target_kl``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from avem.agents.avem_config import AVEMConfig
from avem.nets.action_kl import LearnedKL, UniformKL, target_entropy
from avem.nets.actor_critic import Actor, ActorCriticConfig
from avem.objective import gaussian_kl


def target_kl(cfg: AVEMConfig, act_dim: int) -> float:
    """``KL(q || p_a)`` target of a learned prior: ``cfg.target_kl``, or the KL a uniform-prior agent settles
    at, ``d log 2 - target_entropy`` (``KL(q || U) = -H(q) + d log 2``; its alpha tracks the entropy target)."""
    if cfg.prior.target_kl is not None:
        return float(cfg.prior.target_kl)
    return act_dim * math.log(2.0) - target_entropy(cfg.actor_critic.target_entropy, act_dim)


class UniformPrior(UniformKL):
    """``U[-1, 1]^d``: max-entropy RL; ``kl_a`` is reported with the ``d log 2`` the critic drops."""

    net = None

    def __init__(self, feat_dim: int, act_dim: int, cfg: AVEMConfig):
        super().__init__(act_dim, target_entropy(cfg.actor_critic.target_entropy, act_dim), report_constant=True)

    def modules(self) -> dict:
        return {}

    def optimizers(self) -> dict:
        return {}

    def consolidate(self, feat: torch.Tensor, windows: dict[str, np.ndarray], start: int, policy) -> dict[str, float]:
        return {}


class LearnedPrior(LearnedKL):
    """``p_a(a | z) = TanhNormal`` from an ``Actor`` network, initialised broad (``prior_init_std``)."""

    def __init__(self, feat_dim: int, act_dim: int, cfg: AVEMConfig):
        super().__init__(Actor(feat_dim, act_dim, cfg.actor_critic), target_kl(cfg, act_dim))
        self.act_dim, self.planned = act_dim, cfg.planning
        _broad_init(self.net, cfg.prior.prior_init_std, cfg.actor_critic, act_dim)
        lr = cfg.prior.prior_lr * (1.0 if cfg.planning else cfg.prior.noplan_prior_lr_scale)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    def modules(self) -> dict:
        return {"net": self.net}

    def optimizers(self) -> dict:
        return {"net": self.opt}

    def consolidate(self, feat: torch.Tensor, windows: dict[str, np.ndarray], start: int, policy) -> dict[str, float]:
        """One step of ``min KL(q || p_a)``; ``q``: the planned posteriors in the windows, or ``policy(feat)``."""
        p = self.net(feat)
        out: dict[str, float] = {}
        if self.planned:
            if "plan_std" not in windows:  # no action planned yet
                return {"consolidation_coverage": 0.0, "prior_loss": 0.0}
            mean, std = (torch.as_tensor(windows[k][:, start + 1:].reshape(-1, self.act_dim), device=feat.device)
                         for k in ("plan_mean", "plan_std"))
            found = ~torch.isnan(std[:, 0])
            out["consolidation_coverage"] = found.float().mean().item()
            if not found.any():
                out["prior_loss"] = 0.0
                return out
            kl = gaussian_kl(mean[found], std[found], p.mean[found], p.std[found]).mean()
        else:
            with torch.no_grad():
                q = policy(feat)
            kl = gaussian_kl(q.mean, q.std, p.mean, p.std).mean()
        self.opt.zero_grad(set_to_none=True)
        kl.backward()
        self.opt.step()
        out["prior_loss"] = kl.item()
        return out


def _broad_init(prior: Actor, std: float, cfg: ActorCriticConfig, act_dim: int) -> None:
    """Start p_a near ``TanhNormal(~0, std)``: zero the log-std weights, set their bias."""
    last = prior.net[-1]
    target = (math.log(std) - cfg.log_std_min) / (0.5 * (cfg.log_std_max - cfg.log_std_min)) - 1.0
    with torch.no_grad():
        last.weight[act_dim:].zero_()
        last.bias[act_dim:].fill_(math.atanh(max(min(target, 0.999), -0.999)))
        last.weight[:act_dim].mul_(0.1)
        last.bias[:act_dim].zero_()


def make_prior(feat_dim: int, act_dim: int, cfg: AVEMConfig) -> UniformPrior | LearnedPrior:
    """The prior of ``cfg.action_prior``."""
    return (LearnedPrior if cfg.action_prior == "learned" else UniformPrior)(feat_dim, act_dim, cfg)
