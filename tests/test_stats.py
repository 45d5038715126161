"""Tests for analysis.stats (rliable-equivalent metrics and bootstrap CIs).

Expected values are worked out by hand in the comments; the bootstrap tests
check properties that a wrong resampling scheme would violate.
"""

import numpy as np
import pytest
import scipy.stats

from analysis import stats as S

# --------------------------------------------------------------------------
# Point aggregates
# --------------------------------------------------------------------------
# 4 runs x 2 tasks.
# Flattened & sorted: 0.0 0.1 0.2 0.3 | 0.4 0.9 1.0 2.0
# trim_mean(0.25) on 8 entries cuts floor(0.25*8)=2 from each end:
#   keeps 0.2 0.3 0.4 0.9 -> IQM = 1.8 / 4 = 0.45
# (median of all entries = 0.35; per-task trimmed means (0.15+0.95)/2 = 0.55;
#  mean = 4.9/8 = 0.6125 -- all different, so a wrong definition fails.)
IQM_SCORES = np.array(
    [
        [0.2, 1.0],
        [0.0, 2.0],
        [0.3, 0.4],
        [0.1, 0.9],
    ]
)

# 3 runs x 3 tasks.
# per-task means: task0 (0+0+0.9)/3 = 0.3, task1 (0.2+0.2+1.1)/3 = 0.5,
#                 task2 (1.0+0.7+0.1)/3 = 0.6
#   -> median of per-task means = 0.5, mean of per-task means = 1.4/3
# (median over all 9 entries is 0.2, median of per-task medians is 0.2.)
MEDIAN_SCORES = np.array(
    [
        [0.0, 0.2, 1.0],
        [0.0, 0.2, 0.7],
        [0.9, 1.1, 0.1],
    ]
)


def test_iqm_hand_computed():
    assert S.iqm(IQM_SCORES) == pytest.approx(0.45, abs=1e-12)


def test_iqm_matches_scipy_trim_mean_over_flattened_array():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 5))  # 35 entries: cuts 8 from each end
    expected = np.sort(x.ravel())[8:27].mean()
    assert S.iqm(x) == pytest.approx(expected, abs=1e-12)
    assert S.iqm(x) == pytest.approx(scipy.stats.trim_mean(x.ravel(), 0.25), abs=1e-12)


@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (3, 2), (4, 3), (10, 1), (7, 5), (5, 4)])
def test_iqm_is_scipy_trim_mean_to_the_bit(shape):
    """iqm repeats scipy's numpy path without its wrapper: the same bits, so tables do not change."""
    rng = np.random.default_rng(sum(shape))
    for scale in (1e-3, 1.0, 1e3):
        x = rng.normal(size=shape) * scale
        assert S.iqm(x) == float(scipy.stats.trim_mean(x, 0.25, axis=None))
        assert S.iqm(np.round(x, 1)) == float(scipy.stats.trim_mean(np.round(x, 1), 0.25, axis=None))  # ties


def test_median_is_median_of_per_task_means():
    assert S.median(MEDIAN_SCORES) == pytest.approx(0.5, abs=1e-12)


def test_mean_is_mean_of_per_task_means():
    assert S.mean(MEDIAN_SCORES) == pytest.approx(1.4 / 3, abs=1e-12)
    assert S.mean(IQM_SCORES) == pytest.approx(0.6125, abs=1e-12)


def test_optimality_gap_clips_scores_above_gamma():
    scores = np.array([[1.5, 0.5], [0.2, 1.0]])
    # min(., 1) -> 1, 0.5, 0.2, 1 ; mean 0.675 ; gap 1 - 0.675 = 0.325
    # (without clipping the mean would be 0.8 and the gap 0.2)
    assert S.optimality_gap(scores) == pytest.approx(0.325, abs=1e-12)
    # gamma = 0.5: min(., 0.5) -> 0.5, 0.5, 0.2, 0.5 ; mean 0.425 ; gap 0.075
    assert S.optimality_gap(scores, gamma=0.5) == pytest.approx(0.075, abs=1e-12)
    # everything at or above gamma -> zero gap
    assert S.optimality_gap(np.full((3, 2), 1.2)) == 0.0


