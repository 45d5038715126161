"""The shared world model against known answers: the IW marginal and the imagined information gain
on linear-Gaussian models, the planner's weighting of that gain, the open-loop diagnostics, the
KL-gradient fraction and the running observation scale."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from avem.models import RSSM, RSSMConfig
from avem.models.diagnostics import diagnostic_keys, episode_rows, openloop_errors
from avem.planning import LatentPlanner

torch.set_num_threads(1)

D, S, O = 3, 2, 3  # deter, stoch, obs
W_X = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # x = W_X z + b_x: orthogonal columns
W_R = torch.tensor([[1.0, 0.0]])  # r = W_R z + b_r
B_X, B_R = torch.tensor([0.3, -0.2, 0.1]), torch.tensor([0.5])


def _linear_model(obs_std=0.7, reward_std=0.4) -> RSSM:
    """An RSSM whose decoders are linear in z and ignore h: a linear-Gaussian likelihood."""
    torch.manual_seed(0)
    model = RSSM(O, 1, RSSMConfig(deter=D, stoch=S, model_hidden=8, obs_scale="fixed", obs_std=obs_std,
                                  reward_std=reward_std))
    for name, w, b in (("obs_decoder", W_X, B_X), ("reward_decoder", W_R, B_R)):
        lin = nn.Linear(D + S, w.shape[0])
        with torch.no_grad():
            lin.weight.zero_()
            lin.weight[:, D:] = w
            lin.bias.copy_(b)
        setattr(model, name, lin)
    return model


def _joint(obs_std, reward_std, with_reward=True):
    """(M, m0, noise variances) of y = M z + m0 + noise, y = (x, r) or x alone."""
    if not with_reward:
        return W_X, B_X, torch.full((O,), obs_std ** 2)
    return (torch.cat([W_X, W_R]), torch.cat([B_X, B_R]),
            torch.cat([torch.full((O,), obs_std ** 2), torch.tensor([reward_std ** 2])]))


@pytest.mark.parametrize("with_reward", [True, False])
def test_rssm_iw_marginal_equals_the_linear_gaussian_marginal(with_reward):
    """``RSSM.iw_marginal``: exact for any K when q is the exact posterior; converges to it from the prior."""
    model = _linear_model()
    mu_p, sd_p = torch.tensor([[0.4, -0.3]]), torch.tensor([[0.8, 1.3]])
    x, r = torch.tensor([[1.2, -0.5, 0.4]]), torch.tensor([0.9])
    M, m0, noise = _joint(0.7, 0.4, with_reward)
    y = torch.cat([x[0], r]) if with_reward else x[0]
    cov = M @ torch.diag(sd_p[0] ** 2) @ M.T + torch.diag(noise)
    exact = torch.distributions.MultivariateNormal(M @ mu_p[0] + m0, cov).log_prob(y).item()
    # exact posterior: diagonal because M^T diag(1/noise) M is diagonal
    prec = 1.0 / sd_p[0] ** 2 + (M.pow(2) / noise[:, None]).sum(0)
    mu_q = (mu_p[0] / sd_p[0] ** 2 + M.T @ ((y - m0) / noise)) / prec
    deter = torch.randn(1, D)
    prior = {"mean": mu_p, "std": sd_p}
    post = {"deter": deter, "mean": mu_q[None], "std": prec.rsqrt()[None]}
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(1)
    for k in (1, 7):
        est = model.iw_marginal(post, prior, x, r, mask, k, g, include_reward=with_reward)
        assert est.item() == pytest.approx(exact, abs=1e-4)
    from_prior = model.iw_marginal({"deter": deter, **prior}, prior, x, r, mask, 200_000, g, include_reward=with_reward)
    assert from_prior.item() == pytest.approx(exact, abs=0.02)
    assert model.iw_marginal({"deter": deter, **prior}, prior, x, r, mask, 1, g,
                             include_reward=with_reward).item() != pytest.approx(exact, abs=1e-3)


def test_imagined_information_gain_matches_the_linear_gaussian_mutual_information():
    """The planner's contrastive estimate of I(x; z | h) with K = 1024 against 0.5 log det(I + W S W^T / s^2)."""
    model = _linear_model(obs_std=1.0)
    planner = LatentPlanner(model, 1, horizon=1, num_samples=2, iterations=1, min_std=0.1, gamma=1.0,
                            info_gain_samples=1024, info_gain_reward=False)
    n, sd = 2000, torch.tensor([1.0, 0.5])
    g = torch.Generator().manual_seed(0)
    mean = torch.zeros(n, S)
    s = {"deter": torch.zeros(n, D), "mean": mean, "std": sd.expand(n, S), "stoch": mean + sd * torch.randn(n, S, generator=g)}
    om, rm = model.decode(model.feat(s))
    ig = planner.info_gain(s, om, rm, g)
    exact = 0.5 * torch.logdet(torch.eye(O) + W_X @ torch.diag(sd ** 2) @ W_X.T).item()  # 0.5 log(5 * 1.25)
    assert exact == pytest.approx(0.5 * math.log(6.25))
    assert ig.mean().item() == pytest.approx(exact, abs=0.06)
    assert (ig <= math.log(1024) + 1e-4).all()


