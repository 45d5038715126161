"""The terms of the AVEM bound as pure functions of tensors (no networks, no state).

Notation follows ``avem/objective/README.md``. Per time step the generative bound is

    L_t = r_t + log p(x_t, r_t | z_<=t) - log p(x_t, r_t | past) - KL(q(z_t) || p(z_t | past))
              - KL(q(a_t) || p_a(a_t))

Shapes: every ``(..., d)`` argument is reduced over its last axis; ``(K, ...)`` arguments
hold K importance samples on the FIRST axis.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch

__all__ = ["effective_sample_size", "free_nats", "gaussian_kl", "gaussian_log_prob", "information_gain",
           "iw_log_marginal", "linear_anneal", "normalized_weights", "uniform_box_kl", "weighted_sum"]

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | float) -> torch.Tensor:
    """``log N(x; mean, diag(std^2))``, summed over the last axis: ``(..., d) -> (...)``."""
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    z = (x - mean) / std
    return (-0.5 * z.pow(2) - torch.log(std) - 0.5 * LOG_2PI).sum(-1)


def gaussian_kl(mean_q: torch.Tensor, std_q: torch.Tensor,
                mean_p: torch.Tensor, std_p: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean_q, std_q^2) || N(mean_p, std_p^2))`` for diagonal Gaussians: ``(..., d) -> (...)``.

    Also the exact KL between two tanh-squashed Gaussians with these pre-squash parameters
    (KL is invariant under the shared invertible map ``tanh``).
    """
    var_ratio = (std_q / std_p).pow(2)
    mahal = ((mean_q - mean_p) / std_p).pow(2)
    return 0.5 * (var_ratio + mahal - 1.0 - torch.log(var_ratio)).sum(-1)


def iw_log_marginal(log_weights: torch.Tensor) -> torch.Tensor:
    """Importance-weighted estimate ``log (1/K) sum_k w_k`` from ``log w: (K, ...) -> (...)``.

    With ``log w_k = log p(x|z_k) + log p(z_k|past) - log q(z_k)``, ``z_k ~ q``, this is the
    IWAE bound on ``log p(x | past)`` (Burda et al. 2016): below the exact value in
    expectation, the gap shrinking to 0 as K grows (K = 1 is the ELBO).
    """
    k = log_weights.shape[0]
    return torch.logsumexp(log_weights, dim=0) - math.log(k)


def information_gain(cond_log_lik: torch.Tensor, marg_log_lik: torch.Tensor) -> torch.Tensor:
    """``log p(x, r | z) - log p(x, r | past)``: the bound's log ratio (information gain) term."""
    return cond_log_lik - marg_log_lik


def uniform_box_kl(log_q: torch.Tensor, act_dim: int) -> torch.Tensor:
    """Per-sample ``log q(a) - log U[-1,1]^d(a) = log q(a) + d log 2``.

    Its expectation under q is ``KL(q || U) = -H(q) + log vol([-1,1]^d)`` when ``log_q`` is the
    density over the BOX (``TanhNormal.log_prob`` includes the tanh Jacobian).
    """
    return log_q + act_dim * math.log(2.0)


def free_nats(kl_mean: torch.Tensor, nats: float) -> torch.Tensor:
    """``max(kl_mean, nats)`` on the batch-mean KL (PlaNet / DreamerV1-V2 "free bits" on the average).

    Below ``nats`` the value is the constant and no gradient flows (the model is not pushed to
    compress below that much information per step).
    """
    if nats <= 0:
        return kl_mean
    return torch.clamp(kl_mean, min=nats)


def linear_anneal(step: int, start: float, end: float, steps: int) -> float:
    """Linear schedule from ``start`` (step 0) to ``end`` (step >= ``steps``); Bowman et al. 2016."""
    if steps <= 0:
        return float(end)
    frac = min(max(step / steps, 0.0), 1.0)
    return float(start + frac * (end - start))


def weighted_sum(losses: Mapping[str, torch.Tensor], scales: Mapping[str, float]) -> torch.Tensor:
    """``sum_k scales[k] * losses[k]``; the two key sets must match exactly (DreamerV3 ``agent.py``)."""
    if set(losses) != set(scales):
        raise KeyError(f"loss terms {sorted(losses)} and scales {sorted(scales)} differ: "
                       f"missing scales {sorted(set(losses) - set(scales))}, "
                       f"scales without a term {sorted(set(scales) - set(losses))}")
    return sum(scales[k] * losses[k] for k in losses)


def normalized_weights(log_weights: torch.Tensor) -> torch.Tensor:
    """Self-normalised importance weights ``softmax(log w)`` over the FIRST axis."""
    return torch.softmax(log_weights, dim=0)


def effective_sample_size(weights: torch.Tensor) -> torch.Tensor:
    """Kish's ``1 / sum w^2`` of normalised weights over the first axis, as a fraction of N."""
    return 1.0 / weights.pow(2).sum(0) / weights.shape[0]
