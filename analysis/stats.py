"""Aggregate metrics and bootstrap confidence intervals for RL benchmark scores.

Follows Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice" (NeurIPS), i.e. the definitions of the `rliable`
library (`rliable/metrics.py`, `rliable/library.py`).

Why hand-written: rliable cannot be imported next to pandas 3 (which this
project uses), so the few pieces we need are re-implemented here with
numpy only (the IQM repeats scipy.stats.trim_mean's numpy path; tests compare the two).

Conventions
-----------
* ``scores`` is always a 2-D float array of shape ``(runs, tasks)`` of
  *normalised* scores (e.g. episode return / 1000 for dm-control), where
  ``scores[n, m]`` is the score of run (seed) ``n`` on task ``m``.
* ``scores_dict`` maps an agent name to such an array. Agents may have
  different numbers of runs but must share the number of tasks.
* Confidence intervals are percentile-bootstrap intervals returned as an
  array of shape ``(2, k)``: row 0 holds the lower bounds, row 1 the upper
  bounds (the layout of rliable's ``get_interval_estimates``).
* Randomness comes only from ``numpy.random.default_rng(seed)``: the same
  seed gives identical output, a different seed gives a different resample.
  (rliable's ``random_state`` argument never reaches its resampling, which
  calls the global ``np.random``; ours does.)
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "AGGREGATE_NAMES",
    "aggregate_metrics",
    "bootstrap_mean_ci",
    "iqm",
    "mean",
    "median",
    "optimality_gap",
    "performance_profile",
    "performance_profile_ci",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "stratified_bootstrap_ci",
]

AggregateFn = Callable[[np.ndarray], "float | np.ndarray"]

#: Names of the entries returned by :func:`aggregate_metrics`, in order.
AGGREGATE_NAMES: tuple[str, ...] = ("median", "iqm", "mean", "optimality_gap")

# Upper bound on the number of elements materialised at once when
# vectorising a bootstrap over replications.
_CHUNK_ELEMENTS = 1_000_000


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------
def _as_array(values, name: str, ndim: int, shape_doc: str) -> np.ndarray:
    """Converts ``values`` to a finite float array with ``ndim`` dims, else raises."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(values).__name__}: {exc}") from exc
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D array of shape {shape_doc}, got ndim={arr.ndim} "
            f"(shape {arr.shape})"
        )
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape} (expected {shape_doc})")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN ({int(np.isnan(arr).sum())} entries)")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains +/-inf ({int(np.isinf(arr).sum())} entries)")
    return arr


def _as_scores(scores, name: str = "scores") -> np.ndarray:
    """Validates a (runs, tasks) score matrix and returns it as float64."""
    return _as_array(scores, name, ndim=2, shape_doc="(runs, tasks)")


def _as_scores_dict(scores_dict) -> dict[str, np.ndarray]:
    """Validates {agent: (runs, tasks)}; all agents must have the same number of tasks."""
    if not isinstance(scores_dict, Mapping):
        raise ValueError(
            f"scores_dict must be a mapping {{agent: array (runs, tasks)}}, "
            f"got {type(scores_dict).__name__}"
        )
    if len(scores_dict) == 0:
        raise ValueError("scores_dict is empty: need at least one agent")
    out = {key: _as_scores(val, name=f"scores_dict[{key!r}]") for key, val in scores_dict.items()}
    num_tasks = {key: arr.shape[1] for key, arr in out.items()}
    if len(set(num_tasks.values())) > 1:
        raise ValueError(f"all agents must have the same number of tasks, got {num_tasks}")
    return out


def _as_taus(taus) -> np.ndarray:
    """Validates the 1-D threshold grid of a performance profile."""
    try:
        arr = np.asarray(taus, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"taus must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"taus must be a 1-D array of thresholds, got ndim={arr.ndim} (shape {arr.shape})")
    if arr.size == 0:
        raise ValueError("taus must not be empty")
    if np.isnan(arr).any():
        raise ValueError("taus contains NaN")
    return arr


def _check_reps(reps) -> int:
    if isinstance(reps, bool) or not isinstance(reps, numbers.Integral) or reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    return int(reps)


def _check_confidence(confidence) -> float:
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, numbers.Real)
        or not 0.0 < float(confidence) < 1.0
    ):
        raise ValueError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _make_rng(seed) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