def test_posterior_information_gain_is_the_critics_estimator_and_matches_the_mutual_information():
    """``plan_info_gain_estimator='posterior'`` with the exact posterior q(z | x) (the encoder and posterior net set
    to it) gives I(x; z) = 0.5 log det(I + W S W^T / s^2) = 4.63 nats at obs_std 0.1 for any K, as the critic's
    data-side estimate does (``RSSM.loss``); the contrastive estimate cannot exceed log K = 1.39."""
    s2, sd = 0.1 ** 2, torch.tensor([1.0, 0.5])
    model = _linear_model(obs_std=0.1)
    model.cfg = RSSMConfig(**{**model.cfg.__dict__, "min_std": 1e-3})
    prec = 1.0 / sd ** 2 + W_X.pow(2).sum(0) / s2  # diagonal: W_X has orthogonal columns
    enc, post = nn.Linear(O, 8), nn.Linear(D + 8, 2 * S)
    with torch.no_grad():
        enc.weight.zero_(), enc.bias.zero_(), post.weight.zero_()
        enc.weight[:O, :O] = torch.eye(O)
        post.weight[:S, D:D + O] = W_X.T / s2 / prec[:, None]  # mean = W^T (x - b) / s^2 / prec (prior mean 0)
        post.bias[:S] = -(W_X.T @ B_X) / s2 / prec
        post.bias[S:] = torch.log(torch.expm1(prec.rsqrt() - 1e-3))  # softplus(raw) + min_std = prec^-1/2
    model.encoder, model.post_net = enc, post
    n, g = 4000, torch.Generator().manual_seed(0)
    mean = torch.zeros(n, S)
    s = {"deter": torch.zeros(n, D), "mean": mean, "std": sd.expand(n, S), "stoch": mean + sd * torch.randn(n, S, generator=g)}
    om, rm = model.decode(model.feat(s))
    exact = 0.5 * torch.logdet(torch.eye(O) + W_X @ torch.diag(sd ** 2) @ W_X.T / s2).item()
    assert exact == pytest.approx(0.5 * math.log(401 * 26))
    for k in (2, 4):
        planner = LatentPlanner(model, 1, horizon=1, num_samples=2, iterations=1, min_std=0.1, gamma=1.0,
                                info_gain_samples=k, info_gain_reward=False, info_gain_estimator="posterior")
        assert planner.info_gain(s, om, rm, g).mean().item() == pytest.approx(exact, abs=0.1)
    contrastive = LatentPlanner(model, 1, horizon=1, num_samples=2, iterations=1, min_std=0.1, gamma=1.0,
                                info_gain_samples=4, info_gain_reward=False)
    assert contrastive.info_gain(s, om, rm, g).max().item() <= math.log(4) + 1e-4
    with pytest.raises(ValueError, match="info_gain_estimator must be one of"):
        LatentPlanner(model, 1, horizon=1, num_samples=2, iterations=1, min_std=0.1, gamma=1.0, info_gain_estimator="x")


