"""PlaNet's planner: the cross-entropy method over open-loop action SEQUENCES in the RSSM's latent space.

Why not ``LatentPlanner``: that planner infers q(a_t) over the FIRST action only (later actions
come from the action prior) and refits by importance weights; PlaNet's CEM (Hafner et al. 2019,
Algorithm 2; ``planet/control/planning.py`` of the official code) refits a diagonal Gaussian over
the whole ``(horizon, act_dim)`` sequence to its top-k candidates. The two coincide only in name,
so PlaNet gets this module; the RSSM it rolls out is the shared ``avem.models.rssm.RSSM``.

One decision, from the current filtering state (batch 1):

1. belief ``N(mean = 0, std = 1)`` over the ``(H, A)`` sequence;
2. ``iterations`` times: draw ``candidates`` sequences, clip them to [-1, 1], roll the RSSM prior
   (stochastic latent sampled) under each, score ``R = sum_t discount^t r_hat_t`` with the reward
   decoder's mean, refit mean and std (``sqrt(var + 1e-6)``) to the ``top_k`` best;
3. return the final mean sequence (the agent executes its first action).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from avem.checks import at_least, fields, within
from avem.models.rssm import RSSM, State


@dataclass(frozen=True)
class CEMConfig:
    """The CEM planner's settings, at PlaNet's values (block ``planner`` of ``planet``)."""

    plan_horizon: int = 12
    """Planning horizon in agent steps (paper: H = 12)."""
    plan_candidates: int = 300
    """Action sequences per CEM iteration (paper: J = 1000; scaled down for CPU: avem.agents.planet)."""
    plan_iterations: int = 5
    """CEM iterations per decision (paper: I = 10; scaled down for CPU)."""
    plan_top_k: int = 30
    """Elite sequences the belief is refitted to (paper: K = 100; kept at 10% of the candidates)."""
    plan_discount: float = 0.99
    """Discount of the predicted rewards within the horizon (official code: 0.99; the paper writes a plain sum)."""

    tiny: ClassVar[dict] = {"plan_horizon": 3, "plan_candidates": 16, "plan_iterations": 2, "plan_top_k": 4}
    """The ``tiny`` preset of this block (not a field; ``avem.config_tree``)."""

    def checks(self) -> list[tuple[bool, str]]:
        return [
            *fields(self, plan_horizon=at_least(1), plan_iterations=at_least(1), plan_discount=within(0, 1, "(]")),
            (1 <= self.plan_top_k <= self.plan_candidates,
             f"need 1 <= plan_top_k <= plan_candidates, got {self.plan_top_k}, {self.plan_candidates}"),
        ]


@dataclass
class CEMResult:
    """The refitted belief after the last iteration and a diagnostic."""

    mean: torch.Tensor
    """(H, A) mean action sequence (in [-1, 1])."""
    std: torch.Tensor
    """(H, A) standard deviation."""
    elite_return: float
    """Mean predicted return of the last iteration's top-k candidates."""


@torch.no_grad()
def cem_plan(model: RSSM, state: State, act_dim: int, horizon: int, candidates: int, iterations: int,
             top_k: int, discount: float, gen: torch.Generator | None) -> CEMResult:
    """``state``: the filtering state, (1, .) tensors. Returns the refitted ``(H, A)`` belief."""
    if not 1 <= top_k <= candidates or iterations < 1 or horizon < 1:
        raise ValueError(f"need 1 <= top_k <= candidates, iterations >= 1, horizon >= 1; got top_k={top_k}, "
                         f"candidates={candidates}, iterations={iterations}, horizon={horizon}")
    start = {k: v.expand(candidates, *v.shape[1:]) for k, v in state.items()}
    device = state["deter"].device
    weights = discount ** torch.arange(horizon, dtype=torch.float32, device=device)
    mean, std = torch.zeros(horizon, act_dim, device=device), torch.ones(horizon, act_dim, device=device)
    for _ in range(iterations):
        noise = torch.randn((candidates, horizon, act_dim), generator=gen, device=device)
        actions = (mean + std * noise).clamp(-1.0, 1.0)
        reward = model.imagine(start, actions, horizon, gen)["reward"]  # (N, H)
        returns = (reward * weights).sum(-1)
        top, idx = returns.topk(top_k, sorted=False)
        elite = actions[idx]
        mean = elite.mean(0)
        std = (elite.var(0, unbiased=False) + 1e-6).sqrt()
    return CEMResult(mean, std, float(top.mean()))
