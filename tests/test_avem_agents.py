"""The AVEM agent family: registry, switch validation, every variant trains and resumes exactly in the training
loop (``avem.train.loop.train`` on short cartpole runs)."""
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from avem import config_tree
from avem.agents import registry
from avem.agents.avem import AVEMAgent
from avem.agents.avem_config import AVEMConfig, PlannerConfig
from avem.objective import gaussian_kl
from avem.train import checkpoint, loop
from avem.train.config import resolve
from avem.train.replay import ReplayBuffer
from avem.variants import variant_name, variants
from tests.conftest import Crash, crash_after_checkpoint

torch.set_num_threads(1)

TASK = "cartpole-swingup-pos"
RUN = {"steps": 3000, "eval_every": 3000, "action_repeat": 40, "seed_steps": 1000, "eval_episodes": 1,
       "checkpoint_every": 1000}
"""Loop settings of these runs: episodes of 25 agent steps (action repeat 40), one random, then two learning; one
evaluation episode at the start and one at the end; a checkpoint after each episode."""


def _resolve(name: str, **sets):
    """``(run, agent config)`` of ``name`` on ``TASK``: the tiny preset, ``RUN``, a short burn-in and beta_ml
    annealed within these short runs, then ``sets`` (run or agent keys)."""
    anneal = {"beta_ml_anneal_steps": 25} if registry.get(name).defaults["marginal_likelihood"] else {}
    return resolve(name, TASK, sets={**RUN, "critic_burn_in": 2, **anneal, **sets}, tiny=True)


def _tiny(name: str, **overrides) -> AVEMConfig:
    """``name``'s agent config as ``_resolve`` makes it (``overrides``: its ``sets``)."""
    return _resolve(name, **overrides)[1]


class PointMass(gym.Env):
    """1-d point mass; observes its POSITION only (velocity hidden); reward for being near 0.5."""

    def __init__(self, horizon: int = 25):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.horizon = horizon

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.v, self.t = float(self.np_random.uniform(-1, 1)), 0.0, 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.x, 1.0], np.float32)

    def step(self, action):
        self.v = 0.8 * self.v + 0.2 * float(action[0])
        self.x += self.v
        self.t += 1
        reward = float(np.exp(-4 * (self.x - 0.5) ** 2))
        return self._obs(), reward, False, self.t >= self.horizon, {}


@dataclass
class Calls:
    """What AVEM agents' ``act`` and ``update`` returned to the loop, in order."""

    acts: list = field(default_factory=list)
    """``(explore, action, extras)`` per ``act``."""
    updates: list = field(default_factory=list)
    """The metrics of each ``update``."""

    def explore_extras(self) -> list[dict]:
        """The extras of the training steps' ``act`` (``explore=True``)."""
        return [extras for explore, _, extras in self.acts if explore]

    def take(self) -> "Calls":
        """The calls recorded so far, which are then forgotten."""
        taken = Calls(self.acts[:], self.updates[:])
        self.acts.clear()
        self.updates.clear()
        return taken


@pytest.fixture
def calls(monkeypatch) -> Calls:
    """Records what every AVEM agent's ``act`` and ``update`` return during the test (returned unchanged)."""
    calls, act, update = Calls(), AVEMAgent.act, AVEMAgent.update

    def recorded_act(self, obs, state, explore):
        action, state, extras = act(self, obs, state, explore)
        calls.acts.append((explore, action.copy(), extras))
        return action, state, extras

    def recorded_update(self, buffer):
        calls.updates.append(update(self, buffer))
        return calls.updates[-1]

    monkeypatch.setattr(AVEMAgent, "act", recorded_act)
    monkeypatch.setattr(AVEMAgent, "update", recorded_update)
    return calls