def test_rollout_return_weights_the_information_gain_by_ig_weight():
    """R = sum gamma^tau (r + w IG) + gamma^H V: fails if the gain's sign or scale is wrong."""
    torch.manual_seed(0)
    model = RSSM(3, 1, RSSMConfig(deter=8, stoch=4, model_hidden=8))
    planner = LatentPlanner(model, 1, horizon=3, num_samples=8, iterations=1, min_std=0.1, gamma=0.9,
                            info_gain_samples=4, common_noise=True)
    post, _ = model.obs_step(model.initial(1), torch.zeros(1, 1), model.embed(torch.randn(1, 3)),
                             torch.tensor([True]), sample=False)
    u = torch.linspace(-1, 1, 8)[:, None]
    value = lambda f, eps: torch.full((f.shape[0],), 2.0)  # noqa: E731
    rets = {}
    for w in (0.0, 0.3):
        rets[w] = planner.rollout_return(post, u, None, value, w, torch.Generator().manual_seed(1))
    ret, extras = rets[0.3]
    assert extras["info_gain"].abs().min() > 1e-3  # the term is there to be weighted
    torch.testing.assert_close(ret, extras["reward"] + 0.3 * extras["info_gain"] + 0.9 ** 3 * 2.0)
    torch.testing.assert_close(rets[0.0][0], extras["reward"] + 0.9 ** 3 * 2.0)


def test_agent_weights_the_information_gain_by_alpha_times_beta_ml():
    import gymnasium as gym
    from avem.agents.avem import AVEMAgent
    from avem.agents.avem_config import AVEMConfig
    from avem.config_tree import make

    cfg = make(AVEMConfig, dict(marginal_likelihood=True, planning=True, deter=8, stoch=4, model_hidden=8, hidden=8,
                                plan_samples=4, plan_horizon=1, plan_iterations=1, beta_ml_start=0.5, beta_ml_end=0.5))
    box = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    agent = AVEMAgent(box, gym.spaces.Box(-1.0, 1.0, (1,), np.float32), cfg, seed=0)
    seen, plan = {}, agent.actor.planner.plan

    def spy(*args, **kwargs):
        seen["w"] = args[4]
        return plan(*args, **kwargs)

    agent.actor.planner.plan = spy
    agent.act(np.zeros(3, np.float32), None, explore=True)
    assert seen["w"] == pytest.approx(float(agent.ac.alpha) * 0.5)
    assert float(agent.ac.alpha) != pytest.approx(1.0)  # the test separates alpha * beta from beta