def test_aggregate_metrics_order():
    out = S.aggregate_metrics(MEDIAN_SCORES)
    assert S.AGGREGATE_NAMES == ("median", "iqm", "mean", "optimality_gap")
    # IQM of MEDIAN_SCORES: 9 entries, cut floor(2.25)=2 each end.
    # sorted: 0 0 | 0.1 0.2 0.2 0.7 0.9 | 1.0 1.1 -> mean 2.1/5 = 0.42
    # optimality gap: min(.,1) sum = 4.2 - 0.1 = 4.1 -> 1 - 4.1/9
    np.testing.assert_allclose(out, [0.5, 0.42, 1.4 / 3, 1 - 4.1 / 9], atol=1e-12)


# --------------------------------------------------------------------------
# Performance profile
# --------------------------------------------------------------------------
PROFILE_SCORES = np.array([[0.1, 0.5], [0.9, 0.3], [0.4, 0.8], [0.2, 0.6]])


def test_performance_profile_hand_computed():
    taus = [-1.0, 0.0, 0.3, 0.5, 0.9]
    # entries: 0.1 0.5 0.9 0.3 0.4 0.8 0.2 0.6 (8 in all)
    # > -1: 8/8 ; > 0: 8/8 ; > 0.3 (strict): 0.5 0.9 0.4 0.8 0.6 -> 5/8
    # > 0.5: 0.9 0.8 0.6 -> 3/8 ; > 0.9: none -> 0
    prof = S.performance_profile(PROFILE_SCORES, taus)
    assert prof.shape == (5,)
    np.testing.assert_allclose(prof, [1.0, 1.0, 0.625, 0.375, 0.0], atol=1e-12)


# --------------------------------------------------------------------------
# Probability of improvement
# --------------------------------------------------------------------------
# Task 0: x = 1, 3, 3 ; y = 0, 3
#   x=1: beats 0 (1), loses to 3 (0)        -> 1
#   x=3: beats 0 (1), ties 3 (0.5)  (twice) -> 3
#   U = 4, P = 4 / (3*2) = 2/3
# Task 1: x = 0.5, 0.5, 0.5 ; y = 0.5, 0.6
#   each x: ties 0.5 (0.5), loses to 0.6 (0) -> 1.5 in all
#   P = 1.5 / 6 = 1/4
# Average over tasks: (2/3 + 1/4) / 2 = 11/24
POI_X = np.array([[1.0, 0.5], [3.0, 0.5], [3.0, 0.5]])
POI_Y = np.array([[0.0, 0.5], [3.0, 0.6]])


def test_probability_of_improvement_with_ties_hand_computed():
    assert S.probability_of_improvement(POI_X, POI_Y) == pytest.approx(11 / 24, abs=1e-12)
    # Reverse direction: task0 1/3, task1 3/4 -> 13/24
    assert S.probability_of_improvement(POI_Y, POI_X) == pytest.approx(13 / 24, abs=1e-12)


def test_probability_of_improvement_complement_identity():
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(size=(6, 4)), 1)  # rounding creates ties
    y = np.round(rng.normal(size=(9, 4)), 1)
    p_xy = S.probability_of_improvement(x, y)
    p_yx = S.probability_of_improvement(y, x)
    assert p_xy + p_yx == pytest.approx(1.0, abs=1e-12)
    assert p_xy != pytest.approx(0.5, abs=1e-3)  # non-trivial case


def test_probability_of_improvement_identical_arrays_is_half():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 3))
    assert S.probability_of_improvement(x, x) == 0.5
    assert S.probability_of_improvement(np.ones((4, 2)), np.ones((4, 2))) == 0.5


def test_probability_of_improvement_matches_rliable_mannwhitney_definition():
    """Same numbers as rliable's per-task scipy.stats.mannwhitneyu(...)/(n*m)."""
    rng = np.random.default_rng(4)
    x = np.round(rng.uniform(size=(5, 6)), 1)
    y = np.round(rng.uniform(size=(7, 6)), 1)
    per_task = []
    for m in range(x.shape[1]):
        if np.array_equal(x[:, m], y[:, m]):
            per_task.append(0.5)
        else:
            u, _ = scipy.stats.mannwhitneyu(x[:, m], y[:, m], alternative="greater")
            per_task.append(u / (x.shape[0] * y.shape[0]))
    assert S.probability_of_improvement(x, y) == pytest.approx(np.mean(per_task), abs=1e-12)


