"""The update schedule: how many gradient updates the loop runs after each agent step, and the
per-episode means of what the steps report (update metrics, scalar extras of ``act``).

An agent's ``update(buffer)`` is exactly one gradient update; the loop decides how many to run
from the agent config's schedule fields:

- ``updates_per_step`` (AVEM, SAC; may be fractional): a credit of that many updates accrues per
  agent step and every whole unit is spent at once (0.5: one update every second step);
- ``updates_per_episode`` (PlaNet, Dreamer: the papers' "C updates per episode"): that many
  updates at the first agent step of each episode, i.e. once the previous episode is in replay;
- neither field (``sb3-sac``, ``random``, a new baseline): one update per agent step.

The credit is part of the loop's checkpointed state, so a resumed run updates on the same steps.

Each training episode's metrics row holds, under ``train/<name>``, the episode mean of every
update metric (over the agent steps with updates, each step the mean of its updates) and of every
SCALAR extra that ``act`` returned on the episode's acting steps (e.g. a planner's diagnostics;
array extras such as a planned ``q(a_t)`` only go to replay), as DreamerV3 logs policy outputs.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UpdateSchedule:
    per_step: float = 1.0
    """Updates accrued per agent step."""
    per_episode: int = 0
    """Updates at the first agent step of each episode."""

    @classmethod
    def of(cls, agent_cfg) -> UpdateSchedule:
        """The schedule an agent config asks for (see the module docstring)."""
        per_episode = getattr(agent_cfg, "updates_per_episode", None)
        if per_episode is not None:
            return cls(per_step=float(getattr(agent_cfg, "updates_per_step", 0.0)), per_episode=int(per_episode))
        return cls(per_step=float(getattr(agent_cfg, "updates_per_step", 1.0)))

    def due(self, credit: float, first_step: bool) -> tuple[int, float]:
        """``(updates to run now, the remaining credit)`` after an agent step (``first_step``: the episode's first)."""
        n = self.per_episode if first_step else 0
        credit += self.per_step
        while credit >= 1.0:
            credit -= 1.0
            n += 1
        return n, credit


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Key-by-key mean of per-update metric dicts (a key averages over the rows that have it); {} for no rows."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


def scalar_extras(extras: dict) -> dict:
    """The scalar (0-d) entries of ``act``'s per-step extras: what the loop logs of them."""
    return {k: v for k, v in extras.items() if np.ndim(v) == 0}


class EpisodeMeans:
    """Running per-name means of one episode's scalar metrics (a name averages over the steps that have it)."""

    def __init__(self):
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] += v
            self.counts[k] += 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}
