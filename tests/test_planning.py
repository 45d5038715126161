"""Planning as inference: the importance-sampling posterior against closed forms; the latent planner."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate

from avem.models import RSSM, RSSMConfig
from avem.nets.distributions import TanhNormal
from avem.planning import (GaussianActionPrior, LatentPlanner, MixtureProposal, UniformActionPrior,
                           infer_action_posterior)

torch.set_num_threads(1)


def test_one_step_gaussian_prior_quadratic_return_matches_the_analytic_posterior():
    """q*(u) ∝ N(u; m, s^2) exp(-c (u - u0)^2 / alpha) is Gaussian with precision 1/s^2 + 2c/alpha."""
    m, s = torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.5])
    c, u0, alpha = torch.tensor([2.0, 1.0]), torch.tensor([1.5, 0.0]), 0.7
    prec = 1 / s**2 + 2 * c / alpha
    post_mean = (m / s**2 + 2 * c * u0 / alpha) / prec
    post_std = prec.rsqrt()

    def return_fn(u):
        return -(c * (u - u0).pow(2)).sum(-1), {}

    q = infer_action_posterior(GaussianActionPrior(m, s), return_fn, alpha, num_samples=4000, iterations=4,
                               gen=torch.Generator().manual_seed(0), min_std=1e-4)
    torch.testing.assert_close(q.mean, post_mean, atol=0.03, rtol=0)
    torch.testing.assert_close(q.std, post_std, atol=0, rtol=0.05)
    assert q.ess > 0.5  # after refinement the proposal is close to q*
    # the expected return under q* is E_q[-c (u-u0)^2] = -c ((mean-u0)^2 + std^2)
    expected = -(c * ((post_mean - u0) ** 2 + post_std**2)).sum().item()
    assert q.expected_return == pytest.approx(expected, abs=0.05)


def test_single_iteration_is_mppi_with_the_prior_as_proposal():
    """With one iteration the weights are exp(R/alpha) on prior samples (no proposal correction)."""
    prior = GaussianActionPrior(torch.zeros(1), torch.ones(1))
    q = infer_action_posterior(prior, lambda u: (-(u - 1).pow(2).sum(-1), {}), 1.0, num_samples=20000,
                               iterations=1, gen=torch.Generator().manual_seed(0))
    # analytic: precision 1 + 2 = 3, mean 2/3
    assert q.mean.item() == pytest.approx(2 / 3, abs=0.02)
    assert q.std.item() == pytest.approx(1 / math.sqrt(3), rel=0.03)


def test_uniform_prior_posterior_matches_quadrature():
    """Uniform prior over the box: q*(a) ∝ exp(R(a)/alpha) on [-1, 1]; compare the fitted moments over u."""
    alpha = 0.5
    R = lambda a: -4.0 * (a - 0.3) ** 2  # noqa: E731
    # moments of u = atanh(a) under q*(a) ∝ exp(R(a)/alpha) on (-1, 1), by quadrature
    z = integrate.quad(lambda a: math.exp(R(a) / alpha), -1, 1)[0]
    mu = integrate.quad(lambda a: math.atanh(a) * math.exp(R(a) / alpha), -1 + 1e-9, 1 - 1e-9)[0] / z
    m2 = integrate.quad(lambda a: math.atanh(a) ** 2 * math.exp(R(a) / alpha), -1 + 1e-9, 1 - 1e-9)[0] / z
    q = infer_action_posterior(UniformActionPrior(1), lambda u: (R(torch.tanh(u[:, 0])), {}), alpha,
                               num_samples=20000, iterations=3, gen=torch.Generator().manual_seed(1), min_std=1e-4)
    assert q.mean.item() == pytest.approx(mu, abs=0.02)
    # q* over u has exponential tails (the tanh Jacobian), which a Gaussian proposal under-samples:
    # the self-normalised estimate of the spread is slightly low, hence the looser tolerance.
    assert q.std.item() == pytest.approx(math.sqrt(m2 - mu**2), rel=0.1)


def test_uniform_prior_over_u():
    prior = UniformActionPrior(1)
    total = integrate.quad(lambda u: math.exp(prior.log_prob(torch.tensor([[u]])).item()), -30, 30, limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-6)
    a = torch.tanh(prior.sample(20000, torch.Generator().manual_seed(0))).numpy()
    assert np.histogram(a, bins=4, range=(-1, 1))[0] == pytest.approx([5000] * 4, rel=0.05)
    # KL(q || U) = -H + log 2 >= 0, and ~0 for a nearly uniform q
    assert prior.kl(torch.tensor([0.0]), torch.tensor([0.3]), torch.Generator().manual_seed(0)).item() > 0.2


def test_gaussian_prior_kl_is_the_tanh_normal_kl():
    """The closed-form KL over u equals a Monte-Carlo KL between the squashed distributions."""
    p = GaussianActionPrior(torch.tensor([0.2]), torch.tensor([0.8]))
    mq, sq = torch.tensor([1.0]), torch.tensor([0.4])
    q_dist, p_dist = TanhNormal(mq.expand(100000, 1), sq.expand(100000, 1)), TanhNormal(p.mean, p.std)
    a, log_q = q_dist.rsample_with_log_prob(torch.Generator().manual_seed(0))
    mc = (log_q - p_dist.log_prob(a)).mean().item()
    assert p.kl(mq, sq).item() == pytest.approx(mc, abs=0.02)


def _tiny_planner(info_gain_samples=0):
    torch.manual_seed(0)
    model = RSSM(3, 1, RSSMConfig(deter=16, stoch=4, model_hidden=16))
    planner = LatentPlanner(model, 1, horizon=3, num_samples=16, iterations=2, min_std=0.1, gamma=0.99,
                            info_gain_samples=info_gain_samples)
    post, _ = model.obs_step(model.initial(1), torch.zeros(1, 1), model.embed(torch.randn(1, 3)),
                             torch.tensor([True]), sample=False)
    return model, planner, post


@pytest.mark.parametrize("learned", [False, True])
@pytest.mark.parametrize("ig", [0, 4])
def test_latent_planner_runs_and_is_deterministic(learned, ig):
    model, planner, post = _tiny_planner(ig)
    prior_fn = (lambda f: TanhNormal(torch.zeros(f.shape[0], 1), torch.ones(f.shape[0], 1))) if learned else None
    value_fn = lambda f, eps: f[:, 0]  # noqa: E731
    q1 = planner.plan(post, prior_fn, value_fn, 0.5, 1.0, torch.Generator().manual_seed(7))
    q2 = planner.plan(post, prior_fn, value_fn, 0.5, 1.0, torch.Generator().manual_seed(7))
    assert q1.mean.shape == (1,) and torch.isfinite(q1.mean).all() and (q1.std >= 0.1).all()
    torch.testing.assert_close(q1.mean, q2.mean)
    assert math.isfinite(q1.expected_return) and 0 < q1.ess <= 1
    assert math.isfinite(q1.extras["info_gain"])
    if ig == 0:
        assert q1.extras["info_gain"] == 0.0


def test_ess_floor_raises_the_temperature_just_enough():
    """``tempered_log_weights``: T = alpha when its ESS meets the floor, else the smallest T that does."""
    from avem.objective import effective_sample_size, normalized_weights
    from avem.planning.importance import tempered_log_weights

    ret = torch.randn(64, generator=torch.Generator().manual_seed(0)) * 5.0
    log_ratio = torch.zeros(64)

    def ess(log_w):
        return float(effective_sample_size(normalized_weights(log_w)))

    log_w, t = tempered_log_weights(log_ratio, ret, 0.07, 0.0)  # off: the plain temperature
    assert t == 0.07 and torch.equal(log_w, ret / 0.07) and ess(log_w) < 0.05
    log_w, t = tempered_log_weights(log_ratio, ret, 0.07, 0.3)
    assert t > 0.07 and ess(log_w) == pytest.approx(0.3, abs=1e-3)
    assert ess(ret / (0.99 * t)) < 0.3  # just enough: a slightly lower temperature misses the floor
    log_w, t = tempered_log_weights(log_ratio, ret, 1e3, 0.3)  # alpha already spreads the weights
    assert t == 1e3 and ess(log_w) > 0.9
    # the temperature is chosen on the returns alone: a degenerate proposal ratio cannot push it to infinity
    skewed = torch.zeros(64)
    skewed[0] = 50.0
    log_w, t2 = tempered_log_weights(skewed, ret, 0.07, 0.3)
    assert t2 == pytest.approx(tempered_log_weights(log_ratio, ret, 0.07, 0.3)[1]) and torch.equal(log_w, skewed + ret / t2)


def test_mixture_proposal_density_and_stratified_draws():
    """log q(u) = log sum_i (n_i / n) p_i(u), checked against the two densities by hand; draws follow the counts."""
    a, b = GaussianActionPrior(torch.tensor([-2.0]), torch.tensor([0.5])), UniformActionPrior(1)
    mix = MixtureProposal([a, b], [3, 1])
    u = torch.tensor([[-2.0], [0.0], [1.5]])
    by_hand = torch.log(0.75 * a.log_prob(u).exp() + 0.25 * b.log_prob(u).exp())
    torch.testing.assert_close(mix.log_prob(u), by_hand)
    draws = MixtureProposal([a, b], [3000, 1000]).sample(4000, torch.Generator().manual_seed(0))
    assert draws[:3000].mean().item() == pytest.approx(-2.0, abs=0.05)  # the first 3000 come from a
    assert draws[3000:].abs().mean().item() > 0.4  # the rest from the uniform (atanh of U[-1, 1])
    with pytest.raises(ValueError, match="draws 4 samples"):
        mix.sample(5, None)


def test_a_policy_proposal_leaves_the_analytic_posterior_unchanged():
    """Drawing the first iteration from a mixture with a badly placed 'policy' still targets p_a exp(R/alpha)."""
    prior = GaussianActionPrior(torch.zeros(1), torch.ones(1))
    ret = lambda u: (-(u - 1).pow(2).sum(-1), {})  # noqa: E731  analytic q*: mean 2/3, std 1/sqrt(3)
    proposal = MixtureProposal([prior, GaussianActionPrior(torch.tensor([3.0]), torch.tensor([0.3]))], [10000, 10000])
    q = infer_action_posterior(prior, ret, 1.0, num_samples=20000, iterations=1,
                               gen=torch.Generator().manual_seed(0), proposal=proposal)
    assert q.mean.item() == pytest.approx(2 / 3, abs=0.02)
    assert q.std.item() == pytest.approx(1 / math.sqrt(3), rel=0.03)
    # without the importance correction the far-off policy draws drag the mean up (to ~0.81)
    u = proposal.sample(20000, torch.Generator().manual_seed(0))
    w = torch.softmax(ret(u)[0], 0)
    assert (w * u[:, 0]).sum().item() > 2 / 3 + 0.1


@pytest.mark.parametrize("learned", [False, True])
def test_common_noise_makes_equal_first_actions_equal_returns(learned):
    """Common random numbers: equal first actions give equal returns; independent roll-outs differ by luck."""
    model, _, post = _tiny_planner(4)
    prior_fn = (lambda f: TanhNormal(torch.zeros(f.shape[0], 1), torch.ones(f.shape[0], 1))) if learned else None
    value_fn = lambda f, eps: f[:, 0] + eps[:, 0]  # noqa: E731
    u = torch.zeros(16, 1)
    returns = {}
    for common in (False, True):
        planner = LatentPlanner(model, 1, horizon=3, num_samples=16, iterations=2, min_std=0.1, gamma=0.99,
                                info_gain_samples=4, common_noise=common)
        returns[common] = planner.rollout_return(post, u, prior_fn, value_fn, 1.0, torch.Generator().manual_seed(3))[0]
    assert returns[True].std().item() < 1e-5
    assert returns[False].std().item() > 1e-2
    # and different first actions still give different returns under common noise
    planner = LatentPlanner(model, 1, horizon=3, num_samples=16, iterations=2, min_std=0.1, gamma=0.99,
                            common_noise=True)
    r = planner.rollout_return(post, torch.linspace(-2, 2, 16)[:, None], prior_fn, value_fn, 1.0,
                               torch.Generator().manual_seed(3))[0]
    assert r.std().item() > 1e-4


def test_policy_samples_are_validated():
    model, _, post = _tiny_planner()
    with pytest.raises(ValueError, match="policy_samples must be in"):
        LatentPlanner(model, 1, horizon=3, num_samples=16, iterations=2, min_std=0.1, gamma=0.99, policy_samples=17)
    planner = LatentPlanner(model, 1, horizon=3, num_samples=16, iterations=2, min_std=0.1, gamma=0.99,
                            policy_samples=4)
    with pytest.raises(ValueError, match="needs a policy_fn"):
        planner.plan(post, None, lambda f, eps: f[:, 0], 0.5, 0.0, None)
    pi = lambda f: TanhNormal(torch.full((f.shape[0], 1), 0.5), torch.full((f.shape[0], 1), 0.2))  # noqa: E731
    q = planner.plan(post, None, lambda f, eps: f[:, 0], 0.5, 0.0, torch.Generator().manual_seed(0), policy_fn=pi)
    assert torch.isfinite(q.mean).all() and 0 < q.ess <= 1