def test_probability_of_improvement_dominance():
    x = np.array([[2.0, 5.0], [3.0, 6.0]])
    y = np.array([[0.0, 1.0], [1.0, 4.0], [1.5, 4.5]])
    assert S.probability_of_improvement(x, y) == 1.0
    assert S.probability_of_improvement(y, x) == 0.0


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------
BAD_SCORES = [
    (np.array([0.1, 0.2]), "2-D"),
    (np.zeros((2, 2, 2)), "2-D"),
    (np.zeros((0, 3)), "empty"),
    (np.zeros((3, 0)), "empty"),
    (np.array([[0.1, np.nan]]), "NaN"),
    (np.array([[0.1, np.inf]]), "inf"),
    ([["a", "b"]], "numeric"),
]


@pytest.mark.parametrize("bad, msg", BAD_SCORES)
@pytest.mark.parametrize(
    "fn",
    [S.iqm, S.median, S.mean, S.optimality_gap, S.aggregate_metrics,
     lambda s: S.performance_profile(s, [0.5])],
)
def test_aggregates_reject_bad_scores(fn, bad, msg):
    with pytest.raises(ValueError, match=msg):
        fn(bad)


@pytest.mark.parametrize("bad, msg", BAD_SCORES)
def test_bootstrap_rejects_bad_scores(bad, msg):
    with pytest.raises(ValueError, match=msg):
        S.stratified_bootstrap_ci({"a": bad}, S.mean, reps=5)
    with pytest.raises(ValueError, match=msg):
        S.probability_of_improvement(bad, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=msg):
        S.probability_of_improvement_ci(np.zeros((2, 2)), bad, reps=5)


def test_mismatched_task_counts_rejected():
    with pytest.raises(ValueError, match="same number of tasks"):
        S.probability_of_improvement(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="same number of tasks"):
        S.probability_of_improvement_ci(np.zeros((3, 2)), np.zeros((3, 3)), reps=5)
    with pytest.raises(ValueError, match="same number of tasks"):
        S.stratified_bootstrap_ci({"a": np.zeros((3, 2)), "b": np.zeros((4, 3))}, S.mean, reps=5)
    with pytest.raises(ValueError, match="same number of tasks"):
        S.performance_profile_ci({"a": np.zeros((3, 2)), "b": np.zeros((4, 3))}, [0.5], reps=5)


def test_other_argument_validation():
    ok = {"a": np.zeros((3, 2))}
    with pytest.raises(ValueError, match="empty"):
        S.stratified_bootstrap_ci({}, S.mean)
    with pytest.raises(ValueError, match="mapping"):
        S.stratified_bootstrap_ci(np.zeros((3, 2)), S.mean)
    with pytest.raises(ValueError, match="reps"):
        S.stratified_bootstrap_ci(ok, S.mean, reps=0)
    with pytest.raises(ValueError, match="confidence"):
        S.stratified_bootstrap_ci(ok, S.mean, confidence=95)
    with pytest.raises(ValueError, match="seed"):
        S.stratified_bootstrap_ci(ok, S.mean, seed=-1)
    with pytest.raises(ValueError, match="aggregate_fn"):
        S.stratified_bootstrap_ci(ok, "mean")
    with pytest.raises(ValueError, match="1-D"):
        S.stratified_bootstrap_ci(ok, lambda s: np.zeros((2, 2)), reps=2)
    with pytest.raises(ValueError, match="taus"):
        S.performance_profile(np.zeros((2, 2)), [])
    with pytest.raises(ValueError, match="taus"):
        S.performance_profile(np.zeros((2, 2)), [[0.1, 0.2]])
    with pytest.raises(ValueError, match="taus"):
        S.performance_profile(np.zeros((2, 2)), [0.1, np.nan])
    with pytest.raises(ValueError, match="gamma"):
        S.optimality_gap(np.zeros((2, 2)), gamma=np.nan)
    for bad, msg in [(np.zeros((2, 2)), "1-D"), (np.zeros(0), "empty"), ([0.1, np.nan], "NaN")]:
        with pytest.raises(ValueError, match=msg):
            S.bootstrap_mean_ci(bad)
    with pytest.raises(ValueError, match="confidence"):
        S.bootstrap_mean_ci([1.0, 2.0], confidence=1.0)


# --------------------------------------------------------------------------
# Stratified bootstrap
# --------------------------------------------------------------------------
def _random_scores(runs, tasks, seed):
    return np.random.default_rng(seed).normal(loc=0.5, scale=0.2, size=(runs, tasks))


