"""The AVEM agent family (Marino & Yue 2019, Algorithm 1): one agent class, four switches.

Switches (``AVEMConfig``): ``model`` (discriminative | generative), ``marginal_likelihood``,
``action_prior`` (uniform | learned), ``planning``. Registered names (``avem.variants``):

    avem-disc-{uniform|learned}                          (2 discriminative variants)
    avem-gen-{ml|elbo}-{uniform|learned}-{plan|noplan}   (8 generative variants)

``avem-gen-ml-learned-plan`` is the paper's full agent; ``avem-gen-elbo-uniform-noplan`` is
SLAC-like; ``avem-disc-uniform`` is recurrent SAC. Planning or the marginal likelihood with a
discriminative model is refused by ``AVEMConfig.validate`` before anything runs.

The agent is three parts chosen by the switches (``avem.agents.parts``), each owning its
networks, optimiser, losses and metrics, around the soft actor-critic every variant trains:
the belief (``model``: RSSM or GRU encoder), the action prior (``action_prior``: uniform or
learned, also the critic's action-KL rule, ``avem.nets.action_kl``) and the actor (``planning``:
the planner or the amortised policy).

One update (the M-step, plus the critic that supplies the bound's future terms):
1. a batch of replay windows ``(B, L)``;
2. the belief observes them: generative: the RSSM filters the windows and steps the model loss
   (``RSSM.loss``: terms ``cll``, ``kl_z`` and, with the switch, ``mll`` scaled by the annealed
   ``beta_ml``); discriminative: the GRU encodes them (trained through the critic);
3. soft actor-critic on the latent features of rows ``burn_in .. L-1`` (detached from the RSSM,
   as in SLAC), with reward ``r_{t+1}`` and the action KL to the prior (uniform: entropy);
4. the prior consolidates: learned, planning: ``min KL(q_plan || p_a)`` on the planned posteriors
   that ``act`` returned as per-step extras (``plan_mean``, ``plan_std``: replay keeps them with
   the action they produced); no planning: ``min KL(q_policy || p_a)`` at ``noplan_prior_lr_scale``
   times the rate (a slower-moving prior: the asymmetry that keeps the KL informative). The
   temperature of a learned-prior agent is tuned so that ``KL(q || p_a)`` tracks ``target_kl``
   (default: ``d log 2 - target_entropy``, the KL a uniform-prior agent settles at, since
   ``KL(q || U) = -H(q) + d log 2`` and the uniform agent's alpha tracks the entropy target).

Acting (the E-step): the belief filters the new observation; the actor infers ``q(a_t)``:
planning: ``LatentPlanner`` (``q* ∝ p_a exp(R / alpha)``; the first iteration's proposal is the
prior mixed with the amortised policy, ``plan_policy_fraction``, importance-corrected; candidates
share the roll-out noise, ``plan_common_noise``; soft-value bootstrap from the critic and the
amortised actor); no planning: the amortised policy. ``explore=False`` returns ``tanh(mean)`` (and
filters with the posterior mean). Planning agents still train the amortised actor pi: it never
acts, but supplies the soft value ``V(z) = E_pi[Q] - alpha KL(pi||p_a)`` of the critic's targets
and of the planner's horizon bootstrap (as TD-MPC does): ``avem.nets.action_kl.soft_value``.

Deviations / practical choices (beyond the paper; the table in README "Agents" and
``avem/objective/README.md``): the soft value function, whose critic is trained on
``r_t + alpha beta_ml IG_t`` (the data-side information gain of the model loss) so that the
planner's horizon bootstrap holds the terms its roll-out sums; the temperature rule above; the
shared RSSM's vector-observation likelihood (no free nats, observation std 0.1 x each dimension's
running std: ``RSSMConfig``); no KL balancing (0.5), which the marginal-likelihood term requires
(``AVEMConfig.validate``); the marginal likelihood (and the planner's information gain) is over the
observation x_t only, not (x_t, r_t) (``MarginalLikelihoodConfig.ml_reward``: with r_t inside, the model loss at
the paper's ``beta_ml = 1`` is only the IWAE-ELBO gap and pays for no prediction, not even of the
reward); the planner's temperature is raised where alpha leaves under ``plan_min_ess`` effective
samples (single-roll-out returns: see ``avem.planning.importance``); candidates share their
roll-outs' random numbers and a quarter of the first proposals come from the amortised policy
(the target is unchanged); vector observations only (no pixel encoder/decoder yet).

Metrics, each part's own (so a key appears iff its part has the term):
- ``update()``, every variant: ``reward`` (mean r_t of the critic rows), and the soft
  actor-critic's ``critic_loss``, ``q_mean``, ``actor_loss``, ``entropy``, ``alpha``, ``kl_a``
  (KL(q(a)||p_a(a)) of the amortised policy, the uniform prior's ``d log 2`` included, so >= 0);
- generative belief: ``model_loss``, ``cll`` (log p(x,r|z) per step), ``cll_obs``, ``cll_reward``,
  ``kl_z`` (KL(q(z)||p(z)), before free nats), ``kl_grad_frac``, ``elbo`` (cll - kl_z);
  with marginal_likelihood ``mll`` (IW log p(x|past); p(x,r|past) with ``ml_reward``), ``info_gain``
  (cll - mll on data), ``beta_ml``;
- learned prior: ``prior_loss`` (the KL the prior minimises); with planning also
  ``consolidation_coverage`` (fraction of critic rows whose action was planned, i.e. has a posterior in replay);
- planning actor: scalar extras of ``act`` when exploring (the loop logs their episode means
  beside the update metrics): ``plan_return`` (estimated bound under q), ``plan_kl_a``
  (KL(q_plan||p_a)), ``plan_ess`` (effective sample size fraction), ``plan_temperature`` (the
  temperature used: alpha, raised where ``plan_min_ess`` asks); with marginal_likelihood ``plan_info_gain``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from avem.agents.avem_config import AVEMConfig
from avem.agents.base import AgentBase, flat_obs_dim
from avem.agents.parts import make_actor, make_belief, make_prior
from avem.agents.registry import register
from avem.models.rssm import RSSM
from avem.nets.actor_critic import SoftActorCritic
from avem.objective import linear_anneal
from avem.variants import variants

if TYPE_CHECKING:  # annotations only: the agents do not depend on the training package
    from avem.train.replay import ReplayBuffer


class AVEMAgent(AgentBase):
    """See the module docstring. ``obs: (obs_dim,)`` vectors only (no pixel encoder yet).

    Parts (``avem.agents.parts``): ``belief``, ``prior``, ``actor``; and ``ac``, the soft actor-critic
    (twin critic, amortised policy, temperature) that every variant trains, declared as a learner (its
    module and optimisers). The checkpoint holds them all (``AgentBase``), the counters and the last metrics."""

    plain_state = ("num_updates", "_last", "ac.num_updates")

    def __init__(self, obs_space, act_space, cfg: AVEMConfig, seed: int, device: str = "cpu"):
        cfg.validate()
        self.obs_dim = flat_obs_dim(obs_space, "an AVEM agent", " (no pixel encoder yet)")
        super().__init__(seed, device)
        self.cfg, self.act_dim = cfg, int(act_space.shape[0])
        with self.seeded_init(seed):
            self.belief = make_belief(self.obs_dim, self.act_dim, cfg)
            self.feat_dim = self.belief.feat_dim
            self.ac = SoftActorCritic(self.feat_dim, self.act_dim, cfg.actor_critic, self.gen,
                                      extra_critic_params=self.belief.critic_params())
            self.prior = make_prior(self.feat_dim, self.act_dim, cfg)
            self.actor = make_actor(self.ac, self.prior, self.model, cfg)
        self.to_device()
        self.num_updates = 0
        self._last: dict[str, float] = {}

    @property
    def model(self) -> RSSM | None:
        """The world model (the generative belief's RSSM; None for a discriminative one): the loop's diagnostics."""
        return getattr(self.belief, "model", None)

    def parts(self) -> dict:
        return {"belief": self.belief, "prior": self.prior, "actor": self.actor}

    def learners(self) -> dict:
        return {"ac": self.ac}

    def beta_ml(self) -> float:
        """Current coefficient of the marginal-likelihood term (0 with the switch off), annealed over updates."""
        ml = self.cfg.ml
        if not self.cfg.marginal_likelihood:
            return 0.0
        return linear_anneal(self.num_updates, ml.beta_ml_start, ml.beta_ml_end, ml.beta_ml_anneal_steps)

    def info_gain_weight(self) -> float:
        """Weight of the information gain in the planner's return and the critic's reward: ``alpha * beta_ml``.

        The bound is in nats with the reward in units of alpha (``exp(r / alpha)``); times alpha it is in
        reward units, ``r - alpha KL(q(a) || p_a) + alpha beta_ml IG``, the same alpha as the action KL. 0 without the
        marginal likelihood, and with ``ml.control_info_gain=False`` (the model keeps the term, control drops it)."""
        if not self.cfg.marginal_likelihood or not self.cfg.ml.control_info_gain:
            return 0.0
        return float(self.ac.alpha) * self.beta_ml()

    # ---- acting -------------------------------------------------------------------------
    @torch.no_grad()
    def latent(self, state) -> np.ndarray:
        """Probe hook (``avem.probe``): the belief after ``act`` (``belief.latent``)."""
        return self.belief.latent(state["latent"])

    @torch.no_grad()
    def act(self, obs: np.ndarray, state, explore: bool):
        """``state``: ``{"latent": filter state, "action": a_{t-1} (1, A)}``; None at an episode start.

        Returns ``(action (A,), state, extras)``: the actor's per-step extras (planning: see the module docstring)."""
        latent, feat = self.belief.filter(np.asarray(obs, np.float32), state, self.gen, explore)
        dist, extras = self.actor.act(latent, feat, explore, self.gen, self.info_gain_weight())
        action = dist.rsample_with_log_prob(self.gen)[0] if explore else dist.mode()
        return action[0].cpu().numpy().astype(np.float32), {"latent": latent, "action": action}, extras

    # ---- learning -----------------------------------------------------------------------
    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        """One update: belief, soft actor-critic, prior; ``updates_per_step`` is the loop's schedule
        (``avem.train.schedule``). Returns every part's metrics (a term skipped this update, e.g. the
        actor's under ``actor_update_every``, keeps its latest value)."""
        cfg, s = self.cfg, self.cfg.critic_burn_in
        raw = buffer.sample(self.rng, cfg.batch_size, cfg.seq_len)
        windows = {k: self.tensor(v) for k, v in raw.items()}
        seen = self.belief.observe(windows, self.gen, self.beta_ml())
        metrics = dict(seen.metrics)
        f_t = seen.feat[:, s:-1].reshape(-1, self.feat_dim)
        f_next = seen.feat[:, s + 1:].reshape(-1, self.feat_dim)
        a_t = windows["action"][:, s + 1:].reshape(-1, self.act_dim)
        r_t = windows["reward"][:, s + 1:].reshape(-1)
        discount = 1.0 - windows["is_terminal"][:, s + 1:].float().reshape(-1)
        metrics["reward"] = r_t.mean().item()
        if seen.info_gain is not None:  # the value must hold the terms the planner's roll-out sums (latent.py)
            r_t = r_t + self.info_gain_weight() * seen.info_gain[:, s + 1:].reshape(-1)
        metrics.update(self.ac.update(f_t, a_t, r_t, f_next, discount, self.prior))
        metrics.update(self.prior.consolidate(f_t.detach(), raw, s, self.ac.actor))
        self.num_updates += 1
        self._last.update(metrics)
        return dict(self._last)


# ---- the registered variants (names: avem.variants) ----------------------------------
_DESCRIPTIONS = {
    "avem-disc-uniform": "AVEM discriminative, uniform prior: recurrent SAC on a GRU history encoder",
    "avem-disc-learned": "AVEM discriminative, learned (slow) action prior: recurrent KL-regularised SAC",
    "avem-gen-elbo-uniform-noplan": "AVEM generative ELBO, uniform prior, amortised policy (SLAC-like)",
    "avem-gen-elbo-uniform-plan": "AVEM generative ELBO, uniform prior, planning (PlaNet-like MPPI + value)",
    "avem-gen-ml-learned-plan": "AVEM full agent (paper): marginal likelihood, learned prior, planning",
}


def _describe(name: str, sw: dict) -> str:
    if name in _DESCRIPTIONS:
        return _DESCRIPTIONS[name]
    return (f"AVEM generative, {'marginal likelihood' if sw['marginal_likelihood'] else 'ELBO'}, "
            f"{sw['action_prior']} prior, {'planning' if sw['planning'] else 'amortised policy'}")


for _name, _switches in variants().items():
    register(_name, AVEMAgent, AVEMConfig, _describe(_name, _switches), **_switches)