# --------------------------------------------------------------------------
# Aggregate metrics (rliable/metrics.py)
# --------------------------------------------------------------------------
def mean(scores) -> float:
    """``mean_m( mean_n scores[n, m] )``, the mean of the per-task mean scores (rliable
    ``aggregate_mean``); with equal runs per task, the mean of all entries."""
    s = _as_scores(scores)
    return float(np.mean(np.mean(s, axis=0)))


def median(scores) -> float:
    """``median_m( mean_n scores[n, m] )`` (rliable ``aggregate_median``): runs are first averaged per
    task, then the median of the task means is taken (NOT the median of all runs x tasks entries)."""
    s = _as_scores(scores)
    return float(np.median(np.mean(s, axis=0)))


def iqm(scores) -> float:
    """Interquartile mean of all runs x tasks entries (rliable ``aggregate_iqm``):
    ``scipy.stats.trim_mean(scores, 0.25, axis=None)``, i.e. ``floor(0.25 * runs * tasks)`` sorted
    entries cut from each end and the rest averaged. Computed as scipy's numpy path does (the same
    partition and mean, so the same bits) without its argument wrapper, which dominated a bootstrap's
    time (results/benchmarks/throughput.md, "The quick study")."""
    a = _as_scores(scores).ravel()
    cut = int(0.25 * a.size)
    return float(np.mean(np.partition(a, (cut, a.size - cut - 1))[cut:a.size - cut]))


def optimality_gap(scores, gamma: float = 1.0) -> float:
    """Optimality gap over all runs x tasks entries (rliable ``aggregate_optimality_gap``).

    Args:
      scores: array (runs, tasks) of normalised scores.
      gamma: target score; scores above ``gamma`` are clipped to ``gamma``
        (default 1, i.e. the maximum normalised dm-control return).

    Returns:
      Scalar: ``gamma - mean(minimum(scores, gamma))`` over all entries.
      Lower is better; 0 means every run reached ``gamma``.
    """
    s = _as_scores(scores)
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not np.isfinite(gamma):
        raise ValueError(f"gamma must be a finite number, got {gamma!r}")
    return float(gamma - np.mean(np.minimum(s, gamma)))


def aggregate_metrics(scores) -> np.ndarray:
    """All four rliable aggregates at once, in the order of :data:`AGGREGATE_NAMES`.

    Args:
      scores: array (runs, tasks) of normalised scores.

    Returns:
      Array (4,): ``[median, iqm, mean, optimality_gap(gamma=1)]`` -- the
      vector-valued aggregate typically passed to
      :func:`stratified_bootstrap_ci`.
    """
    s = _as_scores(scores)
    return np.array([median(s), iqm(s), mean(s), optimality_gap(s)])


