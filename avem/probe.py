"""Linear probes of an agent's latent state: how much hidden, irrelevant and observed state it encodes.

The paper's first open question is how task-specific the learned model is. This module loads a
trained run (``config.yaml`` + ``checkpoint.pt``), rolls out ``episodes`` evaluation-style
episodes (deterministic actions, seeds disjoint from training and evaluation) on the run's own
task, records the agent's latent features at every agent step, and fits ridge probes from the
features to three groups of the environment's ``info['state']``:

- ``velocity``: the velocity-like keys (``avem.envs.tasks.VELOCITY_KEYS``) of the full state,
  i.e. what ``pos``/``distract`` observations mask;
- ``distractor``: the task-irrelevant dimensions (``env.distract_slice``; ``distract`` tasks only);
- ``position``: every other key of the full state (observed directly in ``pos``/``distract``).

Output (``probe.csv``): ``task, agent, seed, target_group, r2, n_samples, status`` plus
diagnostics (``n_train, n_test, n_dims, n_features``). ``r2`` is the held-out R^2 (uniform average
over the group's non-constant dimensions), train/test split BY EPISODE (the last fifth of the
episodes, at least one, is held out). ``status``: ``ok``; ``not_applicable`` (the agent has no
latent state, e.g. ``random``); ``no_target`` (the group does not exist for this task, e.g. no
distractors outside ``distract`` tasks, or is constant); ``run_failed`` (the run diverged: its
``run.json`` says ``failed``, its parameters may be NaN, nothing is rolled out).

Latent hook contract (optional, on the agent): ``agent.latent(state) -> np.ndarray`` of shape
``(F,)``, where ``state`` is the second value returned by ``agent.act(obs, state, explore)`` for
the observation at time t, i.e. the agent's belief after seeing ``obs_t``; it must not change the
agent or draw random numbers. Without the hook the state itself is used when it is a numpy array
(SAC: the ``(frame_stack, obs_dim)`` frame stack, flattened); otherwise the probe is not applicable.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

GROUPS = ("velocity", "distractor", "position")
COLUMNS = ("task", "agent", "seed", "target_group", "r2", "n_samples", "status", "n_train", "n_test", "n_dims",
           "n_features")
RIDGE_ALPHA = 1.0
"""Ridge penalty on standardised features (the scale of sklearn's default ``Ridge(alpha=1)``)."""
TEST_FRACTION = 0.2
MIN_STD = 1e-6


def latent_features(agent, state) -> np.ndarray | None:
    """The agent's latent features for one step: ``agent.latent(state)``, else ``state`` if an array, else None."""
    hook = getattr(agent, "latent", None)
    if callable(hook):
        z = hook(state)
        if isinstance(z, torch.Tensor):
            z = z.detach().cpu().numpy()
        return None if z is None else np.asarray(z, np.float64).ravel()
    if isinstance(state, np.ndarray):
        return np.asarray(state, np.float64).ravel()
    return None


def state_groups(env) -> dict[str, np.ndarray | None]:
    """Indices into ``info['state']`` of each target group (None where the group does not exist).

    ``info['state']`` is the dm-control observation with keys in sorted order, then (``distract``
    tasks) the distractor values; the velocity keys come from ``VELOCITY_KEYS`` of the domain.
    """
    from avem.envs.tasks import VELOCITY_KEYS
    from dm_control import suite  # avem.envs (imported by the caller) has set MUJOCO_GL already

    spec = env.task_spec
    obs_spec = suite.load(spec.domain, spec.task, task_kwargs={"random": 0}).observation_spec()
    keys = sorted(obs_spec)
    sizes = [int(np.prod(obs_spec[k].shape)) for k in keys]
    starts = np.cumsum([0] + sizes)
    vel = [np.arange(starts[i], starts[i + 1]) for i, k in enumerate(keys) if k in VELOCITY_KEYS[spec.domain]]
    pos = [np.arange(starts[i], starts[i + 1]) for i, k in enumerate(keys) if k not in VELOCITY_KEYS[spec.domain]]
    full_dim = int(starts[-1])
    ds = env.distract_slice
    if ds is not None and ds.start != full_dim:
        raise ValueError(f"distractor slice {ds} does not start after the full state ({full_dim} dims)")
    return {"velocity": np.concatenate(vel) if vel else None,
            "distractor": np.arange(ds.start, ds.stop) if ds is not None else None,
            "position": np.concatenate(pos) if pos else None}


def rollout(agent, env, episodes: int, seed: int) -> tuple[list[np.ndarray] | None, list[np.ndarray]]:
    """``episodes`` deterministic episodes -> per-episode latents ``(T, F)`` (None if no latent) and states ``(T, S)``."""
    latents, states = [], []
    for e in range(episodes):
        episode_seed = int(np.random.SeedSequence([seed, e, 2]).generate_state(1)[0])
        obs, info = env.reset(seed=episode_seed)
        state, done, zs, ss = agent.initial_state(), False, [], []
        while not done:
            action, state, _ = agent.act(obs, state, explore=False)
            z = latent_features(agent, state)
            if z is None:
                return None, []
            zs.append(z)
            ss.append(np.asarray(info["state"], np.float64))
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        latents.append(np.stack(zs))
        states.append(np.stack(ss))
    return latents, states


def ridge_r2(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
             alpha: float = RIDGE_ALPHA) -> tuple[float, int]:
    """Held-out R^2 of a ridge regression; ``(uniform average over usable target dims, number of dims)``.

    Features are standardised with training statistics; targets constant on the training or test
    set are dropped (R^2 is undefined for them). Solved in closed form with ``numpy.linalg.lstsq``
    on the augmented system ``[X; sqrt(alpha) I] w = [y; 0]`` (no scikit-learn needed for one solve).
    """
    mu, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd < MIN_STD, 1.0, sd)
    xtr, xte = (x_train - mu) / sd, (x_test - mu) / sd
    keep = (y_train.std(0) > MIN_STD) & (y_test.std(0) > MIN_STD)
    if not keep.any():
        return float("nan"), 0
    ytr, yte = y_train[:, keep], y_test[:, keep]
    ymu = ytr.mean(0)
    f = xtr.shape[1]
    a = np.vstack([xtr, np.sqrt(alpha) * np.eye(f)])
    b = np.vstack([ytr - ymu, np.zeros((f, ytr.shape[1]))])
    w = np.linalg.lstsq(a, b, rcond=None)[0]
    pred = xte @ w + ymu
    r2 = 1.0 - ((yte - pred) ** 2).sum(0) / ((yte - yte.mean(0)) ** 2).sum(0)
    return float(np.mean(r2)), int(keep.sum())


