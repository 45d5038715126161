"""Episode-aware replay buffer storing rows in the Dreamer convention.

Row ``t`` of an episode holds ``obs_t``, the action that LED to it (``a_{t-1}``, zeros on the
first row), the reward that came WITH it (``r_t``, 0 on the first row), ``is_first`` and
``is_terminal``. An episode of T agent steps is T+1 rows. ``sample`` returns windows that lie
inside one episode, so sequence models and frame-stacking agents read the same data as SAC.

Per-step extras: ``add(..., extras={"name": array})`` stores agent data beside the transition (the
row of the action it belongs to, e.g. the planned ``q(a_t)`` with ``a_t``). A name's column is
created when it first appears; rows without it hold NaN (first rows, random warm-up steps).
``sample`` returns the extras' windows with the fixed fields.

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
            for k in old:
                if k not in new:  # an extra
                    new[k] = np.full((n, *old[k].shape[1:]), np.nan, np.float32)
                new[k][: self.size] = old[k][: self.size]
        self.data = new

    def _add_extra(self, name: str, shape: tuple[int, ...]) -> None:
        self.data[name] = np.full((len(self.data["obs"]), *shape), np.nan, np.float32)

    def add(self, obs, prev_action, reward: float, is_first: bool, is_terminal: bool,
            extras: dict[str, np.ndarray] | None = None) -> None:
        """Append one row. ``is_first=True`` starts a new episode (``prev_action``/``reward``/``extras`` ignored).

        ``extras``: per-step agent data stored in this row as float32 (see the module docstring)."""
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
        for name, value in (extras or {}).items() if not is_first else ():
            value = np.asarray(value, np.float32)
            if name in _FIELDS:
                raise ValueError(f"extra {name!r} would overwrite a replay field ({', '.join(_FIELDS)})")
            if name not in d:
                self._add_extra(name, value.shape)
            d[name][i] = value
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
        return {k: v[idx] for k, v in self.data.items()}

    def extras(self) -> list[str]:
        """The names of the per-step extras stored so far."""
        return [k for k in self.data if k not in _FIELDS]

    def state_dict(self) -> dict:
        return {"size": self.size, "starts": list(self._starts),
                **{k: self.data[k][: self.size].copy() for k in _FIELDS},
                "extras": {k: self.data[k][: self.size].copy() for k in self.extras()}}

    def load_state_dict(self, state: dict) -> None:
        self.size = 0
        self.data = None
        self._alloc(max(int(state["size"]), 2) * 2)
        for name, value in state.get("extras", {}).items():
            self._add_extra(name, value.shape[1:])
            self.data[name][: state["size"]] = value
        for k in _FIELDS:
            self.data[k][: state["size"]] = state[k]
        self.size = int(state["size"])
        self._starts = list(state["starts"])
