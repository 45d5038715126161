"""Action inference by self-normalised importance sampling: ``q*(u) ∝ p_a(u) exp(R(u) / alpha)``.

This is the closed-form maximiser of ``E_q[R] - alpha KL(q || p_a)`` (paper Eq. 10; ``avem/objective/README.md``),
approximated by a diagonal Gaussian over the pre-squash action u (MPPI / CEM family):

- iteration 0 draws from the prior itself, so the weights are ``exp(R / alpha)`` (MPPI with
  the prior as proposal; a uniform prior gives from-scratch MPPI);
- each later iteration draws from the Gaussian fitted so far and corrects by the proposal
  ratio, ``w ∝ p_a(u) exp(R(u)/alpha) / q_i(u)`` (adaptive importance sampling), so the fit
  converges to the moments of q* rather than collapsing onto the best sample as CEM would;
- the fit is weighted moment matching (the Gaussian minimising ``KL(q* || q)``), with the
  standard deviation floored at ``min_std``;
- ``min_ess > 0``: where the tempering ``exp(R / alpha)`` alone leaves fewer than ``min_ess * N``
  effective samples, the iteration's temperature is raised to the smallest value that reaches
  it (bisection on ``log T``; the ESS of ``softmax(R / T)`` grows monotonically with T, to 1 as
  T -> inf; the proposal ratio is left out of that choice, since it can make the ESS of the
  full weights non-monotone and unreachable). Each ``R`` is ONE stochastic roll-out, so at a
  small alpha the weights pick the luckiest roll-out noise (winner's curse) rather than the best
  action; a floor on the ESS averages over that noise (adaptive tempering, as in SMC samplers).

``return_fn(u: (N, A)) -> (R: (N,), extras: dict of (N,) tensors)``; the extras (e.g. the
imagined information gain) are reported as their weighted means under the final weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from avem.objective import effective_sample_size, gaussian_log_prob, normalized_weights


class ActionPrior(Protocol):
    def sample(self, n: int, gen: torch.Generator | None) -> torch.Tensor: ...
    def log_prob(self, u: torch.Tensor) -> torch.Tensor: ...


@dataclass
class ActionPosterior:
    """The inferred ``q(a_t) = TanhNormal(mean, std)`` and diagnostics of the last iteration."""

    mean: torch.Tensor
    """(A,) pre-squash mean."""
    std: torch.Tensor
    """(A,) pre-squash standard deviation."""
    expected_return: float
    """``sum_n w_n R_n``: the estimated bound under q (last iteration)."""
    ess: float
    """Effective sample size of the last iteration's weights, as a fraction of N."""
    extras: dict[str, float] = field(default_factory=dict)
    """Weighted means of ``return_fn``'s extras."""


def tempered_log_weights(log_ratio: torch.Tensor, ret: torch.Tensor, alpha: float, min_ess: float = 0.0,
                         steps: int = 40) -> tuple[torch.Tensor, float]:
    """``(log_ratio + R / T, T)`` for ``(N,)`` inputs, with ``T = alpha``, or, if ``softmax(R / alpha)``
    has an ESS fraction below ``min_ess``, the smallest ``T >= alpha`` for which ``softmax(R / T)`` reaches it."""
    def ess(log_t: float) -> float:
        return float(effective_sample_size(normalized_weights(ret / (alpha * math.exp(log_t)))))

    if min_ess <= 0 or ess(0.0) >= min_ess:  # equal returns give ESS 1: always returned here
        return log_ratio + ret / alpha, alpha
    lo, hi = 0.0, 1.0  # log(T / alpha); the ESS of softmax(R / T) -> 1 as T -> inf, so hi is finite
    while ess(hi) < min_ess:
        lo, hi = hi, 2.0 * hi
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ess(mid) >= min_ess else (mid, hi)
    t = alpha * math.exp(hi)
    return log_ratio + ret / t, t


def infer_action_posterior(prior: ActionPrior, return_fn: Callable, alpha: float, num_samples: int,
                           iterations: int, gen: torch.Generator | None, min_std: float = 1e-3,
                           min_ess: float = 0.0, proposal: ActionPrior | None = None) -> ActionPosterior:
    """``iterations`` rounds of importance sampling with ``num_samples`` candidates each (see module doc).

    ``proposal``: what the first iteration draws from (default: the prior itself), corrected by
    ``p_a(u) / proposal(u)``; the target ``q* ∝ p_a exp(R / alpha)`` does not change."""
    if iterations < 1 or num_samples < 2:
        raise ValueError(f"need iterations >= 1 and num_samples >= 2, got {iterations}, {num_samples}")
    mean = std = None
    for i in range(iterations):
        if i == 0 and proposal is None:
            u = prior.sample(num_samples, gen)
            log_ratio = torch.zeros(num_samples, device=u.device)
        elif i == 0:
            u = proposal.sample(num_samples, gen)
            log_ratio = prior.log_prob(u) - proposal.log_prob(u)
        else:
            noise = torch.randn((num_samples, *mean.shape), generator=gen, dtype=mean.dtype, device=mean.device)
            u = mean + std * noise
            log_ratio = prior.log_prob(u) - gaussian_log_prob(u, mean, std)
        ret, extras = return_fn(u)
        log_w, temperature = tempered_log_weights(log_ratio, ret, alpha, min_ess)
        w = normalized_weights(log_w)
        mean = (w.unsqueeze(-1) * u).sum(0)
        var = (w.unsqueeze(-1) * (u - mean).pow(2)).sum(0)
        std = var.sqrt().clamp(min=min_std)
    extras = {k: float((w * v).sum()) for k, v in extras.items()}
    extras["temperature"] = temperature  # of the last iteration
    return ActionPosterior(mean, std, float((w * ret).sum()), float(effective_sample_size(w)), extras)
