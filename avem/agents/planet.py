"""PlaNet (Hafner et al. 2019): an RSSM trained on the ELBO with free nats, and CEM planning in
its latent space. No policy, no value function.

Shared code: the world model is ``avem.models.rssm.RSSM`` (the AVEM family's model) trained by
its own ``RSSM.loss`` (``iw_samples=0``: the ELBO, terms ``cll`` and ``kl_z``); the planner is
``avem.planning.cem`` (PlaNet's CEM over action sequences; the AVEM planner infers only the first
action by importance weights, so it cannot be configured as PlaNet's CEM).

Schedule (paper, Algorithm 1): ``S = 5`` seed episodes of random actions (the loop's
``seed_steps = 5000`` on 1000-step episodes), then alternately ``C = 100`` model updates and one
collected episode. The loop runs ``updates_per_episode`` updates at the first step of each episode
(i.e. once the previous episode is in the buffer; ``avem.train.schedule``) and none on the other
steps, so the update-to-data ratio is the paper's whatever the action repeat. The only shift from the paper: the first action of an episode is
planned before, not after, that round of updates.

Acting: filter the observation (``RSSM.obs_step``), plan with CEM from the filtering state,
execute the first action of the mean sequence; training episodes add ``N(0, 0.3^2)`` noise
(clipped to [-1, 1]); evaluation (``explore=False``) returns the CEM mean without noise and
filters with the posterior mean.

Deviations from the paper (each a config field; nothing else differs in kind):
- CEM is scaled down for CPU: 300 candidates, 5 iterations, top-30 instead of 1000 / 10 / top-100
  (horizon 12 kept): 6.7x fewer imagined roll-outs per decision, so a 100k-step cartpole run (12.5k
  agent steps plus evaluation episodes, 125 decisions each) is several times shorter on one core
  (``tests/benchmarks/bench_baselines.py`` prints the decision rate; measured rates and run times:
  ``results/benchmarks/bench_baselines.md``); ``--set plan_candidates=1000 plan_iterations=10 plan_top_k=100``
  restores the paper's planner;
- vector observations (the shared RSSM has MLP encoder/decoder, no pixel ConvNets yet), so
  ``cartpole-swingup-pos`` (positions only: velocities must be inferred, as from pixels) stands
  in for the paper's pixels;
- the shared RSSM uses ELU layers (PlaNet: ReLU) and a one-layer MLP encoder;
- the vector-observation likelihood of the shared RSSM: no free nats, observation std 0.1 x each
  dimension's running std (``RSSMConfig.obs_scale``); the paper's unit std with 3 free nats is a
  nearly flat likelihood on vector observations, under which the clamp cut the KL gradient in most
  updates. ``--set free_nats=3 obs_scale=fixed obs_std=1`` restores the paper's form.
- Two details of the official code that the paper does not state are NOT reproduced by default:
  its reward loss weight of 10 (``reward_std = 10 ** -0.5`` reproduces it exactly) and a linear
  learning-rate warm-up over the first 10k updates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from avem.agents.base import obs_dim
from avem.agents.registry import register
from avem.models.rssm import RSSM, RSSMConfig
from avem.planning.cem import cem_plan
from avem.train.replay import ReplayBuffer


@dataclass(frozen=True)
class PlaNetConfig(RSSMConfig):
    """PlaNet: RSSM fields (paper values where they differ from the shared defaults), training, CEM."""

    # ---- the model's sizes, loss and optimiser, as in the paper (pinned here, so a change of the
    # shared RSSM defaults for the AVEM family never changes this baseline silently) ----------
    deter: int = 200
    """Size of the deterministic GRU state h_t (paper: 200)."""
    stoch: int = 30
    """Size of the stochastic Gaussian latent z_t (paper: 30)."""
    model_hidden: int = 200
    """Width of the model's hidden layers (paper: 200)."""
    min_std: float = 0.1
    """Lower bound of the prior/posterior standard deviations (paper's code: 0.1)."""
    free_nats: float = 0.0
    """Free nats on the batch-mean KL(q(z)||p(z)) (paper, on pixels: 3). 0 with the vector-observation likelihood below, the shared RSSM's default (``avem.models.rssm.RSSMConfig``): at 3 the clamp held in most updates on vector observations and the transition prior got no gradient."""
    kl_balance: float = 0.5
    """0.5 = the plain ELBO gradient (PlaNet has no KL balancing)."""
    model_lr: float = 1e-3
    """Adam learning rate of the model (paper: 1e-3)."""
    model_eps: float = 1e-4
    """Adam epsilon (paper: 1e-4)."""
    model_grad_clip: float = 1000.0
    """Gradient-norm clip (paper: 1000)."""
    obs_std: float = 0.1
    """Observation likelihood std, in units of each dimension's running std (``obs_scale``); the paper's form on pixels is ``obs_scale=fixed obs_std=1 free_nats=3``, a nearly flat likelihood on vector observations."""
    obs_scale: str = "running"
    """'running': obs_std x each dimension's running std (the shared RSSM's vector-observation default); 'fixed': obs_std in the observation's units (the paper's form)."""
    reward_std: float = 1.0
    """Std of the Gaussian reward likelihood (paper: unit variance; the official code's reward loss weight 10
    is reward_std = 10 ** -0.5)."""
    kl_scale: float = 1.0
    """Scale of the KL term (paper: 1, the ELBO)."""

    # ---- training schedule -------------------------------------------------------------
    batch_size: int = 50
    """Sequence chunks per update (paper: B = 50)."""
    seq_len: int = 50
    """Rows per chunk (paper: L = 50)."""
    updates_per_episode: int = 100
    """Model updates per collected episode (paper: collect interval C = 100), run at the episode's first step."""

    # ---- CEM planning ----------------------------------------------------------------------
    plan_horizon: int = 12
    """Planning horizon in agent steps (paper: H = 12)."""
    plan_candidates: int = 300
    """Action sequences per CEM iteration (paper: J = 1000; scaled down for CPU, see the module doc)."""
    plan_iterations: int = 5
    """CEM iterations per decision (paper: I = 10; scaled down for CPU)."""
    plan_top_k: int = 30
    """Elite sequences the belief is refitted to (paper: K = 100; kept at 10% of the candidates)."""
    plan_discount: float = 0.99
    """Discount of the predicted rewards within the horizon (official code: 0.99; the paper writes a plain sum)."""
    explore_noise: float = 0.3
    """Std of the Gaussian noise added to the planned action in training episodes (paper: 0.3)."""

    tiny_overrides: ClassVar[dict] = {
        "deter": 16, "stoch": 4, "model_hidden": 16, "batch_size": 4, "seq_len": 8, "updates_per_episode": 3,
        "plan_horizon": 3, "plan_candidates": 16, "plan_iterations": 2, "plan_top_k": 4}
    """Small sizes for smoke tests (not a field; see tests/test_train.py)."""

    def validate(self) -> None:
        checks = [
            (self.batch_size >= 1 and self.seq_len >= 2, "batch_size must be >= 1 and seq_len >= 2"),
            (self.updates_per_episode >= 0, f"updates_per_episode must be >= 0, got {self.updates_per_episode}"),
            (self.plan_horizon >= 1 and self.plan_iterations >= 1, "plan_horizon and plan_iterations must be >= 1"),
            (1 <= self.plan_top_k <= self.plan_candidates,
             f"need 1 <= plan_top_k <= plan_candidates, got {self.plan_top_k}, {self.plan_candidates}"),
            (0.0 < self.plan_discount <= 1.0, f"plan_discount must be in (0, 1], got {self.plan_discount}"),
            (self.explore_noise >= 0, f"explore_noise must be >= 0, got {self.explore_noise}"),
            (self.model_eps > 0, f"model_eps must be > 0, got {self.model_eps}"),
            *self.model_checks(),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)


