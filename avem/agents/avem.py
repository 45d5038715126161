"""The AVEM agent family (Marino & Yue 2019, Algorithm 1): one agent class, four switches.

Switches (``AVEMConfig``): ``model`` (discriminative | generative), ``marginal_likelihood``,
``action_prior`` (uniform | learned), ``planning``. Registered names (``avem.variants``):

    avem-disc-{uniform|learned}                          (2 discriminative variants)
    avem-gen-{ml|elbo}-{uniform|learned}-{plan|noplan}   (8 generative variants)

``avem-gen-ml-learned-plan`` is the paper's full agent; ``avem-gen-elbo-uniform-noplan`` is
SLAC-like; ``avem-disc-uniform`` is recurrent SAC. Planning or the marginal likelihood with a
discriminative model is refused by ``AVEMConfig.validate`` before anything runs.

One update (the M-step, plus the critic that supplies the bound's future terms):
1. a batch of replay windows ``(B, L)``;
2. generative: filter the windows with the RSSM and step the model loss (``RSSM.loss``: terms
   ``cll``, ``kl_z`` and, with the switch, ``mll`` scaled by the annealed ``beta_ml``);
   discriminative: encode the windows with the GRU (trained through the critic);
3. soft actor-critic on the latent features of rows ``burn_in .. L-1`` (detached from the RSSM,
   as in SLAC), with reward ``r_{t+1}`` and the action KL to the prior (uniform: entropy);
4. learned prior: planning: consolidation, ``min KL(q_plan || p_a)`` on the planned posteriors
   that ``act`` returned as per-step extras (``plan_mean``, ``plan_std``: replay keeps them with
   the action they produced); no planning: ``min KL(q_policy || p_a)`` at ``noplan_prior_lr_scale``
   times the rate (a slower-moving prior: the asymmetry that keeps the KL informative). The
   temperature of a learned-prior agent is tuned so that ``KL(q || p_a)`` tracks ``target_kl``
   (default: ``d log 2 - target_entropy``, the KL a uniform-prior agent settles at, since
   ``KL(q || U) = -H(q) + d log 2`` and the uniform agent's alpha tracks the entropy target).

Acting (the E-step): filter the new observation; planning: infer ``q(a_t)`` with
``LatentPlanner`` (``q* ∝ p_a exp(R / alpha)``; the first iteration's proposal is the prior mixed
with the amortised policy, ``plan_policy_fraction``, importance-corrected; candidates share the
roll-out noise, ``plan_common_noise``; soft-value bootstrap from the critic and the amortised
actor); no planning: the amortised policy. ``explore=False``
returns ``tanh(mean)`` (and filters with the posterior mean). Planning agents still train the
amortised actor pi: it never acts, but supplies the soft value ``V(z) = E_pi[Q] - alpha KL(pi||p_a)``
of the critic's targets and of the planner's horizon bootstrap (as TD-MPC does).

Deviations / practical choices (beyond the paper; the table in README "Agents" and
``avem/objective/README.md``): the soft value function, whose critic is trained on
``r_t + alpha beta_ml IG_t`` (the data-side information gain of the model loss) so that the
planner's horizon bootstrap holds the terms its roll-out sums; the temperature rule above; the
shared RSSM's vector-observation likelihood (no free nats, observation std 0.1 x each dimension's
running std: ``RSSMConfig``); no KL balancing (0.5), which the marginal-likelihood term requires
(``AVEMConfig.validate``); the marginal likelihood (and the planner's information gain) is over the
observation x_t only, not (x_t, r_t) (``AVEMConfig.ml_reward``: with r_t inside, the model loss at
the paper's ``beta_ml = 1`` is only the IWAE-ELBO gap and pays for no prediction, not even of the
reward); the planner's temperature is raised where alpha leaves under ``plan_min_ess`` effective
samples (single-roll-out returns: see ``avem.planning.importance``); candidates share their
roll-outs' random numbers and a quarter of the first proposals come from the amortised policy
(the target is unchanged); vector observations only (no pixel encoder/decoder yet).

Keys returned by ``update()`` (stable across variants; a key appears iff its term exists):
- every variant: ``reward`` (mean r_t of the critic rows), ``kl_a`` (KL(q(a)||p_a(a)) of the
  amortised policy, the uniform prior's ``d log 2`` included, so >= 0), ``critic_loss``,
  ``q_mean``, ``actor_loss``, ``entropy``, ``alpha``;
- generative: ``model_loss``, ``cll`` (log p(x,r|z) per step), ``cll_obs``, ``cll_reward``,
  ``kl_z`` (KL(q(z)||p(z)), before free nats), ``elbo`` (cll - kl_z);
- marginal_likelihood: ``mll`` (IW log p(x,r|past)), ``info_gain`` (cll - mll on data), ``beta_ml``;
- learned prior: ``prior_loss`` (the KL the prior minimises); with planning also
  ``consolidation_coverage`` (fraction of critic rows whose action was planned, i.e. has a posterior in replay);
- planning (means over the acting steps since the previous update; 0 before the first
  planned action): ``plan_return`` (estimated bound under q), ``plan_kl_a`` (KL(q_plan||p_a)),
  ``plan_ess`` (effective sample size fraction), ``plan_temperature`` (the temperature used:
  alpha, raised where ``plan_min_ess`` asks); with marginal_likelihood ``plan_info_gain``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from avem.agents.avem_config import AVEMConfig
from avem.agents.base import obs_dim
from avem.agents.registry import register
from avem.models.recurrent import RecurrentEncoder
from avem.models.rssm import RSSM
from avem.nets.actor_critic import Actor, SoftActorCritic
from avem.nets.distributions import TanhNormal
from avem.objective import gaussian_kl, linear_anneal
from avem.planning import LatentPlanner
from avem.train.replay import ReplayBuffer
from avem.variants import variants

COMMON_KEYS = ("reward", "kl_a", "critic_loss", "q_mean", "actor_loss", "entropy", "alpha")
GENERATIVE_KEYS = ("model_loss", "cll", "cll_obs", "cll_reward", "kl_z", "kl_grad_frac", "elbo")
ML_KEYS = ("mll", "info_gain", "beta_ml")
PLAN_KEYS = ("plan_return", "plan_kl_a", "plan_ess", "plan_temperature")


def metric_keys(cfg: AVEMConfig) -> set[str]:
    """The exact key set ``update()`` returns for a configuration."""
    keys = set(COMMON_KEYS)
    if cfg.model == "generative":
        keys |= set(GENERATIVE_KEYS)
    if cfg.marginal_likelihood:
        keys |= set(ML_KEYS)
    if cfg.action_prior == "learned":
        keys.add("prior_loss")
        if cfg.planning:
            keys.add("consolidation_coverage")
    if cfg.planning:
        keys |= set(PLAN_KEYS)
        if cfg.marginal_likelihood:
            keys.add("plan_info_gain")
    return keys


class PriorSoftActorCritic(SoftActorCritic):
    """SAC whose temperature, with a learned prior, tracks ``KL(q || p_a) = target_kl`` instead of the entropy."""

    def __init__(self, *args, target_kl: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.target_kl = target_kl

    def temperature_loss(self, log_q, metrics, log_prior):
        if log_prior is None:
            return super().temperature_loss(log_q, metrics, log_prior)
        return -self.log_alpha * (metrics["kl_a"] - self.target_kl)


def _broad_init(prior: Actor, std: float, cfg: AVEMConfig, act_dim: int) -> None:
    """Start p_a near ``TanhNormal(~0, std)``: zero the log-std weights, set their bias."""
    last = prior.net[-1]
    target = (math.log(std) - cfg.log_std_min) / (0.5 * (cfg.log_std_max - cfg.log_std_min)) - 1.0
    with torch.no_grad():
        last.weight[act_dim:].zero_()
        last.bias[act_dim:].fill_(math.atanh(max(min(target, 0.999), -0.999)))
        last.weight[:act_dim].mul_(0.1)
        last.bias[:act_dim].zero_()


class AVEMAgent:
    """See the module docstring. ``obs: (obs_dim,)`` vectors only (no pixel encoder yet)."""

    def __init__(self, obs_space, act_space, cfg: AVEMConfig, seed: int):
        cfg.validate()
        if len(obs_space.shape) != 1:
            raise ValueError(f"AVEM agents take flat vector observations, got shape {obs_space.shape} "
                             "(no pixel encoder yet)")
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim(obs_space), int(act_space.shape[0])
        self.generative = cfg.model == "generative"
        self.learned_prior = cfg.action_prior == "learned"
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):  # initialisation depends on the seed only
            torch.manual_seed(seed)
            self._build()
        self.num_updates = 0
        self._plan_sums: dict[str, float] = {}
        self._plan_count = 0
        self._last: dict[str, float] = {}

    def _build(self) -> None:
        cfg, a = self.cfg, self.act_dim
        extra = ()
        if self.generative:
            self.model = RSSM(self.obs_dim, a, cfg)
            self.model_opt = torch.optim.Adam(self.model.parameters(), lr=cfg.model_lr)
            feat_dim = self.model.feat_dim
        else:
            self.encoder = RecurrentEncoder(self.obs_dim, a, cfg.deter, cfg.model_hidden)
            feat_dim, extra = self.encoder.feat_dim, tuple(self.encoder.parameters())
        self.feat_dim = feat_dim
        self.ac = PriorSoftActorCritic(feat_dim, a, cfg, self.gen, extra_critic_params=extra,
                                       target_kl=self.target_kl())
        self.prior = self.prior_opt = None
        if self.learned_prior:
            self.prior = Actor(feat_dim, a, cfg)
            _broad_init(self.prior, cfg.prior_init_std, cfg, a)
            lr = cfg.prior_lr * (1.0 if cfg.planning else cfg.noplan_prior_lr_scale)
            self.prior_opt = torch.optim.Adam(self.prior.parameters(), lr=lr)
        self.planner = None
        if cfg.planning:
            self.planner = LatentPlanner(self.model, a, cfg.plan_horizon, cfg.plan_samples, cfg.plan_iterations,
                                         cfg.plan_min_std, cfg.gamma,
                                         cfg.plan_info_gain_samples if cfg.marginal_likelihood else 0,
                                         info_gain_reward=cfg.ml_reward, min_ess=cfg.plan_min_ess,
                                         common_noise=cfg.plan_common_noise,
                                         policy_samples=round(cfg.plan_policy_fraction * cfg.plan_samples))

    # ---- pieces of the bound ------------------------------------------------------------
    def target_kl(self) -> float:
        """KL(q||p_a) target of a learned-prior agent (derived; the config is never written back)."""
        cfg = self.cfg
        if cfg.target_kl is not None:
            return float(cfg.target_kl)
        target_entropy = -float(self.act_dim) if cfg.target_entropy is None else cfg.target_entropy
        return self.act_dim * math.log(2.0) - target_entropy

    def beta_ml(self) -> float:
        """Current coefficient of the marginal-likelihood term (0 with the switch off)."""
        cfg = self.cfg
        if not cfg.marginal_likelihood:
            return 0.0
        return linear_anneal(self.num_updates, cfg.beta_ml_start, cfg.beta_ml_end, cfg.beta_ml_anneal_steps)

    def info_gain_weight(self) -> float:
        """Weight of the information gain in the planner's return and the critic's reward: ``alpha * beta_ml``.

        The bound is in nats with the reward in units of alpha (``exp(r / alpha)``); times alpha it is in
        reward units, ``r - alpha KL(q(a) || p_a) + alpha beta_ml IG``, the same alpha as the action KL."""
        return float(self.ac.alpha) * self.beta_ml()

    def _log_prior(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.prior(feat).log_prob(action)

    def _soft_value(self, feat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``V(z) = E_pi[min Q(z, a)] - alpha KL(pi || p_a)`` (one sample; uniform: ``d log 2`` dropped as in the critic).

        ``feat: (N, F)``; ``eps: (N, A)`` the standard-normal noise of the sample (the planner's)."""
        a, log_q = self.ac.actor(feat).sample_from_noise(eps)
        q1, q2 = self.ac.critic(feat, a)
        kl = log_q - self._log_prior(feat, a) if self.learned_prior else log_q
        return torch.min(q1, q2) - self.ac.alpha * kl

    # ---- acting -------------------------------------------------------------------------
    def initial_state(self):
        return None

    @torch.no_grad()
    def latent(self, state) -> np.ndarray:
        """Probe hook (``avem.probe``): the belief after ``act``: RSSM features ``[h_t, z_t]``
        ``(deter + stoch,)`` for a generative agent, the GRU history state ``(deter,)`` otherwise."""
        feat = self.model.feat(state["latent"]) if self.generative else state["latent"]
        return feat[0].detach().numpy()

    @torch.no_grad()
    def act(self, obs: np.ndarray, state, explore: bool):
        """``state``: ``{"latent": filter state, "action": a_{t-1} (1, A)}``; None at an episode start."""
        obs_np = np.asarray(obs, np.float32)
        if self.generative:
            latent = self.model.filter_obs(obs_np, state, self.gen, sample=explore)
            feat = self.model.feat(latent)
        else:
            h = self.encoder.initial(1) if state is None else state["latent"]
            prev_a = torch.zeros(1, self.act_dim) if state is None else state["action"]
            first = torch.tensor([state is None])
            latent = feat = self.encoder.step(h, torch.from_numpy(obs_np).reshape(1, -1), prev_a, first)
        q_plan = None
        if self.cfg.planning:
            alpha = self.cfg.plan_temperature or float(self.ac.alpha)
            prior_fn = self.prior if self.learned_prior else None
            q_plan = self.planner.plan(latent, prior_fn, self._soft_value, alpha, self.info_gain_weight(), self.gen,
                                       policy_fn=self.ac.actor)
            dist = TanhNormal(q_plan.mean[None], q_plan.std[None])
            if explore:
                kl = self.planner.action_prior(feat, prior_fn).kl(q_plan.mean, q_plan.std, self.gen)
                self._accumulate({"plan_return": q_plan.expected_return, "plan_kl_a": float(kl),
                                  "plan_ess": q_plan.ess, "plan_temperature": q_plan.extras["temperature"],
                                  "plan_info_gain": q_plan.extras["info_gain"]})
        else:
            dist = self.ac.actor(feat)
        action = dist.rsample_with_log_prob(self.gen)[0] if explore else dist.mode()
        extras = {"plan_mean": q_plan.mean.numpy(), "plan_std": q_plan.std.numpy()} if q_plan is not None else {}
        return action[0].numpy().astype(np.float32), {"latent": latent, "action": action}, extras

    def _accumulate(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self._plan_sums[k] = self._plan_sums.get(k, 0.0) + v
        self._plan_count += 1

    # ---- learning -----------------------------------------------------------------------
    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        """One update (model, critic and actor, prior); ``updates_per_step`` is the loop's schedule (``avem.train.schedule``)."""
        cfg, s = self.cfg, self.cfg.critic_burn_in
        raw = buffer.sample(self.rng, cfg.batch_size, cfg.seq_len)
        windows = {k: torch.from_numpy(v) for k, v in raw.items()}
        obs, act, rew, first = windows["obs"], windows["action"], windows["reward"], windows["is_first"]
        term = windows["is_terminal"]
        metrics: dict[str, float] = {}
        info_gain = None
        if self.generative:
            out, _ = self.model.train_step(self.model_opt, windows, self.gen, beta_ml=self.beta_ml(),
                                           iw_samples=cfg.iw_samples if cfg.marginal_likelihood else 0,
                                           ml_reward=cfg.ml_reward)
            metrics.update(out.metrics)
            feat = self.model.feat(out.post).detach()
            info_gain = out.info_gain
        else:
            feat = self.encoder.observe(obs, act, first)
        f_t = feat[:, s:-1].reshape(-1, self.feat_dim)
        f_next = feat[:, s + 1:].reshape(-1, self.feat_dim)
        a_t = act[:, s + 1:].reshape(-1, self.act_dim)
        r_t = rew[:, s + 1:].reshape(-1)
        discount = 1.0 - term[:, s + 1:].float().reshape(-1)
        metrics["reward"] = r_t.mean().item()
        if info_gain is not None:  # the value must hold the terms the planner's roll-out sums (latent.py)
            r_t = r_t + self.info_gain_weight() * info_gain[:, s + 1:].reshape(-1)
        log_prior = self._log_prior if self.learned_prior else None
        sac = self.ac.update(f_t, a_t, r_t, f_next, discount, log_prior)
        if "kl_a" in sac and not self.learned_prior:
            sac["kl_a"] += self.act_dim * math.log(2.0)  # report the KL itself, not the SAC-shifted value
        metrics.update(sac)
        if self.learned_prior:
            metrics.update(self._update_prior(f_t.detach(), raw, s))
        if cfg.planning:
            metrics.update(self._plan_metrics())
        self.num_updates += 1
        self._last.update(metrics)
        return dict(self._last)

    def _update_prior(self, feat: torch.Tensor, raw: dict, s: int) -> dict[str, float]:
        """One step of ``min KL(q || p_a)``: q = the planned posteriors in replay (planning) or the policy."""
        p = self.prior(feat)
        out: dict[str, float] = {}
        if self.cfg.planning:  # row t+1 holds a_t and the q(a_t) planned at obs_t; NaN where a_t was not planned
            if "plan_std" not in raw:  # no action planned yet
                return {"consolidation_coverage": 0.0, "prior_loss": 0.0}
            mean, std = (torch.from_numpy(raw[k][:, s + 1:].reshape(-1, self.act_dim)) for k in ("plan_mean", "plan_std"))
            found = ~torch.isnan(std[:, 0])
            out["consolidation_coverage"] = found.float().mean().item()
            if not found.any():
                out["prior_loss"] = 0.0
                return out
            kl = gaussian_kl(mean[found], std[found], p.mean[found], p.std[found]).mean()
        else:
            with torch.no_grad():
                q = self.ac.actor(feat)
            kl = gaussian_kl(q.mean, q.std, p.mean, p.std).mean()
        self.prior_opt.zero_grad(set_to_none=True)
        kl.backward()
        self.prior_opt.step()
        out["prior_loss"] = kl.item()
        return out

    def _plan_metrics(self) -> dict[str, float]:
        keys = PLAN_KEYS + (("plan_info_gain",) if self.cfg.marginal_likelihood else ())
        if self._plan_count == 0:
            return {k: self._last.get(k, 0.0) for k in keys}
        out = {k: self._plan_sums[k] / self._plan_count for k in keys}
        self._plan_sums, self._plan_count = {}, 0
        return out

    # ---- checkpointing ------------------------------------------------------------------
    def _modules(self) -> dict:
        mods = {"ac": self.ac}
        if self.generative:
            mods["model"] = self.model
        else:
            mods["encoder"] = self.encoder
        if self.prior is not None:
            mods["prior"] = self.prior
        return mods

    def state_dict(self) -> dict:
        state = {name: m.state_dict() for name, m in self._modules().items()}
        state.update({"ac_optim": self.ac.optim_state(), "gen": self.gen.get_state(),
                      "rng": self.rng.bit_generator.state, "num_updates": self.num_updates,
                      "plan_sums": dict(self._plan_sums), "plan_count": self._plan_count,
                      "last": dict(self._last)})
        if self.generative:
            state["model_optim"] = self.model_opt.state_dict()
        if self.prior_opt is not None:
            state["prior_optim"] = self.prior_opt.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        for name, m in self._modules().items():
            m.load_state_dict(state[name])
        self.ac.load_optim_state(state["ac_optim"])
        self.gen.set_state(state["gen"])
        self.rng.bit_generator.state = state["rng"]
        self.num_updates = state["num_updates"]
        self._plan_sums, self._plan_count = dict(state["plan_sums"]), state["plan_count"]
        self._last = dict(state["last"])
        if self.generative:
            self.model_opt.load_state_dict(state["model_optim"])
        if self.prior_opt is not None:
            self.prior_opt.load_state_dict(state["prior_optim"])


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

