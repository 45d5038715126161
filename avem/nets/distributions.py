"""A tanh-squashed diagonal Gaussian over the action box [-1, 1]^d.

``log_prob`` includes the change-of-variables term, so entropies and KLs are those of the
distribution over the BOX, not of the pre-squash Gaussian (what the uniform-prior identity
``KL(q || U[-1,1]^d) = -H(q) + d log 2`` needs).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class TanhNormal:
    """``mean, std: (..., d)``. Samples ``a = tanh(u)``, ``u ~ N(mean, std^2)``."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        self.mean, self.std = mean, std
        self.base = torch.distributions.Normal(mean, std)

    def rsample_with_log_prob(self, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample ``a: (..., d)`` and ``log q(a): (...)``."""
        return self.sample_from_noise(torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype,
                                                  device=self.mean.device))

    def sample_from_noise(self, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``rsample_with_log_prob`` with given standard-normal noise ``eps`` (broadcastable to the mean)."""
        u = self.mean + self.std * eps
        return torch.tanh(u), self._log_prob_u(u)

    def _log_prob_u(self, u: torch.Tensor) -> torch.Tensor:
        # log|d tanh(u)/du| = log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), numerically stable.
        log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return (self.base.log_prob(u) - log_det).sum(-1)

    def log_prob(self, a: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """``log q(a): (...)`` for actions ``a: (..., d)`` strictly inside the box."""
        a = a.clamp(-1 + eps, 1 - eps)
        return self._log_prob_u(torch.atanh(a))

    def mode(self) -> torch.Tensor:
        """Deterministic action ``tanh(mean)``: the evaluation action."""
        return torch.tanh(self.mean)