@pytest.fixture(scope="module")
def _store(tmp_path_factory):
    """One MLflow store for the module's runs, in memory-backed /dev/shm where there is one (building its database
    on disk waits seconds on fsync)."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else tmp_path_factory.getbasetemp()) as d:
        yield f"sqlite:///{d}/mlflow.db"


@pytest.fixture
def train(_store, monkeypatch, tmp_path):
    """``train(run, cfg, name)``: ``loop.train`` into ``tmp_path / name`` (returned), tracked in one MLflow store
    for the whole module (its database is built once)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _store)

    def run_into(run, cfg, name: str = "run") -> Path:
        loop.train(run, cfg, tmp_path / name)
        return tmp_path / name

    return run_into


def test_the_ten_variants_are_registered_systematically():
    names = [n for n in registry.names() if n.startswith("avem-")]
    expected = {"avem-disc-uniform", "avem-disc-learned"} | {
        f"avem-gen-{ml}-{p}-{pl}" for ml in ("ml", "elbo") for p in ("uniform", "learned") for pl in ("plan", "noplan")}
    assert set(names) == expected and len(names) == 10
    for name, sw in variants().items():
        cfg = registry.get(name).make_config()
        assert (cfg.model, cfg.marginal_likelihood, cfg.action_prior, cfg.planning) == (
            sw["model"], sw["marginal_likelihood"], sw["action_prior"], sw["planning"])
        assert variant_name(**sw) == name
    full = registry.get("avem-gen-ml-learned-plan").make_config()
    assert full.marginal_likelihood and full.planning and full.action_prior == "learned"


def test_variants_share_every_hyperparameter_except_the_switches():
    switches = {"model", "marginal_likelihood", "action_prior", "planning"}
    flat = [config_tree.flatten(config_tree.to_dict(registry.get(n).make_config())) for n in variants()]
    for a in flat[1:]:
        b = flat[0]
        assert {k for k in a.keys() & b.keys() if a[k] != b[k]} <= switches


@pytest.mark.parametrize("name", sorted(variants()))
def test_each_variant_holds_the_blocks_its_switches_read(name):
    cfg = registry.get(name).make_config()
    held = set(config_tree.blocks(cfg))
    assert held == {"actor_critic", *cfg.wanted_blocks()}
    assert ("rssm" in held) == (cfg.model == "generative") and ("encoder" in held) == (cfg.model == "discriminative")
    assert ("planner" in held) == cfg.planning and ("ml" in held) == cfg.marginal_likelihood
    assert ("prior" in held) == (cfg.action_prior == "learned")


@pytest.mark.parametrize("override,words", [
    (dict(planning=True), ["model='discriminative'", "planning=True"]),
    (dict(marginal_likelihood=True), ["model='discriminative'", "marginal_likelihood=True"]),
    (dict(planning=True, marginal_likelihood=True), ["planning=True", "marginal_likelihood=True"]),
])
def test_discriminative_refuses_planning_and_marginal_likelihood(override, words):
    with pytest.raises(ValueError) as err:
        registry.get("avem-disc-uniform").make_config(override)
    for w in words:
        assert w in str(err.value)


def test_bad_switch_values_are_refused():
    with pytest.raises(ValueError, match="action_prior"):
        AVEMConfig(action_prior="gaussian").validate()
    with pytest.raises(ValueError, match="model"):
        AVEMConfig(model="hybrid").validate()
    with pytest.raises(ValueError, match="plan_policy_fraction must be in"):
        registry.get("avem-gen-elbo-uniform-plan").make_config({"plan_policy_fraction": 1.5})
    with pytest.raises(ValueError, match="block 'planner' is not read"):
        AVEMConfig(planning=False, planner=PlannerConfig())


def test_learned_prior_kl_budget_equals_the_uniform_agents():
    env = PointMass()
    agent = AVEMAgent(env.observation_space, env.action_space, _tiny("avem-gen-elbo-learned-noplan"), 0)
    assert agent.prior.target_kl == pytest.approx(math.log(2.0) + 1.0)  # d log 2 - target_entropy, d = 1
    cfg = _tiny("avem-gen-elbo-learned-noplan", target_kl=0.3)
    assert AVEMAgent(env.observation_space, env.action_space, cfg, 0).prior.target_kl == 0.3


def test_defaults_are_the_all_off_corner():
    cfg = AVEMConfig()
    assert (cfg.model, cfg.marginal_likelihood, cfg.action_prior, cfg.planning) == ("generative", False, "uniform", False)


