"""Storage of planned posteriors for consolidation (training the learned action prior).

The training loop owns the replay buffer and stores only ``(obs, action, reward, flags)``, so
the agent keeps the parameters of each planned ``q(a_t) = TanhNormal(mean, std)`` itself,
keyed by the exact bytes of ``(obs_t, a_t)`` as float32 (the action is a continuous sample, so
collisions have probability ~0; warm-up rows with random actions and evaluation episodes are
simply not in the table). At update time the replay window's rows ``t`` (``obs_t``) and
``t + 1`` (``a_t``) are looked up; the learned prior is trained on the rows found by
maximising ``E_q[log p_a(a_t | z_t)]`` (= minimising ``KL(q || p_a)`` up to q's entropy).
"""
from __future__ import annotations

import numpy as np


class PlanStore:
    """``(obs_t, a_t) -> (mean_u, std_u)`` of the planned posterior."""

    def __init__(self, act_dim: int):
        self.act_dim = act_dim
        self._table: dict[bytes, np.ndarray] = {}

    @staticmethod
    def key(obs: np.ndarray, action: np.ndarray) -> bytes:
        return np.asarray(obs, np.float32).tobytes() + np.asarray(action, np.float32).tobytes()

    def __len__(self) -> int:
        return len(self._table)

    def record(self, obs: np.ndarray, action: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
        self._table[self.key(obs, action)] = np.concatenate([mean, std]).astype(np.float32)

    def lookup(self, obs: np.ndarray, next_action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``obs (B, L, ...)`` and the actions of the NEXT rows ``(B, L, A)`` -> ``(mean, std, found)``.

        ``mean, std: (B, L, A)`` (zeros / ones where not found), ``found: (B, L)`` bool.
        """
        b, length = next_action.shape[:2]
        out = np.zeros((b, length, 2 * self.act_dim), np.float32)
        out[..., self.act_dim:] = 1.0
        found = np.zeros((b, length), bool)
        obs = np.asarray(obs, np.float32)
        next_action = np.asarray(next_action, np.float32)
        for i in range(b):
            for t in range(length):
                v = self._table.get(obs[i, t].tobytes() + next_action[i, t].tobytes())
                if v is not None:
                    out[i, t], found[i, t] = v, True
        return out[..., : self.act_dim], out[..., self.act_dim:], found

    def state_dict(self) -> dict:
        return {"table": dict(self._table)}

    def load_state_dict(self, state: dict) -> None:
        self._table = dict(state["table"])
