"""Episode-aware replay buffer storing rows in the Dreamer convention.

Row ``t`` of an episode holds ``obs_t``, the action that LED to it (``a_{t-1}``, zeros on the
first row), the reward that came WITH it (``r_t``, 0 on the first row), ``is_first`` and
``is_terminal``. An episode of T agent steps is T+1 rows. ``sample`` returns windows that lie
inside one episode, so sequence models and frame-stacking agents read the same data as SAC.

Written by hand because it is 80 lines and every agent needs exactly this window contract.
"""
from __future__ import annotations

import numpy as np

_FIELDS = ("obs", "action", "reward", "is_first", "is_terminal")


class ReplayBuffer:
    """Growable episode buffer. ``obs_shape``: per-step observation shape; ``act_dim``: action size."""

    def __init__(self, obs_shape: tuple[int, ...], act_dim: int, capacity: int = 1024):
        self.obs_shape, self.act_dim = tuple(obs_shape), int(act_dim)
        self.size = 0
        self._episode = -1
        self._alloc(max(int(capacity), 2))
        self._starts: list[int] = []  # first row of each episode

    def _alloc(self, n: int) -> None:
        old = getattr(self, "data", None)
        new = {
            "obs": np.zeros((n, *self.obs_shape), np.float32),
            "action": np.zeros((n, self.act_dim), np.float32),
            "reward": np.zeros((n,), np.float32),
            "is_first": np.zeros((n,), bool),
            "is_terminal": np.zeros((n,), bool),
        }
        if old is not None:
            for k in _FIELDS:
                new[k][: self.size] = old[k][: self.size]
        self.data = new

    def add(self, obs, prev_action, reward: float, is_first: bool, is_terminal: bool) -> None:
        """Append one row. ``is_first=True`` starts a new episode (``prev_action``/``reward`` ignored)."""
        if self.size == len(self.data["obs"]):
            self._alloc(2 * self.size)
        i = self.size
        if is_first:
            self._starts.append(i)
            prev_action, reward = 0.0, 0.0
        elif not self._starts:
            raise ValueError("the first row added to a ReplayBuffer must have is_first=True")
        d = self.data
        d["obs"][i] = obs
        d["action"][i] = prev_action
        d["reward"][i] = reward
        d["is_first"][i] = is_first
        d["is_terminal"][i] = is_terminal
        self.size += 1

    def num_windows(self, length: int) -> int:
        """How many distinct windows of ``length`` rows lie inside one episode."""
        return int(self._window_counts(length).sum())

    def _window_counts(self, length: int) -> np.ndarray:
        starts = np.asarray(self._starts + [self.size], np.int64)
        lengths = np.diff(starts)
        return np.maximum(lengths - length + 1, 0)

    def sample(self, rng: np.random.Generator, batch: int, length: int) -> dict[str, np.ndarray]:
        """``batch`` windows of ``length`` rows, uniform over all valid windows.

        Returns arrays of shape ``(batch, length, ...)`` for every field.
        """
        counts = self._window_counts(length)
        total = counts.sum()
        if total == 0:
            raise ValueError(f"no window of length {length} in the buffer yet ({self.size} rows)")
        flat = rng.integers(0, total, size=batch)
        ep = np.searchsorted(np.cumsum(counts), flat, side="right")
        offset = flat - (np.cumsum(counts) - counts)[ep]
        first = np.asarray(self._starts, np.int64)[ep] + offset
        idx = first[:, None] + np.arange(length)[None, :]
        return {k: self.data[k][idx] for k in _FIELDS}

    def state_dict(self) -> dict:
        return {"size": self.size, "starts": list(self._starts),
                **{k: self.data[k][: self.size].copy() for k in _FIELDS}}

    def load_state_dict(self, state: dict) -> None:
        self.size = 0
        self._alloc(max(int(state["size"]), 2) * 2)
        for k in _FIELDS:
            self.data[k][: state["size"]] = state[k]
        self.size = int(state["size"])
        self._starts = list(state["starts"])
