"""The baselines' own contracts: PlaNet's CEM and schedule, Dreamer's lambda-returns and dynamics
gradients, sb3-sac's mapping onto Stable-Baselines3, and exact resume for each.

(Every registered agent also trains and evaluates at a tiny size in ``tests/test_train.py``.)
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from avem.agents import registry
from avem.agents.dreamer import DreamerAgent, DreamerConfig, lambda_return
from avem.agents.planet import PlaNetAgent, PlaNetConfig
from avem.agents.sb3_sac import SB3SACAgent, SB3SACConfig
from avem.planning.cem import cem_plan
from avem.train import loop
from avem.train.config import resolve
from avem.train.replay import ReplayBuffer
from avem.train.schedule import UpdateSchedule
from tests.conftest import TINY_RUN, Crash, crash_after_checkpoint

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def _tiny(name: str, **kw):
    """The registered agent ``name``'s config at its tiny preset, then ``kw``."""
    spec = registry.get(name)
    return spec.make_config({**spec.tiny(), **kw})


def _buffer(episodes: int = 2, length: int = 20, obs_dim: int = 3, seed: int = 0) -> ReplayBuffer:
    rng, buf = np.random.default_rng(seed), ReplayBuffer((obs_dim,), 1)
    for _ in range(episodes):
        buf.add(rng.normal(size=obs_dim), None, 0.0, True, False)
        for _ in range(length):
            buf.add(rng.normal(size=obs_dim), rng.uniform(-1, 1, 1), rng.uniform(), False, False)
    return buf


# ---- PlaNet's CEM --------------------------------------------------------------------------
class _QuadraticModel:
    """Stands in for the RSSM: reward_t = -(a_t - target_t)^2, whatever the state."""

    def __init__(self, target: torch.Tensor):
        self.target = target

    def imagine(self, start, actions, horizon, gen):
        return {"reward": -(actions - self.target).pow(2).sum(-1)}


def test_cem_converges_to_the_best_sequence_and_clips_to_the_box():
    target = torch.tensor([[0.5], [-0.3], [1.7]])  # the last one lies outside the box
    gen = torch.Generator().manual_seed(0)
    res = cem_plan(_QuadraticModel(target), {"deter": torch.zeros(1, 2)}, 1, 3, 500, 8, 50, 1.0, gen)
    assert res.mean.shape == (3, 1) and res.std.shape == (3, 1)
    assert torch.allclose(res.mean[:2], target[:2], atol=0.02)
    assert res.mean[2, 0] > 0.98  # candidates are clipped: the best feasible action is the bound
    assert (res.std < 0.05).all() and res.elite_return <= 0


def test_cem_refits_to_the_top_k_only():
    """With one iteration and top_k = 1 the belief mean IS the best candidate."""
    gen = torch.Generator().manual_seed(1)
    target = torch.tensor([[0.2]])
    res = cem_plan(_QuadraticModel(target), {"deter": torch.zeros(1, 2)}, 1, 1, 64, 1, 1, 1.0, gen)
    gen = torch.Generator().manual_seed(1)
    cands = (torch.randn((64, 1, 1), generator=gen)).clamp(-1, 1)
    best = cands[(-(cands - target).pow(2).sum((-1, -2))).argmax()]
    assert torch.allclose(res.mean, best) and torch.allclose(res.std, torch.full_like(res.std, 1e-3))


def test_planet_config_paper_values_and_validation():
    cfg = PlaNetConfig()
    m, plan = cfg.rssm, cfg.planner
    assert (m.kl_balance, m.model_lr, cfg.model_eps, m.model_grad_clip) == (0.5, 1e-3, 1e-4, 1000.0)
    # the shared vector-observation likelihood; the paper's pixel form (free nats 3, unit std) is a --set away
    assert (m.free_nats, m.obs_scale, m.obs_std) == (0.0, "running", 0.1)
    assert registry.get("planet").make_config({"free_nats": 3.0, "obs_scale": "fixed", "obs_std": 1.0}).rssm.obs_std == 1.0
    assert (cfg.batch_size, cfg.seq_len, cfg.updates_per_episode, plan.plan_horizon, cfg.explore_noise) == (50, 50, 100, 12, 0.3)
    assert plan.plan_top_k * 10 == plan.plan_candidates  # top-k kept at the paper's 10%
    with pytest.raises(ValueError, match="plan_top_k"):
        registry.get("planet").make_config({"plan_candidates": 10, "plan_top_k": 20})


