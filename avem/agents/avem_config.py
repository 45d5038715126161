"""The AVEM agent family's configuration: four switches, the training settings, and one block per part.

Every registered variant (``avem.agents.avem``) uses ``AVEMConfig``; a variant sets only the four
switches, so ablations compare like with like. The switches choose the blocks an agent holds (and
reads): ``actor_critic`` (always: the soft actor-critic), ``rssm`` (generative) or ``encoder``
(discriminative), ``ml`` (marginal_likelihood), ``prior`` (learned action prior), ``planner``
(planning). Defaults: every switch off (a generative ELBO agent, uniform action prior, amortised
policy: the SLAC-like corner), so adding a switch never changes an existing result.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from avem.checks import at_least, blocks, fields, non_negative, one_of, optional, positive, require, within
from avem.models.recurrent import EncoderConfig
from avem.models.rssm import RSSMConfig
from avem.nets.actor_critic import ActorCriticConfig
from avem.planning.latent import IG_ESTIMATORS
from avem.variants import ACTION_PRIORS, MODELS


@dataclass(frozen=True)
class MarginalLikelihoodConfig:
    """The one-step marginal-likelihood term (block ``ml``; ``marginal_likelihood=True``)."""

    ml_reward: bool = False
    """Whether r_t is inside the marginal likelihood (and the planner's information gain). True = the paper's literal -log p(x_t, r_t | past): at beta_ml=1 the model loss is then only the IWAE-ELBO gap KL(q(z)||p(z|x,r,past)), which pays for no prediction at all (on cartpole-swingup-pos the reward log-likelihood fell and the returns dropped to the random level: results/benchmarks/bench_avem.md). False (default) = -log p(x_t | past): at beta_ml=1 the model loss is -log p(r_t|z) + KL(q(z)||p(z|x,past)), so the model keeps what predicts reward and is not paid for modelling observations, the paper's stated intent ("retain only task-relevant information")."""
    iw_samples: int = 4
    """K, importance samples of the one-step predictive marginal likelihood estimate."""
    beta_ml_start: float = 0.01
    """Coefficient of the marginal-likelihood term at the first update."""
    beta_ml_end: float = 1.0
    """Coefficient after annealing: 1.0, the paper's objective (Bowman-style annealing from beta_ml_start)."""
    beta_ml_anneal_steps: int = 5_000
    """Updates over which beta_ml rises linearly from beta_ml_start to beta_ml_end."""
    control_info_gain: bool = True
    """Whether the information gain is in the control objective: the planner's return and the critic's reward, weighted alpha * beta_ml (the bound). False: the model keeps the marginal-likelihood term and control drops the information gain, so an agent and its False twin differ only by the information gain's effect on acting."""

    tiny: ClassVar[dict] = {"iw_samples": 2}
    """The ``tiny`` preset of this block (not a field; ``avem.config_tree``)."""

    def checks(self) -> list[tuple[bool, str]]:
        return fields(self, iw_samples=at_least(1), beta_ml_start=non_negative, beta_ml_end=non_negative,
                      beta_ml_anneal_steps=non_negative)


@dataclass(frozen=True)
class LearnedPriorConfig:
    """The learned action prior p_a(a|z) (block ``prior``; ``action_prior='learned'``)."""

    prior_lr: float = 3e-4
    """Adam learning rate of p_a(a|z) (consolidation of the planned posteriors)."""
    noplan_prior_lr_scale: float = 0.1
    """Without planning the prior learns at prior_lr * this: a slower-moving prior, so KL(q||p_a) is not trivially 0."""
    prior_init_std: float = 1.0
    """Initial pre-squash standard deviation of p_a (broad, so the first proposals cover the box)."""
    target_kl: float | None = None
    """Learned prior: alpha is tuned so KL(q||p_a) tracks this (nats per step). None = the KL a uniform-prior agent settles at, d log 2 - target_entropy (= 1.69 d with the default entropy target), so both priors get the same KL budget. Uniform prior: alpha tracks the entropy target, the same rule since KL(q||U) = -H + d log 2."""

    def checks(self) -> list[tuple[bool, str]]:
        return fields(self, prior_lr=positive, noplan_prior_lr_scale=positive, prior_init_std=positive,
                      target_kl=optional(positive))


@dataclass(frozen=True)
class PlannerConfig:
    """The importance-sampling planner in the model (block ``planner``; ``planning=True``)."""

    plan_horizon: int = 5
    """Imagined steps per candidate before the soft value bootstrap."""
    plan_samples: int = 64
    """Candidate first actions per iteration."""
    plan_iterations: int = 3
    """Importance-sampling iterations (the first draws from the action prior)."""
    plan_min_std: float = 0.1
    """Floor on the planned posterior's pre-squash standard deviation."""
    plan_temperature: float | None = None
    """Temperature of q* ∝ p_a exp(R / T); None = the learned alpha (the bound's own temperature)."""
    plan_min_ess: float = 0.1
    """Floor on the planner's effective sample size (fraction of plan_samples): where the temperature gives fewer, it is raised until the floor is met. Each candidate's return is one stochastic roll-out; at the bound's alpha the weights were degenerate (one candidate carried all the weight: results/benchmarks/bench_avem.md), picking the luckiest roll-out noise. 0 = always the plain temperature."""
    plan_common_noise: bool = True
    """Candidates of one planning iteration share the roll-out's random numbers (latent noise, later actions, value sample, imagined observations): common random numbers, so returns differ by the first action and not by roll-out luck (with independent roll-outs the weights followed the noise and were degenerate at alpha). False = independent roll-outs, the planner of the earlier results in results/benchmarks/bench_avem.md."""
    plan_policy_fraction: float = 0.25
    """Fraction of the first iteration's candidates (rounded; 16 of 64) drawn from the amortised policy q(a|z) instead of the action prior (iterative amortised inference: the policy proposes, planning refines; TD-MPC mixes policy samples the same way). The importance weights divide by the mixture, so the target q* ∝ p_a exp(R/alpha) is unchanged. 0 = proposals from the prior only, the planner of the earlier results in results/benchmarks/bench_avem.md."""
    plan_info_gain_samples: int = 4
    """K of the imagined information-gain estimate (used only with marginal_likelihood=True); at least 2, as one sample has no marginal to contrast."""
    plan_info_gain_estimator: str = "contrastive"
    """How the imagined gain estimates log p(x | h) (``avem.planning.latent.IG_ESTIMATORS``): 'contrastive' (the imagined z against K-1 prior draws; at most log K, and 7-20x below the critic's data-side gain per step in the reference runs: results/benchmarks/model_based.md) or 'posterior' (the data side's estimator on the imagined x: the quantity the critic's reward holds, so the roll-out and the soft value at its horizon sum the same term). Default 'contrastive': the reference runs used it."""

    tiny: ClassVar[dict] = {"plan_samples": 16, "plan_iterations": 2, "plan_horizon": 3, "plan_info_gain_samples": 2}
    """The ``tiny`` preset of this block (not a field; ``avem.config_tree``)."""

    def checks(self) -> list[tuple[bool, str]]:
        return fields(self, plan_horizon=at_least(1), plan_samples=at_least(2), plan_iterations=at_least(1),
                      plan_min_std=positive, plan_temperature=optional(positive), plan_policy_fraction=within(0, 1),
                      plan_min_ess=within(0, 1, "[)"), plan_info_gain_samples=at_least(2),
                      plan_info_gain_estimator=one_of(IG_ESTIMATORS))


@dataclass(frozen=True)
class AVEMConfig:
    """AVEM agent: the four switches, the training settings, then the blocks the switches ask for."""

    # ---- the four switches --------------------------------------------------------------
    model: str = "generative"
    """'generative' (RSSM with likelihood of x and r) or 'discriminative' (GRU history encoder, no likelihood)."""
    marginal_likelihood: bool = False
    """Add -beta_ml * log p(x_t | past) to model learning (with ``ml.ml_reward``: of (x_t, r_t)) and alpha * beta_ml * the information gain to the critic's reward and the planner's roll-outs (generative only)."""
    action_prior: str = "uniform"
    """'uniform' (max-entropy: KL(q||U) = -H(q) + d log 2) or 'learned' (network p_a(a|z) trained by KL(q||p_a))."""
    planning: bool = False
    """q(a_t) inferred by importance-sampling planning in the model (generative only); off: amortised policy q(a|z)."""

    # ---- training -------------------------------------------------------------------------
    batch_size: int = 16
    """Replay windows per update."""
    seq_len: int = 32
    """Rows per replay window (the model is filtered over the window from a zero state)."""
    critic_burn_in: int = 4
    """First rows of each window used only to warm up the recurrent state, not as critic/actor/prior samples."""
    updates_per_step: float = 1.0
    """Gradient updates per agent step (fractional values accumulate: 0.5 = one update every other step)."""

    # ---- blocks (absent where the switches do not read them) -------------------------------
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    """The soft actor-critic every variant trains (critic, amortised policy, temperature)."""
    rssm: RSSMConfig | None = None
    """The world model (``model='generative'``)."""
    encoder: EncoderConfig | None = None
    """The GRU history encoder (``model='discriminative'``; trained through the critic at ``critic_lr``)."""
    ml: MarginalLikelihoodConfig | None = None
    """The marginal-likelihood term (``marginal_likelihood=True``)."""
    prior: LearnedPriorConfig | None = None
    """The learned action prior (``action_prior='learned'``)."""
    planner: PlannerConfig | None = None
    """The planner (``planning=True``)."""

    tiny: ClassVar[dict] = {"batch_size": 8, "seq_len": 16}
    """The ``tiny`` preset of the training settings (not a field); each block has its own (``avem.config_tree``)."""

    def __post_init__(self) -> None:
        """Fill the blocks the switches read with their defaults; refuse a block they do not read."""
        wanted = self.wanted_blocks()
        for name, cls in BLOCKS.items():
            if getattr(self, name) is None and name in wanted:
                object.__setattr__(self, name, cls())
            elif getattr(self, name) is not None and name not in wanted:
                raise ValueError(f"AVEMConfig: block {name!r} is not read with these switches "
                                 f"(model={self.model!r}, marginal_likelihood={self.marginal_likelihood}, "
                                 f"action_prior={self.action_prior!r}, planning={self.planning})")

    def wanted_blocks(self) -> set[str]:
        """The optional blocks the switches read."""
        on = {"rssm": self.model != "discriminative", "encoder": self.model == "discriminative",
              "ml": self.marginal_likelihood, "prior": self.action_prior == "learned", "planner": self.planning}
        return {name for name, read in on.items() if read}

    def validate(self) -> None:
        """Reject invalid switch combinations and values before anything runs."""
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.action_prior not in ACTION_PRIORS:
            raise ValueError(f"action_prior must be one of {ACTION_PRIORS}, got {self.action_prior!r}")
        if self.model == "discriminative":
            bad = [name for name, on in (("planning=True", self.planning),
                                         ("marginal_likelihood=True", self.marginal_likelihood)) if on]
            if bad:
                raise ValueError(f"model='discriminative' conflicts with {' and '.join(bad)}: a discriminative "
                                 "agent has no likelihood model to plan with or to compute a marginal likelihood of; "
                                 "use model='generative' or switch them off")
        checks = [
            *fields(self, batch_size=at_least(1), seq_len=at_least(2), updates_per_step=non_negative),
            (0 <= self.critic_burn_in <= self.seq_len - 2,
             f"critic_burn_in must be in [0, seq_len - 2], got {self.critic_burn_in} (seq_len={self.seq_len})"),
            *blocks(self),
        ]
        if self.ml is not None and self.rssm is not None:
            ml = self.ml
            # The ML term's gradient on q is about -beta_ml * dKL/dq; the KL term gives +2(1 - kl_balance) dKL/dq.
            # If beta_ml exceeds that, q is driven away from p without bound (observed: results/benchmarks/bench_avem.md).
            checks.append((max(ml.beta_ml_start, ml.beta_ml_end) <= 2 * (1 - self.rssm.kl_balance),
                           f"marginal_likelihood=True needs beta_ml <= 2 * (1 - kl_balance) or the posterior diverges "
                           f"from the prior; got beta_ml_end={ml.beta_ml_end}, kl_balance={self.rssm.kl_balance} "
                           "(use kl_balance=0.5)"))
        require(checks)


BLOCKS: dict[str, type] = {"rssm": RSSMConfig, "encoder": EncoderConfig, "ml": MarginalLikelihoodConfig,
                           "prior": LearnedPriorConfig, "planner": PlannerConfig}
"""The optional blocks of ``AVEMConfig`` and their classes."""
