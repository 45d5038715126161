"""The AVEM agent's belief: its latent state ``z_t`` from the history, behind one interface.

- ``observe(windows, gen, beta_ml) -> Observed``: one training step on replay windows
  (``obs (B, L, O)``, ``action (B, L, A)``, ``reward (B, L)``, ``is_first (B, L)``), returning the
  windows' features ``(B, L, F)``, the belief's metrics and the data-side information gain;
- ``filter(obs, state, gen, explore) -> (filter state, feature (1, F))``: one acting step on
  ``obs: (O,)`` with the agent's state ``{"latent": filter state, "action": a_{t-1} (1, A)}``
  (None at an episode start);
- ``latent(filter state) -> (F,)``: the probe hook's features; ``feat_dim``: F;
- ``critic_params()``: parameters the critic's loss trains (the discriminative encoder's).

``RSSMBelief`` (generative): the RSSM trained on its own loss (``RSSM.loss``: ``cll``, ``kl_z``
and, with ``iw_samples > 0``, ``mll`` scaled by the ``beta_ml`` the caller passes); features
``[h_t, z_t]`` detached from the model before the critic, as in SLAC. It is also the world model
of the RSSM baselines (``planet``, ``dreamer``: ``iw_samples = 0``, the ELBO), which read its
posterior states and gradient norm from ``Observed``. ``RecurrentBelief`` (discriminative): a GRU
trained only through the critic; no likelihood, no metrics.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avem.agents.avem_config import AVEMConfig
from avem.models.recurrent import EncoderConfig, RecurrentEncoder
from avem.models.rssm import RSSM, RSSMConfig, State


@dataclass
class Observed:
    """What ``observe`` returns for a batch of windows."""

    feat: torch.Tensor
    """(B, L, F) features (carrying the graph only where the critic trains the belief)."""
    metrics: dict[str, float]
    """The belief's loss terms (``{}`` for a belief without a loss of its own)."""
    info_gain: torch.Tensor | None
    """(B, L) data-side information gain ``log p(x_t | z_t) - log p(x_t | past)``; None without the term."""
    post: State | None = None
    """Posterior states ``{deter, stoch, mean, std}`` (B, L, .), detached; None for a belief without them."""
    grad_norm: float | None = None
    """Gradient norm of the belief's own update, before clipping; None without one."""


class RSSMBelief:
    """Generative belief: ``RSSM`` filtering posterior, trained on the model loss by Adam at ``model_lr``.

    ``iw_samples``: K of the marginal-likelihood term (0: the ELBO alone); ``ml_reward``: whether the
    marginal holds the reward (``RSSM.loss``); ``adam_eps``: the optimiser's epsilon."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: RSSMConfig, iw_samples: int = 0, ml_reward: bool = True,
                 adam_eps: float = 1e-8):
        self.iw_samples, self.ml_reward = iw_samples, ml_reward
        self.model = RSSM(obs_dim, act_dim, cfg)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.model_lr, eps=adam_eps)
        self.feat_dim = self.model.feat_dim

    def modules(self) -> dict:
        return {"model": self.model}

    def optimizers(self) -> dict:
        return {"model": self.opt}

    def critic_params(self) -> tuple:
        return ()

    def observe(self, windows: dict[str, torch.Tensor], gen: torch.Generator, beta_ml: float = 0.0) -> Observed:
        """One model update (``RSSM.train_step``) on the windows; its posterior, detached, and features."""
        out, grad_norm = self.model.train_step(self.opt, windows, gen, beta_ml=beta_ml, iw_samples=self.iw_samples,
                                               ml_reward=self.ml_reward)
        post = {k: v.detach() for k, v in out.post.items()}
        return Observed(self.model.feat(post), dict(out.metrics), out.info_gain, post, grad_norm)

    @torch.no_grad()
    def filter(self, obs: np.ndarray, state: dict | None, gen: torch.Generator,
               explore: bool) -> tuple[State, torch.Tensor]:
        """Posterior sample (``explore``) or mean; returns ``(RSSM state (1, .), [h, z] (1, F))``."""
        latent = self.model.filter_obs(obs, state, gen, sample=explore)
        return latent, self.model.feat(latent)

    def latent(self, latent: State) -> np.ndarray:
        """``[h_t, z_t]``: ``(deter + stoch,)``."""
        return self.model.feat(latent)[0].detach().cpu().numpy()


class RecurrentBelief:
    """Discriminative belief: ``h_t = GRU(h_{t-1}, [x_t, a_{t-1}])`` trained through the critic (at ``critic_lr``)."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: EncoderConfig):
        self.act_dim = act_dim
        self.encoder = RecurrentEncoder(obs_dim, act_dim, cfg.deter, cfg.model_hidden)
        self.feat_dim = self.encoder.feat_dim

    def modules(self) -> dict:
        return {"encoder": self.encoder}

    def optimizers(self) -> dict:
        return {}

    def critic_params(self) -> tuple:
        return tuple(self.encoder.parameters())

    def observe(self, windows: dict[str, torch.Tensor], gen: torch.Generator, beta_ml: float) -> Observed:
        """The GRU over the windows, with the graph (the critic's loss trains it)."""
        feat = self.encoder.observe(windows["obs"], windows["action"], windows["is_first"])
        return Observed(feat, {}, None)

    @torch.no_grad()
    def filter(self, obs: np.ndarray, state: dict | None, gen: torch.Generator,
               explore: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic; the filter state and the feature are both ``h_t (1, deter)``."""
        h = self.encoder.initial(1) if state is None else state["latent"]
        device = h.device
        prev_a = torch.zeros(1, self.act_dim, device=device) if state is None else state["action"]
        first = torch.tensor([state is None], device=device)
        x = torch.as_tensor(np.asarray(obs, np.float32), device=device).reshape(1, -1)
        h = self.encoder.step(h, x, prev_a, first)
        return h, h

    def latent(self, latent: torch.Tensor) -> np.ndarray:
        """The GRU history state ``(deter,)``."""
        return latent[0].detach().cpu().numpy()


def make_belief(obs_dim: int, act_dim: int, cfg: AVEMConfig) -> RSSMBelief | RecurrentBelief:
    """The belief of ``cfg.model`` (generative: the marginal likelihood's K where the switch is on)."""
    if cfg.model == "discriminative":
        return RecurrentBelief(obs_dim, act_dim, cfg.encoder)
    ml = cfg.ml if cfg.marginal_likelihood else None
    return RSSMBelief(obs_dim, act_dim, cfg.rssm, iw_samples=ml.iw_samples if ml else 0,
                      ml_reward=ml is not None and ml.ml_reward)
