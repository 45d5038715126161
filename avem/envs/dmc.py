"""Partially observed dm-control suite tasks as gymnasium environments.

Shapes: action ``(act_dim,)`` float32 in [-1, 1] (rescaled to the dm-control bounds);
observation ``(obs_dim,)`` float32, or ``(3, pixel_size, pixel_size)`` float32 in [0, 1] for
``pixels``; ``info['state']`` ``(state_dim,)`` float32: the full observation (keys in sorted
order, scalars as length 1) with, in ``distract`` mode, the distractor values appended
(``env.distract_slice`` indexes them in the state, ``env.obs_distract_slice`` in the obs).

Obs modes: ``full``; ``pos`` (velocity-like keys removed); ``flicker`` (the whole observation
zeroed with probability ``flicker_prob`` per agent step, reset included); ``noisy`` (plus
N(0, noise_std^2)); ``distract`` (``pos`` plus ``distract_dims`` noisy phase oscillators);
``pixels`` (camera image). Flicker, noise and distractors draw from the env's own
``np_random`` Generator, the task's initial states from ``task.random`` (a RandomState).

Pixels need a headless GL: ``apt-get install libegl1 libegl-mesa0`` and ``MUJOCO_GL=egl``,
which ``avem.envs.gl`` sets automatically when EGL works (state-based modes never need GL).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from avem.envs.distractors import PhaseOscillators
from avem.envs.gl import configure_mujoco_gl
from avem.envs.tasks import CAMERA_ID, VELOCITY_KEYS, TaskSpec, parse_task_id

configure_mujoco_gl()
from dm_control import suite  # noqa: E402  (MUJOCO_GL must be set first)

OBS_NOISE_STREAM = 1
"""Second entry of the seed of ``np_random`` (``DMCEnv.reset``): a stream of its own for the observation noise."""

RENDER_SIZE = (240, 320)  # (height, width) of render() frames
MAX_SEED = 2**32  # numpy RandomState accepts seeds in [0, 2**32)


def _check_int(name: str, value: Any, low: int, high: float = np.inf) -> int:
    """``value`` as an int in [low, high), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not low <= value < high:
        raise ValueError(f"{name} must be in [{low}, {high}), got {value}")
    return int(value)


