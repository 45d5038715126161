"""What the RSSM baselines (``planet``, ``dreamer``) share: the papers' model and schedule, and the world model.

``paper_rssm``: the RSSM block at the papers' values, every field set, so a change of the shared
RSSM defaults for the AVEM family never changes a baseline silently. ``RSSMBaselineConfig``: the
training schedule of both papers (``batch_size x seq_len`` replay windows, ``updates_per_episode``
updates at each episode's first step: ``avem.train.schedule``) and their exploration noise. Each
baseline adds its ``rssm`` block, its own blocks and ``checks()``.

``RSSMBaseline``: the agent's opening (vector observations only, seeded generators, the world
model built first under the seeded initialisation, then ``build_heads``), the world-model update
on replay windows (the RSSM belief part, ``avem.agents.parts.belief.RSSMBelief``, at
``iw_samples = 0``: the ELBO, terms ``cll`` and ``kl_z``), the acting-time filter and the
exploration noise. Its checkpoint is ``AgentBase``'s: the belief's model and optimiser, the heads a
baseline declares, the generators and ``num_updates``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from avem.agents.base import AgentBase, flat_obs_dim
from avem.agents.parts.belief import Observed, RSSMBelief
from avem.checks import at_least, blocks, fields, non_negative, require
from avem.models.rssm import RSSM, RSSMConfig, State

if TYPE_CHECKING:  # annotations only: the agents do not depend on the training package
    from avem.train.replay import ReplayBuffer


def paper_rssm(model_lr: float, model_grad_clip: float) -> RSSMConfig:
    """The RSSM block at PlaNet's and Dreamer's values, with the paper's model optimiser.

    Sizes 200 / 30 / 200 (``deter``, ``stoch``, ``model_hidden``: both papers); every other field is
    set here too, so a change of the shared defaults for the AVEM family never changes a baseline
    (``tests/test_baselines.py`` pins them): ``min_std = 0.1`` (the papers' code), ``kl_balance = 0.5``
    (the plain ELBO gradient: KL balancing came with DreamerV2), ``kl_scale = 1`` and ``reward_std = 1``
    (unit variance; PlaNet's official code weights the reward loss by 10, ``reward_std = 10 ** -0.5``).
    The observation likelihood is the shared RSSM's vector-observation form, ``free_nats = 0``,
    ``obs_scale = 'running'``, ``obs_std = 0.1``: the papers' form on pixels, free nats 3 and unit std
    (``--set free_nats=3 obs_scale=fixed obs_std=1``), is a nearly flat likelihood on vector
    observations, under which the clamp held in most updates and the transition prior got no gradient."""
    return RSSMConfig(deter=200, stoch=30, model_hidden=200, min_std=0.1, free_nats=0.0, kl_balance=0.5,
                      kl_scale=1.0, obs_std=0.1, obs_scale="running", reward_std=1.0, model_lr=model_lr,
                      model_grad_clip=model_grad_clip)


@dataclass(frozen=True)
class RSSMBaselineConfig:
    """PlaNet's and Dreamer's training schedule and exploration noise; each baseline adds its ``rssm``
    block (``paper_rssm``), its own blocks and ``checks()``."""

    batch_size: int = 50
    """Sequence chunks per update (paper: B = 50)."""
    seq_len: int = 50
    """Rows per chunk (paper: L = 50)."""
    updates_per_episode: int = 100
    """Updates per collected episode, run at the episode's first step (paper: C = 100 per 1000-step episode)."""
    explore_noise: float = 0.3
    """Std of the Gaussian noise added to the action in training episodes, clipped to [-1, 1] (paper: 0.3)."""

    tiny: ClassVar[dict] = {"batch_size": 4, "seq_len": 8, "updates_per_episode": 3}
    """The ``tiny`` preset of the schedule (not a field); each block has its own (``avem.config_tree``)."""

    def checks(self) -> list[tuple[bool, str]]:
        """``(ok, message)`` checks of these fields and of every block (``rssm``, a baseline's own); a baseline
        adds checks of its own fields."""
        return [
            *fields(self, batch_size=at_least(1), seq_len=at_least(2), updates_per_episode=non_negative,
                    explore_noise=non_negative),
            *blocks(self),
        ]

    def validate(self) -> None:
        require(self.checks())


class RSSMBaseline(AgentBase):
    """``obs: (obs_dim,)`` -> filtering state ``[h, z]`` of the RSSM; a baseline adds how it acts and learns.

    ``name``: the registry name, for messages; ``adam_eps``: the world model's Adam epsilon."""

    name: ClassVar[str]
    plain_state = ("num_updates",)

    def __init__(self, obs_space, act_space, cfg: RSSMBaselineConfig, seed: int, adam_eps: float = 1e-8,
                 device: str = "cpu"):
        cfg.validate()
        self.obs_dim = flat_obs_dim(obs_space, self.name, " (the shared RSSM has no pixel encoder yet)")
        super().__init__(seed, device)
        self.cfg, self.act_dim = cfg, int(act_space.shape[0])
        with self.seeded_init(seed):
            self.belief = RSSMBelief(self.obs_dim, self.act_dim, cfg.rssm, adam_eps=adam_eps)
            self.build_heads()
        self.to_device()
        self.num_updates = 0

    def build_heads(self) -> None:
        """Networks beyond the world model (Dreamer's actor and value), initialised right after it."""

    @property
    def model(self) -> RSSM:
        """The world model (also the loop's diagnostics and the probe's)."""
        return self.belief.model

    def parts(self) -> dict:
        return {"belief": self.belief}

    def latent(self, state) -> np.ndarray:
        """Probe hook (``avem.probe``): the filtering features ``[h_t, z_t]`` after ``act``, ``(deter + stoch,)``."""
        return self.belief.latent(state["latent"])

    def filter(self, obs: np.ndarray, state, explore: bool) -> tuple[State, torch.Tensor]:
        """``state``: ``{"latent": filtering state (1, .), "action": a_{t-1} (1, A)}``, None at an episode start
        -> the new filtering state (posterior sample; mean when not exploring) and its ``[h, z] (1, F)``."""
        return self.belief.filter(obs, state, self.gen, explore)

    def add_noise(self, action: torch.Tensor) -> torch.Tensor:
        """``action + N(0, explore_noise^2)``, clipped to [-1, 1]: ``(1, A)``."""
        noise = self.cfg.explore_noise * torch.randn(action.shape, generator=self.gen, device=self.device)
        return (action + noise).clamp(-1.0, 1.0)

    def learn_model(self, buffer: ReplayBuffer) -> Observed:
        """One world-model update on ``(batch_size, seq_len)`` replay windows (counted in ``num_updates``)."""
        cfg = self.cfg
        windows = {k: self.tensor(v) for k, v in buffer.sample(self.rng, cfg.batch_size, cfg.seq_len).items()}
        self.num_updates += 1
        return self.belief.observe(windows, self.gen)
