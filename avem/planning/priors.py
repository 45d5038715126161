"""Action priors p_a(a) as distributions over the PRE-SQUASH variable ``u`` (``a = tanh(u)``).

The planner works in u-space: KL and importance ratios are invariant under the shared
invertible map ``tanh``, so a posterior fitted as a Gaussian over u is a ``TanhNormal`` over
the action box with exactly the same KL to the prior.

- ``GaussianActionPrior``: a learned ``p_a(a | z) = TanhNormal(mean, std)`` evaluated at one state.
- ``UniformActionPrior``: ``U[-1, 1]^d`` over the box; over u its density is
  ``prod_i (1 - tanh(u_i)^2) / 2``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from avem.objective import gaussian_kl, gaussian_log_prob, uniform_box_kl
from avem.nets.distributions import TanhNormal

_EDGE = 1e-6  # uniform draws are kept this far inside the box so atanh stays finite


def log_one_minus_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(u)^2)``, numerically stable for large |u|."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


class GaussianActionPrior:
    """``N(mean, std^2)`` over u, ``mean, std: (A,)``."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        self.mean, self.std = mean, std

    def sample(self, n: int, gen: torch.Generator | None) -> torch.Tensor:
        """``(n, A)``."""
        return self.mean + self.std * torch.randn((n, *self.mean.shape), generator=gen, dtype=self.mean.dtype,
                                                  device=self.mean.device)

    def log_prob(self, u: torch.Tensor) -> torch.Tensor:
        """``(n, A) -> (n,)``."""
        return gaussian_log_prob(u, self.mean, self.std)

    def kl(self, mean: torch.Tensor, std: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """``KL(N(mean, std) || self)``, exact (also the KL of the squashed distributions)."""
        return gaussian_kl(mean, std, self.mean, self.std)


class UniformActionPrior:
    """Uniform over ``[-1, 1]^A``, expressed over u; draws land on ``gen``'s device, else on ``device``."""

    def __init__(self, act_dim: int, kl_samples: int = 64, device: torch.device | str = "cpu"):
        self.act_dim, self.kl_samples, self.device = act_dim, kl_samples, torch.device(device)

    def sample(self, n: int, gen: torch.Generator | None) -> torch.Tensor:
        a = torch.rand((n, self.act_dim), generator=gen, device=gen.device if gen is not None else self.device) * 2.0 - 1.0
        return torch.atanh(a.clamp(-1 + _EDGE, 1 - _EDGE))

    def log_prob(self, u: torch.Tensor) -> torch.Tensor:
        return (log_one_minus_tanh_sq(u) - math.log(2.0)).sum(-1)

    def kl(self, mean: torch.Tensor, std: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """``KL(TanhNormal(mean, std) || U) = -H + A log 2``, Monte Carlo with ``kl_samples`` draws."""
        dist = TanhNormal(mean.expand(self.kl_samples, *mean.shape), std.expand(self.kl_samples, *std.shape))
        _, log_q = dist.rsample_with_log_prob(gen)
        return uniform_box_kl(log_q, self.act_dim).mean(0)


class MixtureProposal:
    """A stratified mixture of proposals over u: ``counts[i]`` of the ``n`` draws come from ``parts[i]``.

    The density is ``sum_i (counts[i] / n) p_i(u)`` (defensive importance sampling: any part that
    covers the target keeps the weights bounded). ``sample(n)`` needs ``n == sum(counts)``.
    """

    def __init__(self, parts: list, counts: list[int]):
        if len(parts) != len(counts) or min(counts) < 0 or sum(counts) < 1:
            raise ValueError(f"need one count >= 0 per part and a positive total, got {counts}")
        self.parts, self.counts = parts, counts

    def sample(self, n: int, gen: torch.Generator | None) -> torch.Tensor:
        if n != sum(self.counts):
            raise ValueError(f"this mixture draws {sum(self.counts)} samples, asked for {n}")
        return torch.cat([p.sample(c, gen) for p, c in zip(self.parts, self.counts) if c > 0], 0)

    def log_prob(self, u: torch.Tensor) -> torch.Tensor:
        """``(n, A) -> (n,)``."""
        total = sum(self.counts)
        terms = [p.log_prob(u) + math.log(c / total) for p, c in zip(self.parts, self.counts) if c > 0]
        return torch.logsumexp(torch.stack(terms, 0), 0)
