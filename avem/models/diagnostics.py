"""What a trained RSSM predicts: open-loop errors of its prior on held-out episodes.

The loop calls ``openloop_errors`` once per training episode on the latest evaluation's
episodes (never stored in replay, so never trained on) and logs the result as
``train/openloop_*`` beside the loss terms. Posterior MEANS are used throughout and no random
number is drawn, so the diagnostics never change a run's results.

For every start row ``s`` (every ``stride``-th row with ``s + max(horizons)`` inside the episode)
the episode is filtered up to ``x_s``; from that posterior state the prior is rolled forward
under the true actions with mean latents, and the decoded observation mean at ``s + h`` is
compared with ``x_{s+h}``. The naive baseline "the last observation repeats" predicts ``x_s``:
a model whose error is below the baseline's has learned dynamics.
"""
from __future__ import annotations

import numpy as np
import torch

from avem.models.rssm import RSSM

HORIZONS = (1, 5, 15)
"""Agent steps ahead at which the observation error is reported."""
BASELINE_HORIZON = 5
"""Horizon of the reward error and of both naive baselines."""


def diagnostic_keys() -> list[str]:
    """The keys ``openloop_errors`` returns, in a fixed order."""
    return ([f"openloop_obs_err_h{h}" for h in HORIZONS]
            + [f"openloop_obs_err_h{BASELINE_HORIZON}_baseline", f"openloop_reward_err_h{BASELINE_HORIZON}",
               f"openloop_reward_err_h{BASELINE_HORIZON}_baseline"])


def episode_rows(obs: list, actions: list, rewards: list) -> dict[str, np.ndarray]:
    """One episode in replay rows (``avem.train.replay``): ``obs`` has T+1 entries, ``actions`` and ``rewards`` T.

    Returns ``obs (T+1, O)``, ``action (T+1, A)`` (row t holds a_{t-1}; zeros on row 0), ``reward (T+1,)``
    (r_t with row t; 0 on row 0), ``is_first (T+1,)``."""
    act = np.asarray(actions, np.float32)
    return {"obs": np.asarray(obs, np.float32),
            "action": np.concatenate([np.zeros((1, act.shape[1]), np.float32), act]),
            "reward": np.concatenate([[0.0], np.asarray(rewards, np.float32)]).astype(np.float32),
            "is_first": np.arange(len(obs)) == 0}


@torch.no_grad()
def openloop_errors(model: RSSM, episodes: list[dict[str, np.ndarray]], stride: int = 5) -> dict[str, float]:
    """Mean squared errors (over episodes, start rows and observation dimensions) of the prior's open-loop
    predictions, ``{key: value}`` for ``diagnostic_keys()``; {} if no episode is long enough.

    ``episodes``: replay-row dicts (``episode_rows``); episodes of equal length are filtered as one batch."""
    span = max(HORIZONS)
    sums = dict.fromkeys(diagnostic_keys(), 0.0)
    count = 0
    for length in sorted({len(e["obs"]) for e in episodes}):
        group = [e for e in episodes if len(e["obs"]) == length]
        starts = np.arange(1, length - span, stride)
        if len(starts) == 0:
            continue
        device = model.gru.weight_hh.device
        batch = {k: torch.as_tensor(np.stack([e[k] for e in group]), device=device)
                 for k in ("obs", "action", "reward", "is_first")}
        errs = _errors_at(model, batch, torch.as_tensor(starts, device=device))
        n = len(group) * len(starts)
        for k, v in errs.items():
            sums[k] += v * n
        count += n
    return {k: v / count for k, v in sums.items()} if count else {}


def _errors_at(model: RSSM, batch: dict[str, torch.Tensor], starts: torch.Tensor) -> dict[str, float]:
    """Errors for one batch of equal-length episodes ``(B, T+1, .)`` from the start rows ``starts (S,)``."""
    obs, act, rew = batch["obs"], batch["action"], batch["reward"]
    post, _ = model.observe(obs, act, batch["is_first"], sample=False)
    state = {k: v[:, starts].flatten(0, 1) for k, v in post.items()}  # (B*S, .)
    out, h5 = {}, BASELINE_HORIZON
    for k in range(1, max(HORIZONS) + 1):
        state = model.img_step(state, act[:, starts + k].flatten(0, 1), sample=False)
        if k in HORIZONS or k == h5:
            obs_mean, rew_mean = model.decode(model.feat(state))
            target_x, target_r = obs[:, starts + k].flatten(0, 1), rew[:, starts + k].flatten()
            if k in HORIZONS:
                out[f"openloop_obs_err_h{k}"] = (obs_mean - target_x).pow(2).mean().item()
            if k == h5:
                out[f"openloop_obs_err_h{h5}_baseline"] = (obs[:, starts].flatten(0, 1) - target_x).pow(2).mean().item()
                out[f"openloop_reward_err_h{h5}"] = (rew_mean - target_r).pow(2).mean().item()
                out[f"openloop_reward_err_h{h5}_baseline"] = (rew[:, starts].flatten() - target_r).pow(2).mean().item()
    return out