def probe_run(run_dir: str | Path, episodes: int = 5) -> list[dict]:
    """Probe one run directory; returns one row per target group (see the module docstring)."""
    from avem.train.loop import load_trained

    if episodes < 2:
        raise ValueError(f"episodes must be >= 2 (train/test split by episode), got {episodes}")
    from avem.train.rundir import read_run_json

    run, _, agent, env = load_trained(run_dir)
    base = {"task": run.task, "agent": run.agent, "seed": run.seed}
    if read_run_json(run_dir).get("status") == "failed":
        return _no_probe(base, "run_failed")
    latents, states = rollout(agent, env, episodes, run.seed)
    if latents is None:
        return _no_probe(base, "not_applicable")
    n_test = max(1, int(round(TEST_FRACTION * episodes)))
    x_tr, x_te = np.concatenate(latents[:-n_test]), np.concatenate(latents[-n_test:])
    s_tr, s_te = np.concatenate(states[:-n_test]), np.concatenate(states[-n_test:])
    rows = []
    for group, idx in state_groups(env).items():
        row = {**base, "target_group": group, "n_samples": len(x_tr) + len(x_te), "n_train": len(x_tr),
               "n_test": len(x_te), "n_features": x_tr.shape[1]}
        r2, dims = ridge_r2(x_tr, s_tr[:, idx], x_te, s_te[:, idx]) if idx is not None else (float("nan"), 0)
        rows.append({**row, "r2": r2, "n_dims": dims, "status": "ok" if dims else "no_target"})
    return rows


def _no_probe(base: dict, status: str) -> list[dict]:
    """One row per group with ``status`` and no R^2."""
    return [{**base, "target_group": g, "r2": float("nan"), "n_samples": 0, "status": status,
             "n_train": 0, "n_test": 0, "n_dims": 0, "n_features": 0} for g in GROUPS]


def write_csv(rows: list[dict], out: str | Path) -> None:
    """Write probe rows with the columns of :data:`COLUMNS` (atomically)."""
    from avem.train.rundir import atomic_text
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_text(out, buf.getvalue())