class PlaNetAgent:
    """``obs: (obs_dim,)`` -> filtering state ``[h, z]`` -> CEM over ``(H, act_dim)`` -> first action."""

    def __init__(self, obs_space, act_space, cfg: PlaNetConfig, seed: int):
        cfg.validate()
        if len(obs_space.shape) != 1:
            raise ValueError(f"planet takes flat vector observations, got shape {obs_space.shape} "
                             "(the shared RSSM has no pixel encoder yet)")
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim(obs_space), int(act_space.shape[0])
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):  # initialisation depends on the seed only
            torch.manual_seed(seed)
            self.model = RSSM(self.obs_dim, self.act_dim, cfg)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.model_lr, eps=cfg.model_eps)
        self.num_updates = 0
        self._plan_returns: list[float] = []

    def initial_state(self):
        return None

    def latent(self, state) -> np.ndarray:
        """Probe hook (``avem.probe``): the filtering features ``[h_t, z_t]`` after ``act``, ``(deter + stoch,)``."""
        return self.model.feat(state["latent"])[0].detach().numpy()

    @torch.no_grad()
    def act(self, obs: np.ndarray, state, explore: bool):
        """``state``: ``{"latent": filtering state (1, .), "action": a_{t-1} (1, A)}``; None at an episode start."""
        cfg = self.cfg
        latent = self.model.filter_obs(obs, state, self.gen, sample=explore)
        plan = cem_plan(self.model, latent, self.act_dim, cfg.plan_horizon, cfg.plan_candidates,
                        cfg.plan_iterations, cfg.plan_top_k, cfg.plan_discount, self.gen)
        action = plan.mean[0:1]
        if explore:
            self._plan_returns.append(plan.elite_return)
            noise = cfg.explore_noise * torch.randn(action.shape, generator=self.gen)
            action = (action + noise).clamp(-1.0, 1.0)
        return action[0].numpy().astype(np.float32), {"latent": latent, "action": action}, {}

    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        """One model update; the first after acting also reports ``plan_return``, the mean CEM elite return since."""
        cfg = self.cfg
        raw = {k: torch.from_numpy(v) for k, v in buffer.sample(self.rng, cfg.batch_size, cfg.seq_len).items()}
        out, grad_norm = self.model.train_step(self.opt, raw, self.gen)
        self.num_updates += 1
        metrics = {**out.metrics, "model_grad_norm": float(grad_norm)}
        if self._plan_returns:
            metrics["plan_return"] = float(np.mean(self._plan_returns))
            self._plan_returns = []
        return metrics

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "gen": self.gen.get_state(),
                "rng": self.rng.bit_generator.state, "num_updates": self.num_updates,
                "plan_returns": list(self._plan_returns)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        self.rng.bit_generator.state = state["rng"]
        self.num_updates = state["num_updates"]
        self._plan_returns = list(state["plan_returns"])


register("planet", PlaNetAgent, PlaNetConfig,
         "PlaNet: RSSM on the ELBO (free nats 3) + CEM planning (H=12, CPU-scaled 300/5/top-30); no policy or value")