def test_bootstrap_output_shapes_and_point_estimates():
    a, b = _random_scores(10, 4, 0), _random_scores(3, 4, 1)  # different run counts
    points, cis = S.stratified_bootstrap_ci({"a": a, "b": b}, S.aggregate_metrics, reps=200)
    assert set(points) == set(cis) == {"a", "b"}
    for key, arr in (("a", a), ("b", b)):
        assert points[key].shape == (4,)
        assert cis[key].shape == (2, 4)
        np.testing.assert_allclose(points[key], S.aggregate_metrics(arr), atol=1e-12)
        assert np.all(cis[key][0] <= cis[key][1])
    # A sequence of scalar functions is concatenated in order.
    points2, cis2 = S.stratified_bootstrap_ci({"a": a}, [S.iqm, S.median], reps=50)
    assert points2["a"].shape == (2,) and cis2["a"].shape == (2, 2)
    np.testing.assert_allclose(points2["a"], [S.iqm(a), S.median(a)], atol=1e-12)


def test_bootstrap_deterministic_for_fixed_seed_and_changes_with_seed():
    d = {"a": _random_scores(8, 5, 0), "b": _random_scores(6, 5, 1)}
    p1, c1 = S.stratified_bootstrap_ci(d, S.aggregate_metrics, reps=300, seed=7)
    p2, c2 = S.stratified_bootstrap_ci(d, S.aggregate_metrics, reps=300, seed=7)
    _, c3 = S.stratified_bootstrap_ci(d, S.aggregate_metrics, reps=300, seed=8)
    for key in d:
        np.testing.assert_array_equal(p1[key], p2[key])
        np.testing.assert_array_equal(c1[key], c2[key])
        assert not np.array_equal(c1[key], c3[key])


def test_bootstrap_agent_result_independent_of_other_agents():
    a, b = _random_scores(8, 5, 0), _random_scores(6, 5, 1)
    _, alone = S.stratified_bootstrap_ci({"a": a}, S.iqm, reps=200, seed=3)
    _, both = S.stratified_bootstrap_ci({"b": b, "a": a}, S.iqm, reps=200, seed=3)
    np.testing.assert_array_equal(alone["a"], both["a"])


def test_bootstrap_ci_contains_point_estimate():
    d = {"a": _random_scores(10, 5, 0), "b": _random_scores(5, 5, 1)}
    points, cis = S.stratified_bootstrap_ci(d, S.aggregate_metrics, reps=500, seed=0)
    for key in d:
        lo, hi = cis[key]
        assert np.all(lo <= points[key]) and np.all(points[key] <= hi)
        assert np.all(hi - lo > 0)


def test_bootstrap_ci_width_shrinks_with_more_runs():
    small = _random_scores(5, 4, 0)
    large = _random_scores(80, 4, 0)
    _, cis = S.stratified_bootstrap_ci({"small": small, "large": large}, S.mean, reps=500)
    w_small = np.diff(cis["small"], axis=0).item()
    w_large = np.diff(cis["large"], axis=0).item()
    # standard error scales ~ 1/sqrt(runs): expected ratio ~ 4
    assert w_large < 0.5 * w_small


def test_bootstrap_higher_confidence_gives_wider_interval():
    d = {"a": _random_scores(10, 5, 0)}
    _, narrow = S.stratified_bootstrap_ci(d, S.iqm, reps=500, confidence=0.5)
    _, wide = S.stratified_bootstrap_ci(d, S.iqm, reps=500, confidence=0.99)
    assert wide["a"][0, 0] < narrow["a"][0, 0] and narrow["a"][1, 0] < wide["a"][1, 0]


def test_bootstrap_constant_scores_zero_width():
    d = {"a": np.full((6, 3), 0.7)}
    points, cis = S.stratified_bootstrap_ci(d, S.aggregate_metrics, reps=100)
    np.testing.assert_array_equal(cis["a"][0], points["a"])
    np.testing.assert_array_equal(cis["a"][1], points["a"])