def rescale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``(act_dim,)`` in [-1, 1] (clipped first) -> ``(act_dim,)`` float64 in [low, high]."""
    return low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (high - low)


class DMCEnv(gym.Env):
    """One dm-control suite task under one obs mode (see the module docstring)."""

    def __init__(self, spec: TaskSpec, seed: int, *, flicker_prob: float = 0.2,
                 noise_std: float = 0.1, distract_dims: int = 4, pixel_size: int = 64,
                 render_mode: str | None = None):
        self._seed = _check_int("seed", seed, 0, MAX_SEED)
        _check_int("action_repeat", spec.action_repeat, 1)
        if not 0.0 <= flicker_prob <= 1.0:
            raise ValueError(f"flicker_prob must be a probability in [0, 1], got {flicker_prob}")
        if not 0.0 <= noise_std < np.inf:
            raise ValueError(f"noise_std must be finite and >= 0, got {noise_std}")
        _check_int("distract_dims", distract_dims, 1)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task_spec = spec
        self.flicker_prob, self.noise_std = float(flicker_prob), float(noise_std)
        self.render_mode = render_mode
        self._dmc = suite.load(spec.domain, spec.task, task_kwargs={"random": self._seed})
        offscreen = self._dmc.physics.model.vis.global_
        self.pixel_size = _check_int("pixel_size", pixel_size, 1,
                                     min(offscreen.offwidth, offscreen.offheight) + 1)
        self._camera = CAMERA_ID[spec.domain]
        self.metadata = {"render_modes": ["rgb_array"],
                         "render_fps": 1.0 / (self._dmc.control_timestep() * spec.action_repeat)}

        obs_spec = self._dmc.observation_spec()
        self._keys = sorted(obs_spec)
        sizes = [int(np.prod(obs_spec[k].shape)) for k in self._keys]
        starts = np.cumsum([0] + sizes)
        self._pos_index = np.concatenate([
            np.arange(starts[i], starts[i + 1]) for i, k in enumerate(self._keys)
            if k not in VELOCITY_KEYS[spec.domain]])
        full_dim = int(starts[-1])

        self._distract = PhaseOscillators(distract_dims) if spec.obs == "distract" else None
        self.distract_slice = self.obs_distract_slice = None
        if self._distract is not None:
            self.distract_slice = slice(full_dim, full_dim + distract_dims)
            self.obs_distract_slice = slice(len(self._pos_index), len(self._pos_index) + distract_dims)

        act = self._dmc.action_spec()
        self._act_low = np.broadcast_to(act.minimum, act.shape).astype(np.float64)
        self._act_high = np.broadcast_to(act.maximum, act.shape).astype(np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, act.shape, np.float32)
        if spec.obs == "pixels":
            shape = (3, self.pixel_size, self.pixel_size)
            self.observation_space = gym.spaces.Box(0.0, 1.0, shape, np.float32)
        else:
            pos_dim = len(self._pos_index)
            dim = {"pos": pos_dim, "distract": pos_dim + distract_dims}.get(spec.obs, full_dim)
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self._seeded = False
        self._needs_reset = True

    def _observe(self, observation: dict) -> tuple[np.ndarray, np.ndarray]:
        """dm-control observation dict -> (agent obs, info state), drawing flicker/noise."""
        state = np.concatenate([np.asarray(observation[k], np.float64).ravel()
                                for k in self._keys]).astype(np.float32)
        mode = self.task_spec.obs
        if mode == "pixels":
            frame = self._dmc.physics.render(self.pixel_size, self.pixel_size, camera_id=self._camera)
            obs = frame.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
        elif mode == "pos":
            obs = state[self._pos_index]
        elif mode == "flicker":
            flicker = self.np_random.random() < self.flicker_prob
            obs = np.zeros_like(state) if flicker else state.copy()
        elif mode == "noisy":
            noise = self.np_random.normal(0.0, self.noise_std, state.shape)
            obs = (state + noise).astype(np.float32)
        elif mode == "distract":
            values = self._distract.values()
            obs = np.concatenate([state[self._pos_index], values])
            state = np.concatenate([state, values])
        else:
            obs = state.copy()
        return obs, state

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode -> ``(obs, {'state', 'sim_steps': 0})``.

        ``seed`` reseeds both ``task.random`` and ``np_random``; without it the streams continue,
        except that the first reset uses the constructor seed. ``np_random`` (flicker, sensor noise,
        distractors) is seeded from ``[seed, OBS_NOISE_STREAM]``, not ``seed`` alone: an agent seeded with the
        run's seed (``numpy.random.default_rng(seed)``, e.g. its replay sampling) would otherwise draw the
        very same numbers.
        """
        if seed is None and not self._seeded:
            seed = self._seed
        if seed is not None:
            seed = _check_int("seed", seed, 0, MAX_SEED)
            super().reset(seed=seed)
            self.np_random = np.random.default_rng([seed, OBS_NOISE_STREAM])
            self._dmc.task.random.seed(seed)
            self._seeded = True
        time_step = self._dmc.reset()
        if self._distract is not None:
            self._distract.reset(self.np_random)
        self._needs_reset = False
        obs, state = self._observe(time_step.observation)
        return obs, {"state": state, "sim_steps": 0}

    def step(self, action):
        """Repeat ``action`` up to ``action_repeat`` sim steps -> ``(obs, reward, terminated,
        truncated, info)``; the 1000-step time limit is a truncation."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step(), and again after an episode ends")
        action = np.asarray(action, np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action shape {action.shape} != {self.action_space.shape}")
        scaled = rescale_action(action, self._act_low, self._act_high)
        reward, sim_steps = 0.0, 0
        for _ in range(self.task_spec.action_repeat):
            time_step = self._dmc.step(scaled)
            reward += time_step.reward or 0.0
            sim_steps += 1
            if time_step.last():
                break
        if self._distract is not None:
            self._distract.step(self.np_random)
        obs, state = self._observe(time_step.observation)
        terminated = bool(time_step.last() and time_step.discount == 0)
        truncated = bool(time_step.last() and not terminated)
        self._needs_reset = time_step.last()
        return obs, float(reward), terminated, truncated, {"state": state, "sim_steps": sim_steps}

    def render(self) -> np.ndarray | None:
        """``(240, 320, 3)`` uint8 frame when ``render_mode == 'rgb_array'``, else None."""
        if self.render_mode != "rgb_array":
            return None
        return self._dmc.physics.render(*RENDER_SIZE, camera_id=self._camera)

    def get_rng_state(self) -> dict:
        """Picklable RNG state: ``task`` (RandomState), ``np_random`` (Generator), ``distract``."""
        return {"task": self._dmc.task.random.get_state(),
                "np_random": self.np_random.bit_generator.state,
                "distract": None if self._distract is None else self._distract.get_state()}

    def set_rng_state(self, state: dict) -> None:
        """Restore ``get_rng_state()``; the next ``reset()`` without seed continues from it."""
        self._dmc.task.random.set_state(state["task"])
        self.np_random.bit_generator.state = state["np_random"]
        if self._distract is not None:
            self._distract.set_state(state["distract"])
        self._seeded = True


def make_env(task_id: str, seed: int, *, action_repeat: int | None = None,
             flicker_prob: float = 0.2, noise_std: float = 0.1, distract_dims: int = 4,
             pixel_size: int = 64, render_mode: str | None = None) -> DMCEnv:
    """Build the env for ``task_id``; ``action_repeat=None`` uses the task table's value."""
    spec = parse_task_id(task_id)
    if action_repeat is not None:
        spec = dataclasses.replace(spec, action_repeat=_check_int("action_repeat", action_repeat, 1))
    return DMCEnv(spec, seed, flicker_prob=flicker_prob, noise_std=noise_std,
                  distract_dims=distract_dims, pixel_size=pixel_size, render_mode=render_mode)
