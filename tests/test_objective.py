"""Exact maths of the bound's terms, with hand-computed or closed-form answers."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate

from avem.nets.distributions import TanhNormal
from avem.objective import (
    effective_sample_size,
    free_nats,
    gaussian_kl,
    gaussian_log_prob,
    information_gain,
    iw_log_marginal,
    linear_anneal,
    uniform_box_kl,
    weighted_sum,
)

torch.set_num_threads(1)


def test_gaussian_log_prob_and_kl_match_torch():
    g = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    sq, sp = torch.rand(5, 3, generator=g) + 0.2, torch.rand(5, 3, generator=g) + 0.2
    x = torch.randn(5, 3, generator=g)
    ref_lp = torch.distributions.Normal(mq, sq).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(x, mq, sq), ref_lp)
    ref_kl = torch.distributions.kl_divergence(torch.distributions.Normal(mq, sq),
                                               torch.distributions.Normal(mp, sp)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mq, sq, mp, sp), ref_kl)
    assert torch.all(gaussian_kl(mq, sq, mq, sq).abs() < 1e-6)  # KL(q||q) = 0


# ---- importance-weighted marginal likelihood vs the Kalman filter -----------------------
def _kalman_problem(seed: int = 0, steps: int = 6):
    """A 2-d latent, 3-d observation linear-Gaussian SSM; returns the one-step quantities at the last step."""
    rng = np.random.default_rng(seed)
    A = np.array([[0.9, 0.2], [-0.1, 0.8]])
    Q = np.diag([0.3, 0.2])
    C = rng.normal(size=(3, 2))
    R = np.diag([0.5, 0.4, 0.6])
    z = rng.normal(size=2)
    m, P = np.zeros(2), np.eye(2)  # p(z_1)
    for t in range(steps):
        if t > 0:
            z = A @ z + rng.multivariate_normal(np.zeros(2), Q)
            m, P = A @ m, A @ P @ A.T + Q  # predict: p(z_t | x_<t)
        x = C @ z + rng.multivariate_normal(np.zeros(3), R)
        if t < steps - 1:  # update with x_t
            S = C @ P @ C.T + R
            Kg = P @ C.T @ np.linalg.inv(S)
            m, P = m + Kg @ (x - C @ m), (np.eye(2) - Kg @ C) @ P
    # last step: exact one-step predictive log p(x_t | x_<t) and the exact filtering posterior
    S = C @ P @ C.T + R
    exact = torch.distributions.MultivariateNormal(torch.tensor(C @ m), torch.tensor(S)).log_prob(torch.tensor(x)).item()
    Kg = P @ C.T @ np.linalg.inv(S)
    post_m, post_P = m + Kg @ (x - C @ m), (np.eye(2) - Kg @ C) @ P
    return dict(C=C, R=R, m=m, P=P, x=x, exact=exact, post_m=post_m, post_P=post_P)


def _iw_estimates(prob, k: int, reps: int, seed: int) -> torch.Tensor:
    """``reps`` independent K-sample estimates with a deliberately imperfect diagonal proposal q."""
    g = torch.Generator().manual_seed(seed)
    C, R = torch.tensor(prob["C"]), torch.tensor(prob["R"])
    x = torch.tensor(prob["x"])
    q_mean = torch.tensor(prob["post_m"]) + 0.3
    q_std = torch.tensor(np.sqrt(np.diag(prob["post_P"]))) * 1.5
    z = q_mean + q_std * torch.randn((k, reps, 2), generator=g, dtype=torch.float64)
    prior = torch.distributions.MultivariateNormal(torch.tensor(prob["m"]), torch.tensor(prob["P"]))
    log_lik = gaussian_log_prob(x, z @ C.T, torch.sqrt(torch.diagonal(R)))
    log_w = log_lik + prior.log_prob(z) - gaussian_log_prob(z, q_mean, q_std)
    return iw_log_marginal(log_w)  # (reps,)


def test_iw_marginal_is_below_the_kalman_value_and_converges():
    prob = _kalman_problem()
    exact = prob["exact"]
    gaps = []
    for i, k in enumerate([1, 4, 32, 512]):
        est = _iw_estimates(prob, k, reps=2000, seed=i)
        mean, se = est.mean().item(), est.std().item() / math.sqrt(len(est))
        gaps.append(exact - mean)
        assert mean < exact + 3 * se, f"K={k}: IW estimate {mean:.4f} above the exact {exact:.4f} in expectation"
    assert gaps[0] > 0.05, f"the K=1 (ELBO) gap should be clearly positive with this proposal, got {gaps[0]}"
    assert all(a > b for a, b in zip(gaps, gaps[1:])), f"gap must shrink with K: {gaps}"
    assert gaps[-1] < 0.01, f"K=512 should be within 0.01 nats of the exact value, gap {gaps[-1]}"


def test_iw_marginal_exact_with_the_true_posterior():
    """With q = the exact posterior every weight equals p(x|past): the estimate is exact for any K."""
    prob = _kalman_problem(seed=3)
    g = torch.Generator().manual_seed(0)
    C, R, x = torch.tensor(prob["C"]), torch.tensor(prob["R"]), torch.tensor(prob["x"])
    post = torch.distributions.MultivariateNormal(torch.tensor(prob["post_m"]), torch.tensor(prob["post_P"]))
    prior = torch.distributions.MultivariateNormal(torch.tensor(prob["m"]), torch.tensor(prob["P"]))
    z = post.mean + torch.randn((3, 10, 2), generator=g, dtype=torch.float64) @ torch.linalg.cholesky(post.covariance_matrix).T
    log_w = gaussian_log_prob(x, z @ C.T, torch.sqrt(torch.diagonal(R))) + prior.log_prob(z) - post.log_prob(z)
    torch.testing.assert_close(iw_log_marginal(log_w), torch.full((10,), prob["exact"], dtype=torch.float64))


def test_information_gain_is_the_log_ratio():
    assert information_gain(torch.tensor(-1.0), torch.tensor(-3.0)).item() == pytest.approx(2.0)


# ---- uniform action prior ---------------------------------------------------------------
@pytest.mark.parametrize("mean,std", [(0.0, 0.5), (0.7, 1.3), (-2.0, 0.4)])
def test_uniform_prior_kl_is_minus_entropy_plus_log_volume(mean, std):
    """KL(q || U[-1,1]) = -H(q) + log 2 for a tanh-squashed Gaussian, H over the box by quadrature."""
    base = torch.distributions.Normal(torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64))

    def density_u(u):
        return math.exp(base.log_prob(torch.tensor(u, dtype=torch.float64)).item())

    # H(a) = H(u) + E_u[log |d tanh(u) / du|] = H(u) + E_u[log(1 - tanh(u)^2)]
    log_jac = integrate.quad(lambda u: density_u(u) * math.log(max(1 - math.tanh(u) ** 2, 1e-300)),
                             mean - 12 * std, mean + 12 * std, limit=200)[0]
    entropy = base.entropy().item() + log_jac
    expected_kl = -entropy + math.log(2.0)
    g = torch.Generator().manual_seed(1)
    dist = TanhNormal(torch.full((200_000, 1), mean, dtype=torch.float64), torch.full((200_000, 1), std, dtype=torch.float64))
    _, log_q = dist.rsample_with_log_prob(g)
    kl = uniform_box_kl(log_q, 1)
    se = kl.std().item() / math.sqrt(len(kl))
    assert kl.mean().item() == pytest.approx(expected_kl, abs=4 * se + 1e-3)
    assert expected_kl >= 0


def test_uniform_kl_adds_log_volume_per_dimension():
    log_q = torch.tensor([0.0, -1.0])
    torch.testing.assert_close(uniform_box_kl(log_q, 3), log_q + 3 * math.log(2.0))


def test_tanh_normal_density_integrates_to_one_over_the_box():
    d = TanhNormal(torch.tensor([0.4], dtype=torch.float64), torch.tensor([0.9], dtype=torch.float64))
    f = lambda a: math.exp(d.log_prob(torch.tensor([a], dtype=torch.float64), eps=1e-15).item())  # noqa: E731
    assert integrate.quad(f, -1, 1, limit=200)[0] == pytest.approx(1.0, abs=1e-4)


# ---- schedules and bookkeeping ----------------------------------------------------------
def test_linear_anneal():
    assert linear_anneal(0, 0.01, 1.0, 100) == pytest.approx(0.01)
    assert linear_anneal(50, 0.0, 1.0, 100) == pytest.approx(0.5)
    assert linear_anneal(500, 0.0, 1.0, 100) == pytest.approx(1.0)
    assert linear_anneal(3, 0.2, 1.0, 0) == pytest.approx(1.0)


def test_free_nats_clamps_the_mean_and_stops_its_gradient():
    kl = torch.tensor(0.5, requires_grad=True)
    out = free_nats(kl, 1.0)
    out.backward()
    assert out.item() == 1.0 and kl.grad.item() == 0.0
    assert free_nats(torch.tensor(2.0), 1.0).item() == 2.0
    assert free_nats(torch.tensor(0.3), 0.0).item() == pytest.approx(0.3)


def test_weighted_sum_requires_matching_keys():
    losses = {"cll": torch.tensor(2.0), "kl_z": torch.tensor(1.0)}
    assert weighted_sum(losses, {"cll": 1.0, "kl_z": 0.5}).item() == pytest.approx(2.5)
    with pytest.raises(KeyError, match="mll"):
        weighted_sum(losses, {"cll": 1.0, "kl_z": 1.0, "mll": 1.0})
    with pytest.raises(KeyError, match="kl_z"):
        weighted_sum(losses, {"cll": 1.0})


def test_effective_sample_size():
    assert effective_sample_size(torch.full((10,), 0.1)).item() == pytest.approx(1.0)
    w = torch.zeros(10)
    w[3] = 1.0
    assert effective_sample_size(w).item() == pytest.approx(0.1)