def test_planet_updates_once_per_episode_and_evaluates_with_the_cem_mean():
    cfg = _tiny("planet")
    assert UpdateSchedule.of(cfg) == UpdateSchedule(per_step=0.0, per_episode=cfg.updates_per_episode)
    agent, buf = PlaNetAgent(OBS, ACT, cfg, 0), _buffer()
    metrics = agent.update(buf)
    assert agent.num_updates == 1 and {"cll", "kl_z", "elbo"} <= set(metrics) and "plan_return" not in metrics

    obs = np.ones(3, np.float32)
    g = agent.gen.get_state()
    action, state, _ = agent.act(obs, None, explore=False)
    agent.gen.set_state(g)
    with torch.no_grad():
        latent, _ = agent.model.obs_step(agent.model.initial(1), torch.zeros(1, 1),
                                         agent.model.embed(torch.from_numpy(obs)[None]), torch.tensor([True]),
                                         agent.gen, sample=False)
        p = cfg.planner
        plan = cem_plan(agent.model, latent, 1, p.plan_horizon, p.plan_candidates, p.plan_iterations,
                        p.plan_top_k, p.plan_discount, agent.gen)
    assert np.allclose(action, plan.mean[0].numpy())
    assert agent.act(obs, None, explore=False)[2] == {}  # evaluation: no planner statistics
    a2, _, extras = agent.act(obs, state, explore=True)
    assert a2.shape == (1,) and -1 <= a2[0] <= 1
    assert set(extras) == {"plan_return"} and np.isfinite(extras["plan_return"])  # the loop logs its episode mean


# ---- Dreamer ---------------------------------------------------------------------------------
def test_lambda_return_hand_computed():
    reward, value, boot = torch.tensor([[1.0, 2.0]]), torch.tensor([[10.0, 20.0]]), torch.tensor([30.0])
    # lambda = 0.5, gamma = 0.5: R_1 = 2 + .5(.5*30 + .5*30) = 17; R_0 = 1 + .5(.5*20 + .5*17) = 10.25
    assert torch.allclose(lambda_return(reward, value, boot, 0.5, 0.5), torch.tensor([[10.25, 17.0]]))
    # lambda = 1: Monte Carlo with bootstrap; lambda = 0: one-step TD targets
    assert torch.allclose(lambda_return(reward, value, boot, 0.5, 1.0), torch.tensor([[9.5, 17.0]]))
    assert torch.allclose(lambda_return(reward, value, boot, 0.5, 0.0), torch.tensor([[11.0, 17.0]]))


def test_dreamer_actor_learns_through_the_dynamics_only():
    cfg = _tiny("dreamer")
    agent = DreamerAgent(OBS, ACT, cfg, 0)
    start = {k: v.expand(5, -1).clone() for k, v in agent.model.initial(1).items()}
    start["stoch"] = torch.randn(5, cfg.rssm.stoch)
    loss, imag = agent.behaviour_losses(start)
    h = cfg.behaviour.horizon
    assert imag["returns"].shape == (5, h - 1) and imag["feat"].shape == (5, h, agent.model.feat_dim)
    loss.backward()
    # the actor sees DETACHED features, so its gradient can only come through the actions fed to the model
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.actor.parameters())
    assert all(p.grad is None for p in agent.model.parameters()) and all(p.grad is None for p in agent.value.parameters())
    assert all(p.requires_grad for p in agent.model.parameters())  # unfrozen again


def test_dreamer_imagines_from_a_subset_when_asked():
    cfg = _tiny("dreamer", imagine_starts=5)
    agent, seen = DreamerAgent(OBS, ACT, cfg, 0), []
    original = agent.behaviour_losses
    agent.behaviour_losses = lambda start: seen.append(start["deter"].shape[0]) or original(start)
    agent.update(_buffer())
    assert seen == [5]  # of batch_size x seq_len = 32 posterior states


@pytest.mark.parametrize("cls, name", [(PlaNetAgent, "planet"), (DreamerAgent, "dreamer")])
def test_latent_hook_gives_the_probe_the_filtering_features(cls, name):
    from avem.probe import latent_features
    agent = cls(OBS, ACT, _tiny(name), 0)
    _, state, _ = agent.act(np.ones(3, np.float32), None, explore=False)
    g = agent.gen.get_state()
    z = latent_features(agent, state)
    assert z.shape == (agent.cfg.rssm.deter + agent.cfg.rssm.stoch,) and torch.equal(agent.gen.get_state(), g)
    assert np.allclose(z, agent.model.feat(state["latent"])[0].numpy())


def test_dreamer_config_paper_values():
    cfg = DreamerConfig()
    m, b = cfg.rssm, cfg.behaviour
    assert (b.horizon, b.gamma, b.lambda_, b.actor_lr, b.value_lr, m.model_lr) == (15, 0.99, 0.95, 8e-5, 8e-5, 6e-4)
    assert (m.kl_balance, b.units, b.actor_layers, b.value_layers, m.model_grad_clip) == (0.5, 400, 4, 3, 100.0)
    assert (m.free_nats, m.obs_scale, m.obs_std) == (0.0, "running", 0.1)  # as planet
    assert (m.deter, m.stoch, cfg.batch_size, cfg.seq_len, cfg.explore_noise) == (200, 30, 50, 50, 0.3)



