"""The action KL of soft RL and the soft value built on it: the one place for their bookkeeping.

The bound's action term is ``-alpha KL(q(a|z) || p_a(a|z))`` (``avem/objective/README.md``). An
action-KL rule says, for policy samples ``a: (B, A)`` with ``log q(a|z): (B,)`` at features
``z: (B, F)``:

- ``kl(feat, a, log_q) -> (B,)``: the per-sample KL as the critic, the actor and the soft value
  use it. For the uniform prior ``U[-1, 1]^d`` this is ``log q(a)``: the KL's constant ``d log 2``
  is dropped (it shifts every Q by the same amount and changes no gradient);
- ``report(kl) -> float``: the logged ``kl_a``, the batch mean plus ``constant``, the part the
  critic dropped (``d log 2`` for the AVEM uniform prior, so the reported value is the KL itself);
- ``temperature_loss(log_alpha, log_q, kl)``: the loss of ``log alpha`` (the temperature rule),
  on detached ``log_q, kl: (B,)``.

``UniformKL`` is plain SAC's rule (an entropy bonus; ``sac`` reports ``kl_a = -entropy``, without
the constant) and the AVEM uniform prior's; ``LearnedKL`` is the learned prior's (KL-regularised
soft RL, alpha tuned so the KL tracks ``target_kl``). ``soft_value`` is the value both the critic's
targets and the planner's horizon bootstrap read.
"""
from __future__ import annotations

import math
from typing import Callable, Protocol

import torch
import torch.nn as nn

from avem.nets.distributions import TanhNormal


class ActionKL(Protocol):
    """What ``SoftActorCritic`` and ``soft_value`` need of an action prior (see the module docstring)."""

    constant: float

    def kl(self, feat: torch.Tensor, action: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor: ...

    def report(self, kl: torch.Tensor) -> float: ...

    def temperature_loss(self, log_alpha: torch.Tensor, log_q: torch.Tensor, kl: torch.Tensor) -> torch.Tensor: ...


def target_entropy(configured: float | None, act_dim: int) -> float:
    """The entropy target of the temperature: ``configured``, or ``-act_dim`` (Haarnoja et al. 2018) if None."""
    return -float(act_dim) if configured is None else configured


class _Report:
    constant = 0.0

    def report(self, kl: torch.Tensor) -> float:
        """The logged ``kl_a``: the mean of ``kl: (B,)`` plus the constant the critic dropped."""
        return kl.mean().item() + self.constant


class UniformKL(_Report):
    """``KL(q || U[-1, 1]^d) = log q(a) + d log 2`` per sample; alpha tunes the entropy to ``entropy_target``.

    ``report_constant``: whether ``report`` adds the dropped ``d log 2`` (True: the KL itself;
    False: ``-entropy``, plain SAC's ``kl_a``)."""

    def __init__(self, act_dim: int, entropy_target: float, report_constant: bool = True):
        self.constant = act_dim * math.log(2.0) if report_constant else 0.0
        self.entropy_target = entropy_target

    def kl(self, feat: torch.Tensor, action: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
        return log_q

    def temperature_loss(self, log_alpha: torch.Tensor, log_q: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
        """SAC v2: the policy entropy tracks the target."""
        return -(log_alpha * (log_q + self.entropy_target)).mean()


class LearnedKL(_Report):
    """``KL(q || p_a) = log q(a|z) - log p_a(a|z)`` per sample, with ``net: feat (B, F) -> TanhNormal`` the
    prior; alpha tunes the batch-mean KL to ``target_kl``."""

    def __init__(self, net: Callable[[torch.Tensor], TanhNormal], target_kl: float):
        self.net, self.target_kl = net, target_kl

    def log_prob(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``log p_a(a|z)``: ``feat (B, F), action (B, A) -> (B,)``."""
        return self.net(feat).log_prob(action)

    def kl(self, feat: torch.Tensor, action: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
        return log_q - self.log_prob(feat, action)

    def temperature_loss(self, log_alpha: torch.Tensor, log_q: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
        return -log_alpha * (kl.mean().item() - self.target_kl)


def soft_value(actor: nn.Module, critic: nn.Module, feat: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor,
               action_kl: ActionKL) -> torch.Tensor:
    """``V(z) = min Q(z, a) - alpha KL(pi || p_a)(a)`` on one sample ``a ~ pi(.|z)``: ``(N,)``.

    ``feat: (N, F)``; ``eps``: the sample's standard-normal noise, broadcastable to ``(N, A)``;
    ``critic``: the online or the target twin Q. The KL is ``action_kl.kl`` (uniform: ``d log 2`` dropped)."""
    a, log_q = actor(feat).sample_from_noise(eps)
    q1, q2 = critic(feat, a)
    return torch.min(q1, q2) - alpha * action_kl.kl(feat, a, log_q)