SAC_TERMS = {"reward", "critic_loss", "q_mean", "actor_loss", "entropy", "alpha", "kl_a"}
MODEL_TERMS = {"model_loss", "cll", "cll_obs", "cll_reward", "kl_z", "kl_grad_frac", "elbo"}
ML_TERMS = {"mll", "info_gain", "beta_ml"}
PLAN_STATS = {"plan_return", "plan_kl_a", "plan_ess", "plan_temperature"}


def _check_terms(cfg, calls: Calls, out: Path) -> None:
    """Each part's terms, by the switches: in every update's metrics (the same key set from the first update on)
    or in every training step's extras (the planner's diagnostics); every action in [-1, 1]; the run's metrics
    table holds the episode means of the update metrics and of the scalar extras, finite once learning runs."""
    history, extras = calls.updates, calls.explore_extras()
    keys = set(history[0])
    assert all(set(m) == keys for m in history), "the update metrics' key set changed between updates"
    assert all(math.isfinite(v) for m in history for v in m.values())
    generative, ml = cfg.model == "generative", cfg.marginal_likelihood
    learned, planning = cfg.action_prior == "learned", cfg.planning
    assert SAC_TERMS <= keys
    assert (MODEL_TERMS <= keys) == generative and bool(MODEL_TERMS & keys) == generative
    assert (ML_TERMS <= keys) == ml and bool(ML_TERMS & keys) == ml
    assert ("prior_loss" in keys) == learned and ("consolidation_coverage" in keys) == (learned and planning)
    assert not any(k.startswith("plan_") for k in keys)  # the planner's statistics travel as extras
    stats = PLAN_STATS | ({"plan_info_gain"} if ml else set())
    expected = stats | {"plan_mean", "plan_std"} if planning else set()
    assert extras and all(set(e) == expected for e in extras)
    assert all(math.isfinite(e[k]) and np.ndim(e[k]) == 0 for e in extras for k in stats & set(e))
    assert all(np.all(np.abs(action) <= 1) for _, action, _ in calls.acts)
    logged = pd.read_csv(out / "metrics.csv").iloc[-1]
    columns = [f"train/{k}" for k in keys | (stats if planning else set())]
    assert np.isfinite(logged[columns].to_numpy(float)).all()


@pytest.mark.parametrize("name", sorted(variants()))
def test_every_variant_trains_and_logs_finite_terms(name, train, calls):
    run, cfg = _resolve(name)
    _check_terms(cfg, calls, train(run, cfg))
    metrics = calls.updates[-1]
    if cfg.action_prior == "uniform":
        # uniform prior: the reported KL is the KL itself, -H(q) + d log 2
        assert metrics["kl_a"] == pytest.approx(-metrics["entropy"] + math.log(2.0), abs=1e-5)
    if cfg.marginal_likelihood:
        assert metrics["beta_ml"] == pytest.approx(cfg.ml.beta_ml_end)  # annealed over 25 of its 50 updates
    if cfg.planning and cfg.action_prior == "learned":
        assert metrics["consolidation_coverage"] > 0  # planned posteriors are found in replay


@pytest.mark.parametrize("prior", ["uniform", "learned"])
def test_planner_without_its_options_trains_and_logs_finite_terms(prior, train, calls):
    """Independent roll-outs and prior-only proposals (the behaviour before those options; the defaults have them on)."""
    run, cfg = _resolve(f"avem-gen-ml-{prior}-plan", plan_common_noise=False, plan_policy_fraction=0.0)
    _check_terms(cfg, calls, train(run, cfg))


def test_evaluation_steps_return_no_planner_statistics():
    """``explore=False`` leaves the diagnostics out (the uniform prior's KL would draw from the agent's generator)."""
    env = PointMass()
    name = "avem-gen-elbo-uniform-plan"
    agent = registry.build(name, env.observation_space, env.action_space, _tiny(name), 0)
    obs, _ = env.reset(seed=0)
    assert set(agent.act(obs, None, explore=False)[2]) == {"plan_mean", "plan_std"}