@pytest.mark.parametrize("cls", [PlaNetConfig, DreamerConfig])
def test_rssm_baselines_keep_the_papers_loss_fields(cls):
    """Every field of the RSSM block is set on the baseline's instance (``paper_rssm``): a change of the
    shared RSSM defaults must not change the baselines silently."""
    cfg, m = cls(), cls().rssm
    assert (m.min_std, m.kl_balance, m.kl_scale, m.reward_std) == (0.1, 0.5, 1.0, 1.0)
    assert (m.free_nats, m.obs_scale, m.obs_std) == (0.0, "running", 0.1)
    assert (m.deter, m.stoch, m.model_hidden, cfg.batch_size, cfg.seq_len) == (200, 30, 200, 50, 50)

# ---- sb3-sac -----------------------------------------------------------------------------------
def test_sb3_sac_uses_our_sac_hyperparameters():
    cfg = SB3SACConfig()
    ac = cfg.actor_critic
    agent = SB3SACAgent(OBS, ACT, cfg, 0)
    m = agent.model
    assert (m.gamma, m.tau, m.batch_size, m.learning_rate) == (ac.gamma, ac.tau, cfg.batch_size, ac.actor_lr)
    assert m.target_entropy == -1.0 and torch.exp(m.log_ent_coef).item() == pytest.approx(ac.init_temperature)
    widths = [l.out_features for l in m.actor.latent_pi if isinstance(l, torch.nn.Linear)]
    assert widths == [ac.hidden] * ac.depth and m.observation_space.shape == (cfg.frame_stack * 3,)
    with pytest.raises(ValueError, match="one learning rate"):
        registry.get("sb3-sac").make_config({"critic_lr": 1e-3})


def test_sb3_sac_copies_every_transition_with_the_frame_stack():
    cfg = _tiny("sb3-sac", frame_stack=2)
    agent = SB3SACAgent(OBS, ACT, cfg, 0)
    buf = _buffer(episodes=2, length=4)
    agent.update(buf)
    rb, d = agent.model.replay_buffer, buf.data
    assert rb.pos == 8  # 2 episodes x 4 transitions, warm-up rows included
    o = d["obs"]
    np.testing.assert_array_equal(rb.observations[0, 0], np.concatenate([o[0], o[0]]))  # padded at the start
    np.testing.assert_array_equal(rb.next_observations[0, 0], np.concatenate([o[0], o[1]]))
    np.testing.assert_array_equal(rb.observations[4, 0], np.concatenate([o[5], o[5]]))  # 2nd episode restarts
    np.testing.assert_array_equal(rb.actions[:4, 0], d["action"][1:5])
    np.testing.assert_array_equal(rb.rewards[:4, 0], d["reward"][1:5])
    agent.update(buf)
    assert rb.pos == 8  # nothing copied twice


def test_sb3_sac_polyak_update_every_target_update_every_updates():
    cfg = _tiny("sb3-sac", target_update_every=2)
    agent, buf = SB3SACAgent(OBS, ACT, cfg, 0), _buffer()
    target = lambda: [p.detach().clone() for p in agent.model.critic_target.parameters()]  # noqa: E731
    before = target()
    agent.update(buf)
    after1 = target()
    agent.update(buf)
    after2 = target()
    assert any(not torch.equal(a, b) for a, b in zip(before, after1))
    assert all(torch.equal(a, b) for a, b in zip(after1, after2))  # the skipped Polyak update leaves it exactly


# ---- exact resume --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sb3-sac", "planet", "dreamer"])
def test_crash_then_resume_matches_uninterrupted_run(name, tmp_path, monkeypatch):
    """A run that dies right after its 3rd checkpoint, restarted, ends with the same eval.csv.

    In-process: the globals (torch's and numpy's RNGs) keep moving after the crash, so anything
    the checkpoint forgets shows up as a different evaluation."""
    run, cfg = resolve(name, "cartpole-swingup-pos", seed=0, steps=4000, sets=TINY_RUN, tiny=True)
    loop.train(run, cfg, tmp_path / "ref")
    crash_after_checkpoint(monkeypatch, 3)
    with pytest.raises(Crash):
        loop.train(run, cfg, tmp_path / "crashed")
    torch.rand(7), np.random.rand(7)  # move the global generators on, as a new process would differ
    loop.train(run, cfg, tmp_path / "crashed")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "crashed" / "eval.csv"), pd.read_csv(tmp_path / "ref" / "eval.csv"))