# --------------------------------------------------------------------------
# Stratified bootstrap (rliable/library.py: StratifiedBootstrap)
# --------------------------------------------------------------------------
def _stratified_resample(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One stratified-bootstrap resample of a (runs, tasks) matrix.

    For every task (stratum) independently, ``runs`` run indices are drawn
    with replacement; tasks are never mixed. Same as rliable's
    ``StratifiedBootstrap.update_indices`` with ``task_bootstrap=False``.
    """
    num_runs, num_tasks = scores.shape
    run_idx = rng.integers(0, num_runs, size=(num_runs, num_tasks))
    return scores[run_idx, np.arange(num_tasks)[None, :]]


def _percentile_interval(boot: np.ndarray, confidence: float) -> np.ndarray:
    """Two-sided percentile CI of bootstrap values (reps, k) -> (2, k).

    Same percentiles as arch's ``conf_int(method='percentile')`` used by
    rliable: ``100 * tail`` and ``100 * (1 - tail)`` with
    ``tail = (1 - confidence) / 2``, linear interpolation (``np.percentile``).
    """
    tail = (1.0 - confidence) / 2.0
    return np.asarray(np.percentile(boot, [100.0 * tail, 100.0 * (1.0 - tail)], axis=0))


def _compose_aggregate(aggregate_fn) -> Callable[[np.ndarray], np.ndarray]:
    """Turns a callable or a sequence of callables into one function returning a 1-D vector."""
    if callable(aggregate_fn):
        fns = [aggregate_fn]
    elif isinstance(aggregate_fn, Sequence) and len(aggregate_fn) > 0 and all(
        callable(f) for f in aggregate_fn
    ):
        fns = list(aggregate_fn)
    else:
        raise ValueError(
            "aggregate_fn must be a callable (runs, tasks) -> scalar or 1-D array, "
            f"or a non-empty sequence of such callables; got {aggregate_fn!r}"
        )

    def composed(scores: np.ndarray) -> np.ndarray:
        parts = []
        for fn in fns:
            out = np.asarray(fn(scores), dtype=np.float64)
            if out.ndim > 1:
                raise ValueError(
                    f"aggregate function {getattr(fn, '__name__', fn)!r} must return a scalar "
                    f"or a 1-D array, got shape {out.shape}"
                )
            parts.append(np.atleast_1d(out))
        return np.concatenate(parts)

    return composed


def stratified_bootstrap_ci(
    scores_dict: Mapping[str, np.ndarray],
    aggregate_fn: AggregateFn | Sequence[AggregateFn],
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Point estimates and stratified-bootstrap percentile CIs of aggregate metrics.

    Hand-written replacement for rliable's ``get_interval_estimates``
    (``method='percentile'``, ``task_bootstrap=False``) because rliable
    cannot be imported alongside pandas 3.

    Each bootstrap replication resamples, for every task independently,
    ``runs`` runs with replacement (stratified by task), then evaluates the
    aggregate; the CI is given by the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles of the ``reps`` replications.

    Args:
      scores_dict: ``{agent: array (runs_agent, tasks)}``; the number of runs
        may differ between agents, the number of tasks may not.
      aggregate_fn: a callable mapping an array (runs, tasks) to a scalar or a
        1-D array of ``k`` metrics (e.g. :func:`aggregate_metrics`), or a
        sequence of such callables whose outputs are concatenated
        (e.g. ``[median, iqm, mean, optimality_gap]``).
      reps: number of bootstrap replications (rliable's paper uses 2000 for
        profiles and up to 50000 for aggregates).
      confidence: coverage of the two-sided interval, in (0, 1).
      seed: seed of the ``numpy.random.Generator``. Each agent is resampled
        with a fresh generator from this seed, so an agent's result does not
        depend on which other agents are in ``scores_dict`` or their order.

    Returns:
      ``(point_estimates, intervals)``: ``point_estimates[agent]`` has shape
      ``(k,)`` (the aggregate on the original scores), ``intervals[agent]``
      has shape ``(2, k)`` with lower bounds in row 0 and upper bounds in row 1.
    """
    data = _as_scores_dict(scores_dict)
    reps = _check_reps(reps)
    confidence = _check_confidence(confidence)
    fn = _compose_aggregate(aggregate_fn)
    _make_rng(seed)  # validate before doing any work

    points: dict[str, np.ndarray] = {}
    intervals: dict[str, np.ndarray] = {}
    for agent, scores in data.items():
        rng = _make_rng(seed)
        point = fn(scores)
        boot = np.empty((reps, point.shape[0]))
        for r in range(reps):
            value = fn(_stratified_resample(scores, rng))
            if value.shape != point.shape:
                raise ValueError(
                    f"aggregate_fn returned shape {value.shape} on a resample but "
                    f"{point.shape} on the original scores of agent {agent!r}"
                )
            boot[r] = value
        points[agent] = point
        intervals[agent] = _percentile_interval(boot, confidence)
    return points, intervals


# --------------------------------------------------------------------------
# Performance profiles (rliable/library.py: create_performance_profile)
# --------------------------------------------------------------------------
def performance_profile(scores, taus) -> np.ndarray:
    """Score distribution: fraction of runs with score > tau, for each tau.

    Hand-written replacement for rliable's ``score_distributions`` (the
    default, ``use_score_distribution=True``, profile) because rliable cannot
    be imported alongside pandas 3.

    Args:
      scores: array (runs, tasks) of normalised scores.
      taus: 1-D array (len(taus),) of thresholds.

    Returns:
      Array (len(taus),): ``mean(scores > tau)`` over all runs x tasks
      entries (strict inequality, as in rliable).
    """
    s = _as_scores(scores)
    t = _as_taus(taus)
    return np.mean(s[None, :, :] > t[:, None, None], axis=(1, 2))


def performance_profile_ci(
    scores_dict: Mapping[str, np.ndarray],
    taus,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Performance profiles with stratified-bootstrap percentile CIs.

    Hand-written replacement for rliable's ``create_performance_profile``
    (score distributions, percentile method, no task bootstrap) because
    rliable cannot be imported alongside pandas 3. Uses the same stratified
    bootstrap as :func:`stratified_bootstrap_ci`.

    Args:
      scores_dict: ``{agent: array (runs_agent, tasks)}``.
      taus: 1-D array (len(taus),) of thresholds.
      reps, confidence, seed: as in :func:`stratified_bootstrap_ci`.

    Returns:
      ``(profiles, intervals)``: ``profiles[agent]`` has shape
      ``(len(taus),)``, ``intervals[agent]`` has shape ``(2, len(taus))``
      (row 0 lower, row 1 upper).
    """
    t = _as_taus(taus)
    return stratified_bootstrap_ci(
        scores_dict,
        lambda s: np.mean(s[None, :, :] > t[:, None, None], axis=(1, 2)),
        reps=reps,
        confidence=confidence,
        seed=seed,
    )


# --------------------------------------------------------------------------
# Probability of improvement (rliable/metrics.py)
# --------------------------------------------------------------------------
def _as_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    xs = _as_scores(x, name="x")
    ys = _as_scores(y, name="y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(
            f"x and y must have the same number of tasks, got {xs.shape[1]} and {ys.shape[1]}"
        )
    return xs, ys


def _poi(xs: np.ndarray, ys: np.ndarray) -> float:
    """P(X > Y) on validated arrays; see :func:`probability_of_improvement`."""
    a = xs[:, None, :]  # (runs_x, 1, tasks)
    b = ys[None, :, :]  # (1, runs_y, tasks)
    # Mann-Whitney U of x per task: #(x > y) + 0.5 * #(x == y). Counted in
    # integers so that identical inputs give exactly 0.5.
    u = np.sum(a > b, axis=(0, 1)) + 0.5 * np.sum(a == b, axis=(0, 1))
    return float(np.mean(u / (xs.shape[0] * ys.shape[0])))


def probability_of_improvement(x, y) -> float:
    """Average probability of improvement P(X > Y) (rliable ``probability_of_improvement``).

    For each task m, ``P(X_m > Y_m) = U_m / (runs_x * runs_y)`` where ``U_m``
    is the Mann-Whitney U statistic of ``x[:, m]`` against ``y[:, m]``:
    the number of (run_x, run_y) pairs with x > y, ties counting 1/2. The
    result is the mean over tasks. Hence ``P(X>Y) + P(Y>X) == 1`` and
    identical inputs give 0.5 (rliable's special case falls out of the
    formula).

    Args:
      x: array (runs_x, tasks) of scores of algorithm X.
      y: array (runs_y, tasks) of scores of algorithm Y, same tasks in the
        same column order; ``runs_y`` may differ from ``runs_x``.

    Returns:
      Scalar in [0, 1].
    """
    xs, ys = _as_pair(x, y)
    return _poi(xs, ys)


def _u2_of_splits(column: np.ndarray, in_x: np.ndarray) -> np.ndarray:
    """``2 U`` of x against y for each relabelling of one task's pooled runs: ``column (n+m,)``, ``in_x (K, n+m)``
    boolean (True: the run is labelled x) -> ``(K,)`` integers (integers, so ties with the observed value are exact)."""
    n = int(in_x[0].sum())
    order = np.argsort(~in_x, axis=1, kind="stable")  # x-labelled indices first
    xs, ys = column[order[:, :n]], column[order[:, n:]]
    a, b = xs[:, :, None], ys[:, None, :]
    return 2 * np.sum(a > b, axis=(1, 2)) + np.sum(a == b, axis=(1, 2))


def probability_of_improvement_pvalue(x, y, reps: int = 2000, seed: int = 0, exact_limit: int = 20000) -> float:
    """Two-sided p-value of :func:`probability_of_improvement` against "no effect": a stratified permutation test.

    Under the null hypothesis the runs of X and Y are exchangeable within each task, so the labels are
    permuted within every task column and P(X > Y) recomputed; p is the fraction of relabellings whose P
    is at least as far from 0.5 as the observed one. Exact (every relabelling, each equally likely) when
    there are at most ``exact_limit`` of them, e.g. 3 vs 3 runs on one task: 20, the smallest p being
    2/20 (4 vs 4: 2/70); otherwise ``reps``
    seeded random relabellings with p = (1 + count) / (1 + reps). Written here because the percentile
    bootstrap CI of P has zero width whenever every run of one side beats every run of the other, whatever
    the number of runs; this p says how likely such a separation is by chance.

    Args:
      x: array (runs_x, tasks); y: array (runs_y, tasks).
    Returns:
      p in (0, 1].
    """
    xs, ys = _as_pair(x, y)
    n, m, tasks = xs.shape[0], ys.shape[0], xs.shape[1]
    pooled = np.concatenate([xs, ys], axis=0)
    observed = np.full((1, n + m), False)
    observed[0, :n] = True
    centre = tasks * n * m  # the sum over tasks of 2U at P = 0.5
    target = abs(sum(int(_u2_of_splits(pooled[:, t], observed)[0]) for t in range(tasks)) - centre)
    if math.comb(n + m, n) ** tasks <= exact_limit:
        in_x = np.full((math.comb(n + m, n), n + m), False)
        for k, c in enumerate(itertools.combinations(range(n + m), n)):
            in_x[k, list(c)] = True
        total = np.zeros(1, dtype=np.int64)
        for t in range(tasks):  # the distribution of the sum over tasks: every combination of relabellings
            total = (total[:, None] + _u2_of_splits(pooled[:, t], in_x)[None, :]).ravel()
        return float(np.mean(np.abs(total - centre) >= target))
    rng = _make_rng(seed)
    total = np.zeros(_check_reps(reps), dtype=np.int64)
    for t in range(tasks):
        in_x = rng.permuted(np.tile(np.arange(n + m) < n, (total.size, 1)), axis=1)
        total += _u2_of_splits(pooled[:, t], in_x)
    return float((1 + np.sum(np.abs(total - centre) >= target)) / (1 + total.size))


def probability_of_improvement_ci(
    x,
    y,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """P(X > Y) with a stratified-bootstrap percentile CI.

    Hand-written replacement for rliable's ``get_interval_estimates`` on a
    pair of arrays (``StratifiedIndependentBootstrap``) because rliable cannot
    be imported alongside pandas 3. In each replication ``x`` and ``y`` are
    resampled independently of each other, each stratified by task (runs
    drawn with replacement within every task column).

    Args:
      x: array (runs_x, tasks); y: array (runs_y, tasks).
      reps, confidence, seed: as in :func:`stratified_bootstrap_ci`.

    Returns:
      ``(point, interval)``: ``point`` is :func:`probability_of_improvement`
      on the original data, ``interval`` has shape (2,) = ``[lower, upper]``.
    """
    xs, ys = _as_pair(x, y)
    reps = _check_reps(reps)
    confidence = _check_confidence(confidence)
    rng = _make_rng(seed)
    boot = np.empty(reps)
    for r in range(reps):
        boot[r] = _poi(_stratified_resample(xs, rng), _stratified_resample(ys, rng))
    return _poi(xs, ys), _percentile_interval(boot, confidence)


# --------------------------------------------------------------------------
# Learning-curve bands
# --------------------------------------------------------------------------
def bootstrap_mean_ci(
    values,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean over seeds with a percentile-bootstrap CI (for learning-curve bands).

    Hand-written (numpy only) because rliable cannot be imported alongside
    pandas 3. Plain i.i.d. bootstrap of the mean: ``reps`` resamples of the
    ``n`` values with replacement, CI from the percentiles of their means.

    Args:
      values: array (n,), e.g. the normalised score of each seed at one
        evaluation step.
      reps, confidence, seed: as in :func:`stratified_bootstrap_ci`.

    Returns:
      ``(mean, lower, upper)`` as floats. With ``n == 1`` no uncertainty can
      be estimated: the single value is returned as the mean and as both
      bounds (a zero-width band), not an error.
    """
    v = _as_array(values, "values", ndim=1, shape_doc="(n,)")
    reps = _check_reps(reps)
    confidence = _check_confidence(confidence)
    rng = _make_rng(seed)
    point = float(np.mean(v))
    n = v.shape[0]
    if n == 1:
        return point, point, point
    boot = np.empty(reps)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, reps, chunk):
        stop = min(reps, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[start:stop] = v[idx].mean(axis=1)
    lower, upper = _percentile_interval(boot, confidence)
    return point, float(lower), float(upper)