def _episodes(n=2, length=40, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        obs = np.cumsum(rng.normal(size=(length + 1, O)), 0) * 0.1
        out.append(episode_rows(list(obs), list(rng.uniform(-1, 1, (length, 1))), list(rng.normal(size=length))))
    return out


def test_episode_rows_follow_the_replay_convention():
    ep = _episodes(1, 5)[0]
    assert ep["obs"].shape == (6, O) and ep["action"].shape == (6, 1) and ep["reward"].shape == (6,)
    assert ep["is_first"].tolist() == [True] + [False] * 5
    assert ep["reward"][0] == 0.0 and (ep["action"][0] == 0).all()


def test_openloop_errors_index_the_targets_right():
    """A decoder that predicts 0 has error mean(x_{s+h}^2); the baseline is mean((x_s - x_{s+5})^2)."""
    torch.manual_seed(0)
    model = RSSM(O, 1, RSSMConfig(deter=8, stoch=4, model_hidden=8))
    for dec in (model.obs_decoder, model.reward_decoder):
        with torch.no_grad():
            dec[-1].weight.zero_()
            dec[-1].bias.zero_()
    eps = _episodes()
    out = openloop_errors(model, eps, stride=5)
    assert list(out) == diagnostic_keys()
    starts = np.arange(1, 41 - 15, 5)
    x = np.stack([e["obs"] for e in eps])
    r = np.stack([e["reward"] for e in eps])
    for h in (1, 5, 15):
        assert out[f"openloop_obs_err_h{h}"] == pytest.approx(np.mean(x[:, starts + h] ** 2), rel=1e-5)
    assert out["openloop_obs_err_h5_baseline"] == pytest.approx(np.mean((x[:, starts] - x[:, starts + 5]) ** 2), rel=1e-5)
    assert out["openloop_reward_err_h5"] == pytest.approx(np.mean(r[:, starts + 5] ** 2), rel=1e-5)
    assert out["openloop_reward_err_h5_baseline"] == pytest.approx(np.mean((r[:, starts] - r[:, starts + 5]) ** 2),
                                                                   rel=1e-5)
    assert openloop_errors(model, _episodes(1, 10)) == {}  # too short for 15 steps ahead


def test_openloop_errors_draw_no_random_numbers():
    torch.manual_seed(0)
    model = RSSM(O, 1, RSSMConfig(deter=8, stoch=4, model_hidden=8))
    state = torch.get_rng_state()
    a = openloop_errors(model, _episodes())
    assert torch.equal(state, torch.get_rng_state()) and a == openloop_errors(model, _episodes())


def _windows(b=4, length=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    first = torch.zeros(b, length, dtype=torch.bool)
    first[:, 0] = True
    return (torch.randn(b, length, O, generator=g), torch.rand(b, length, 1, generator=g) * 2 - 1,
            torch.randn(b, length, generator=g), first)


@pytest.mark.parametrize("nats, frac", [(0.0, 1.0), (1e6, 0.0)])
def test_kl_grad_frac_says_whether_the_kl_carries_gradient(nats, frac):
    torch.manual_seed(0)
    model = RSSM(O, 1, RSSMConfig(deter=8, stoch=4, model_hidden=8, free_nats=nats))
    out = model.loss(*_windows())
    assert out.metrics["kl_grad_frac"] == frac
    out.total.backward()
    has_grad = model.prior_net[0].weight.grad is not None and model.prior_net[0].weight.grad.abs().sum() > 0
    assert has_grad == (frac == 1.0)  # the transition prior learns only through the KL


def test_running_obs_scale_tracks_each_dimension():
    torch.manual_seed(0)
    model = RSSM(O, 1, RSSMConfig(deter=8, stoch=4, model_hidden=8, obs_scale="running", obs_std=0.1))
    assert torch.equal(model.obs_std(), torch.full((O,), 0.1))  # before any batch
    sd = torch.tensor([2.0, 0.5, 0.0])  # the last dimension is constant: the floor holds
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        model.track_obs_scale(torch.tensor([1.0, -3.0, 0.2]) + sd * torch.randn(64, 8, O, generator=g))
    torch.testing.assert_close(model.obs_std(), 0.1 * torch.tensor([2.0, 0.5, 0.05]), rtol=0.05, atol=0)
    assert "obs_moments" in model.state_dict()
    fixed = RSSM(O, 1, RSSMConfig(deter=8, stoch=4, model_hidden=8, obs_scale="fixed", obs_std=1.0))
    fixed.track_obs_scale(torch.randn(4, O))
    assert fixed.obs_std() == 1.0 and "obs_moments" not in fixed.state_dict()


def test_critic_reward_holds_the_information_gain_the_planner_sums():
    """The soft value bootstraps the planner's roll-out, so the critic is trained on r_t + alpha beta_ml IG_t."""
    import gymnasium as gym
    from avem.agents.avem import AVEMAgent
    from avem.agents.avem_config import AVEMConfig
    from avem.config_tree import make
    from avem.train.replay import ReplayBuffer

    cfg = make(AVEMConfig, dict(marginal_likelihood=True, deter=8, stoch=4, model_hidden=8, hidden=8, batch_size=2,
                                seq_len=6, critic_burn_in=1, beta_ml_start=0.7, beta_ml_end=0.7))
    agent = AVEMAgent(gym.spaces.Box(-1.0, 1.0, (O,), np.float32), gym.spaces.Box(-1.0, 1.0, (1,), np.float32), cfg, 0)
    buffer, rng = ReplayBuffer((O,), 1, 64), np.random.default_rng(0)
    buffer.add(rng.normal(size=O), None, 0.0, True, False)
    for _ in range(20):
        buffer.add(rng.normal(size=O), rng.uniform(-1, 1, 1), float(rng.normal()), False, False)
    seen = {}
    train_step, ac_update = agent.model.train_step, agent.ac.update

    def spy_model(*args, **kwargs):
        seen["model"] = train_step(*args, **kwargs)
        return seen["model"]

    def spy_critic(feat, action, reward, *args, **kwargs):
        seen["reward"] = reward
        return ac_update(feat, action, reward, *args, **kwargs)

    agent.model.train_step, agent.ac.update = spy_model, spy_critic
    alpha = float(agent.ac.alpha)
    agent.update(buffer)
    out = seen["model"][0]
    assert out.info_gain is not None and out.info_gain.abs().sum() > 0
    ig = out.info_gain[:, cfg.critic_burn_in + 1:].reshape(-1)
    r_data = seen["reward"] - alpha * 0.7 * ig
    assert not torch.allclose(seen["reward"], r_data)  # the term is there
    # what remains is each critic row's replay reward
    stored = torch.from_numpy(buffer.data["reward"][1:buffer.size])
    assert all(torch.isclose(stored, v, atol=1e-5).any() for v in r_data)