def test_bootstrap_two_point_distribution_known_percentiles():
    # One task, runs {0, 1}: the resampled mean is 0, 0.5, 1 with probability
    # 1/4, 1/2, 1/4. 95% percentile CI -> [0, 1]; 40% CI (30th/70th
    # percentiles) falls inside the 0.5 mass -> [0.5, 0.5].
    d = {"a": np.array([[0.0], [1.0]])}
    _, ci95 = S.stratified_bootstrap_ci(d, S.mean, reps=2000, confidence=0.95)
    _, ci40 = S.stratified_bootstrap_ci(d, S.mean, reps=2000, confidence=0.40)
    np.testing.assert_allclose(ci95["a"][:, 0], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(ci40["a"][:, 0], [0.5, 0.5], atol=1e-12)


def test_bootstrap_is_stratified_by_task():
    # Each task's score is constant across runs, tasks differ. Resampling runs
    # within each task reproduces the matrix exactly -> zero-width interval.
    scores = np.tile(np.array([0.1, 0.4, 0.9, 1.3]), (5, 1))  # (5 runs, 4 tasks)
    points, cis = S.stratified_bootstrap_ci({"a": scores}, S.aggregate_metrics, reps=300)
    np.testing.assert_array_equal(cis["a"][0], points["a"])
    np.testing.assert_array_equal(cis["a"][1], points["a"])

    # Sanity check that this test has teeth: an unstratified bootstrap that
    # pools all runs x tasks entries gives a clearly non-zero width.
    rng = np.random.default_rng(0)
    flat = scores.ravel()
    pooled = [
        S.mean(flat[rng.integers(0, flat.size, size=flat.size)].reshape(scores.shape))
        for _ in range(300)
    ]
    lo, hi = np.percentile(pooled, [2.5, 97.5])
    assert hi - lo > 0.1


def test_bootstrap_resamples_keep_runs_within_their_task():
    scores = np.arange(12, dtype=float).reshape(4, 3) / 10  # all values distinct
    seen = []

    def spy(s):
        seen.append(s.copy())
        return S.mean(s)

    S.stratified_bootstrap_ci({"a": scores}, spy, reps=50)
    resamples = seen[1:]  # first call is the point estimate on the data
    assert len(resamples) == 50
    assert any(not np.array_equal(r, scores) for r in resamples)
    for r in resamples:
        assert r.shape == scores.shape
        for m in range(scores.shape[1]):
            assert set(r[:, m]) <= set(scores[:, m])
    # Runs are drawn independently per task (as rliable does), not as whole
    # rows shared by all tasks: the drawn run indices differ between tasks.
    run_index = [np.rint(r * 10 - np.arange(3)).astype(int) // 3 for r in resamples]
    assert all(np.array_equal(scores[idx, np.arange(3)], r) for idx, r in zip(run_index, resamples))
    assert any(not np.array_equal(idx[:, 0], idx[:, 1]) for idx in run_index)


def test_bootstrap_interval_is_percentile_of_replications():
    scores = _random_scores(6, 3, 5)
    values = []

    def spy(s):
        values.append(S.iqm(s))
        return values[-1]

    _, cis = S.stratified_bootstrap_ci({"a": scores}, spy, reps=400, confidence=0.9)
    boot = np.array(values[1:])  # values[0] is the point estimate
    assert boot.shape == (400,)
    np.testing.assert_allclose(cis["a"][:, 0], np.percentile(boot, [5.0, 95.0]), atol=1e-12)


# --------------------------------------------------------------------------
# Performance profile CI
# --------------------------------------------------------------------------
def test_performance_profile_ci():
    taus = np.linspace(0.0, 1.0, 11)
    d = {"a": _random_scores(10, 4, 0), "b": _random_scores(4, 4, 1)}
    profiles, cis = S.performance_profile_ci(d, taus, reps=300, seed=0)
    for key in d:
        assert profiles[key].shape == (11,) and cis[key].shape == (2, 11)
        np.testing.assert_allclose(profiles[key], S.performance_profile(d[key], taus))
        lo, hi = cis[key]
        assert np.all((0 <= lo) & (lo <= profiles[key]) & (profiles[key] <= hi) & (hi <= 1))
        assert np.all(np.diff(lo) <= 1e-12) and np.all(np.diff(hi) <= 1e-12)
    _, again = S.performance_profile_ci(d, taus, reps=300, seed=0)
    _, other = S.performance_profile_ci(d, taus, reps=300, seed=1)
    np.testing.assert_array_equal(cis["a"], again["a"])
    assert not np.array_equal(cis["a"], other["a"])


# --------------------------------------------------------------------------
# Probability of improvement CI
# --------------------------------------------------------------------------
def test_probability_of_improvement_ci():
    x, y = _random_scores(8, 5, 0) + 0.1, _random_scores(6, 5, 1)
    point, ci = S.probability_of_improvement_ci(x, y, reps=400, seed=0)
    assert point == S.probability_of_improvement(x, y)
    assert ci.shape == (2,)
    assert 0.0 <= ci[0] <= point <= ci[1] <= 1.0 and ci[1] - ci[0] > 0
    _, again = S.probability_of_improvement_ci(x, y, reps=400, seed=0)
    _, other = S.probability_of_improvement_ci(x, y, reps=400, seed=1)
    np.testing.assert_array_equal(ci, again)
    assert not np.array_equal(ci, other)


def test_probability_of_improvement_ci_degenerate_cases():
    c = np.full((4, 3), 0.3)
    point, ci = S.probability_of_improvement_ci(c, c.copy(), reps=100)
    assert point == 0.5
    np.testing.assert_array_equal(ci, [0.5, 0.5])
    # x beats every y run on every task -> every resample gives 1
    x = np.array([[2.0, 5.0], [3.0, 6.0]])
    y = np.array([[0.0, 1.0], [1.0, 4.0], [1.5, 4.5]])
    point, ci = S.probability_of_improvement_ci(x, y, reps=100)
    assert point == 1.0
    np.testing.assert_array_equal(ci, [1.0, 1.0])


# --------------------------------------------------------------------------
# bootstrap_mean_ci (learning-curve bands)
# --------------------------------------------------------------------------
def test_bootstrap_mean_ci_single_value():
    assert S.bootstrap_mean_ci([0.42]) == (0.42, 0.42, 0.42)


def test_bootstrap_mean_ci_constant_values_zero_width():
    assert S.bootstrap_mean_ci(np.full(5, 0.3), reps=200) == (0.3, 0.3, 0.3)


def test_bootstrap_mean_ci_two_point_known_answer():
    # Resampled means of {0, 1}: 0, 0.5, 1 w.p. 1/4, 1/2, 1/4 -> 95% CI [0, 1].
    m, lo, hi = S.bootstrap_mean_ci([0.0, 1.0], reps=2000)
    assert (m, lo, hi) == (0.5, 0.0, 1.0)


def test_bootstrap_mean_ci_properties():
    v = np.random.default_rng(0).normal(size=10)
    m, lo, hi = S.bootstrap_mean_ci(v, reps=1000, seed=0)
    assert m == pytest.approx(v.mean(), abs=1e-12)
    assert lo < m < hi
    assert S.bootstrap_mean_ci(v, reps=1000, seed=0) == (m, lo, hi)
    assert S.bootstrap_mean_ci(v, reps=1000, seed=1) != (m, lo, hi)
    # width shrinks as the number of seeds grows
    big = np.random.default_rng(0).normal(size=400)
    _, lo_b, hi_b = S.bootstrap_mean_ci(big, reps=1000, seed=0)
    assert hi_b - lo_b < 0.5 * (hi - lo)


@pytest.mark.parametrize("x, y, p", [
    ([[0.8], [0.9]], [[0.1], [0.2]], 2 / 6),  # 2 vs 2 separated: it and its mirror, of C(4, 2) = 6 labellings
    ([[5], [6], [7]], [[1], [2], [3]], 2 / 20),  # 3 vs 3: C(6, 3) = 20
    ([[5], [6], [7], [8]], [[1], [2], [3], [4]], 2 / 70),  # 4 vs 4: C(8, 4) = 70
    ([[1], [2], [3]], [[5], [6], [7]], 2 / 20),  # two-sided: the mirror image, the same p
    ([[1], [2]], [[1], [2]], 1.0),  # identical, P = 0.5: every labelling is at least as far from 0.5
    ([[0.8, 0.8], [0.9, 0.9]], [[0.1, 0.1], [0.2, 0.2]], 2 / 36),  # two tasks, each 2 vs 2: 6 x 6
    ([[3], [1]], [[2], [0]], 4 / 6),  # P = 3/4; the labellings give P = 3/4, 1, 1/2, 1/2, 0, 1/4
])
def test_probability_of_improvement_pvalue_hand_computed(x, y, p):
    assert S.probability_of_improvement_pvalue(x, y) == pytest.approx(p, abs=1e-12)


def test_probability_of_improvement_pvalue_sampled_agrees_with_exact():
    x, y = [[5], [6], [7], [8]], [[1], [2], [3], [4]]
    sampled = S.probability_of_improvement_pvalue(x, y, reps=20000, seed=1, exact_limit=0)
    assert sampled == pytest.approx(2 / 70, abs=0.005)
    assert sampled == S.probability_of_improvement_pvalue(x, y, reps=20000, seed=1, exact_limit=0)  # seeded