def test_eval_action_is_deterministic():
    env = PointMass()
    name = "avem-gen-ml-learned-plan"
    agent = registry.build(name, env.observation_space, env.action_space, _tiny(name), 0)
    obs, _ = env.reset(seed=0)
    a1, s1, _ = agent.act(obs, None, explore=False)
    # the planner's candidates are random, but with explore=False the action is tanh(planned mean)
    assert a1.shape == (1,) and np.all(np.abs(a1) < 1)


def test_same_seed_same_initialisation_independent_of_global_rng():
    env = PointMass()
    cfg = _tiny("avem-gen-elbo-learned-plan")
    torch.manual_seed(1)
    a = AVEMAgent(env.observation_space, env.action_space, cfg, 3)
    torch.manual_seed(2)
    b = AVEMAgent(env.observation_space, env.action_space, cfg, 3)
    for (k, va), vb in zip(a.state_dict()["modules"]["belief.model"].items(), b.state_dict()["modules"]["belief.model"].values()):
        assert torch.equal(va, vb), k


def _agent_modules(out: Path) -> dict:
    return checkpoint.load(out)["agent"]["modules"]


@pytest.mark.parametrize("name", ["avem-gen-ml-learned-plan", "avem-disc-learned"])
def test_resume_reproduces_an_uninterrupted_run(name, train, calls, monkeypatch):
    """A run killed right after its checkpoint between its two learning episodes and started again acts, updates,
    evaluates and ends as the uninterrupted run. In-process: torch's and numpy's global generators keep moving
    after the crash, so anything the checkpoint forgets shows."""
    run, cfg = _resolve(name, updates_per_step=1.5)
    ref = train(run, cfg, "ref")
    uninterrupted = calls.take()
    crash_after_checkpoint(monkeypatch, 2)  # at step 2000: after the first learning episode
    with pytest.raises(Crash):
        train(run, cfg, "crashed")
    before = calls.take()
    torch.rand(7), np.random.rand(7)
    resumed = train(run, cfg, "crashed")
    after = calls.take()
    assert before.updates and after.updates  # learning on both sides of the checkpoint
    rest = Calls(uninterrupted.acts[len(before.acts):], uninterrupted.updates[len(before.updates):])
    assert [e for e, _, _ in after.acts] == [e for e, _, _ in rest.acts]
    np.testing.assert_array_equal(np.array([a for _, a, _ in after.acts]), np.array([a for _, a, _ in rest.acts]))
    assert after.updates == rest.updates
    pd.testing.assert_frame_equal(pd.read_csv(resumed / "eval.csv"), pd.read_csv(ref / "eval.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(resumed / "metrics.csv").drop(columns="steps_per_second"),
                                  pd.read_csv(ref / "metrics.csv").drop(columns="steps_per_second"))
    ended, resumed_ended = _agent_modules(ref), _agent_modules(resumed)
    for part, params in ended.items():
        for k, v in params.items():
            assert torch.equal(v, resumed_ended[part][k]), (part, k)


def test_pixel_observations_are_refused_clearly():
    space = gym.spaces.Box(0, 255, (3, 64, 64), np.uint8)
    with pytest.raises(ValueError, match="flat vector"):
        AVEMAgent(space, gym.spaces.Box(-1, 1, (1,), np.float32), AVEMConfig(), 0)


def test_consolidation_fits_the_prior_to_the_planned_posteriors_in_replay():
    """The learned prior's planning-side loss is the mean KL(q_plan || p_a) over exactly the critic rows whose
    action was planned (``plan_mean`` / ``plan_std`` extras of row t+1), by hand."""
    env = PointMass()
    cfg = _tiny("avem-gen-elbo-learned-plan")
    agent = registry.build("avem-gen-elbo-learned-plan", env.observation_space, env.action_space, cfg, seed=0)
    buffer = ReplayBuffer(env.observation_space.shape, 1)
    rng = np.random.default_rng(0)
    buffer.add(np.zeros(2, np.float32), None, 0.0, True, False)
    for t in range(40):  # every third action "planned"
        extras = {"plan_mean": np.array([0.1 * t]), "plan_std": np.array([0.5])} if t % 3 == 0 else {}
        buffer.add(rng.normal(size=2).astype(np.float32), np.array([0.0], np.float32), 0.0, False, False, extras)
    raw = buffer.sample(np.random.default_rng(1), cfg.batch_size, cfg.seq_len)
    s = cfg.critic_burn_in
    feat = torch.randn(cfg.batch_size * (cfg.seq_len - 1 - s), agent.feat_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p = agent.prior.net(feat)
    mean = torch.from_numpy(raw["plan_mean"][:, s + 1:].reshape(-1, 1))
    std = torch.from_numpy(raw["plan_std"][:, s + 1:].reshape(-1, 1))
    found = ~torch.isnan(std[:, 0])
    assert 0 < found.sum() < len(found)
    expected = gaussian_kl(mean[found], std[found], p.mean[found], p.std[found]).mean().item()
    out = agent.prior.consolidate(feat, raw, s, agent.ac.actor)
    assert out["consolidation_coverage"] == pytest.approx(found.float().mean().item())
    assert out["prior_loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("control", [True, False])
def test_control_info_gain_switch_drops_the_information_gain_from_control_only(control, monkeypatch):
    """``ml.control_info_gain=False``: the critic's reward is the environment's and the planner's information-gain
    weight is 0, while the model still trains on the marginal likelihood (beta_ml > 0, ``mll`` reported).
    True (the default): the critic's reward is r + alpha * beta_ml * IG, IG from the model's update."""
    name = "avem-gen-ml-learned-plan"
    env = PointMass()
    cfg = _tiny(name, control_info_gain=control)
    agent = registry.build(name, env.observation_space, env.action_space, cfg, seed=0)
    buffer = ReplayBuffer(env.observation_space.shape, 1)
    rng = np.random.default_rng(0)
    buffer.add(np.zeros(2, np.float32), None, 0.0, True, False)
    for _ in range(40):
        buffer.add(rng.normal(size=2).astype(np.float32), rng.uniform(-1, 1, 1).astype(np.float32),
                   float(rng.uniform()), False, False)
    seen, critic_rewards = {}, []
    observe, update = agent.belief.observe, agent.ac.update

    def observed(windows, gen, beta_ml):
        seen["windows"], seen["out"] = windows, observe(windows, gen, beta_ml)
        return seen["out"]

    def critic_update(f_t, a_t, r_t, *args):
        critic_rewards.append(r_t.clone())
        return update(f_t, a_t, r_t, *args)

    monkeypatch.setattr(agent.belief, "observe", observed)
    monkeypatch.setattr(agent.ac, "update", critic_update)
    agent.num_updates = 10  # beta_ml annealed above its start
    weight, beta, alpha = agent.info_gain_weight(), agent.beta_ml(), float(agent.ac.alpha)  # as the update sees them
    metrics = agent.update(buffer)
    s = cfg.critic_burn_in
    env_reward = seen["windows"]["reward"][:, s + 1:].reshape(-1)
    ig = seen["out"].info_gain[:, s + 1:].reshape(-1)
    assert beta > 0 and math.isfinite(metrics["mll"]) and ig.abs().sum() > 0
    if control:
        assert weight == pytest.approx(alpha * beta) and weight > 0
        torch.testing.assert_close(critic_rewards[0], env_reward + weight * ig)
    else:
        assert weight == 0.0
        torch.testing.assert_close(critic_rewards[0], env_reward, rtol=0, atol=0)


def test_posterior_information_gain_estimator_reaches_the_planner_and_trains(train, calls):
    """``planner.plan_info_gain_estimator=posterior`` (default off) is the planner's estimator and trains in the loop."""
    name = "avem-gen-ml-learned-plan"
    run, cfg = _resolve(name, plan_info_gain_estimator="posterior")
    env = PointMass()
    assert registry.build(name, env.observation_space, env.action_space, cfg, 0).actor.planner.ig_estimator == "posterior"
    _check_terms(cfg, calls, train(run, cfg))
