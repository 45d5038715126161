"""The task table (data) and task-id parsing.

A task id is ``DOMAIN-TASK-OBS``, e.g. ``cartpole-swingup-pos`` or ``ball_in_cup-catch-full``
(domains may contain underscores, never '-').
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Customary action repeat per (domain, task): PlaNet / CURL convention.
EPISODE_SIM_STEPS = 1000
"""Simulator steps of a dm-control suite episode (its time limit; a truncation, never a termination)."""

ACTION_REPEAT: dict[tuple[str, str], int] = {
    ("cartpole", "swingup"): 8,
    ("cartpole", "balance"): 8,
    ("reacher", "easy"): 4,
    ("cheetah", "run"): 4,
    ("finger", "spin"): 2,
    ("ball_in_cup", "catch"): 4,
    ("walker", "walk"): 2,
    ("pendulum", "swingup"): 2,
}

# Velocity-like keys of each domain's observation_spec(), removed by the ``pos`` mode.
# Checked against dm-control 1.0.50: every other key is a position, orientation, height,
# target offset or contact reading.
VELOCITY_KEYS: dict[str, tuple[str, ...]] = {
    "cartpole": ("velocity",),
    "pendulum": ("velocity",),
    "reacher": ("velocity",),
    "cheetah": ("velocity",),
    "finger": ("velocity",),
    "ball_in_cup": ("velocity",),
    "walker": ("velocity",),
}

# Camera used for pixel observations (quadruped would be 2).
CAMERA_ID: dict[str, int] = {
    "cartpole": 0,
    "pendulum": 0,
    "reacher": 0,
    "cheetah": 0,
    "finger": 0,
    "ball_in_cup": 0,
    "walker": 0,
}

OBS_MODES: tuple[str, ...] = ("full", "pos", "flicker", "noisy", "distract", "pixels")


@dataclass(frozen=True)
class TaskSpec:
    """One parsed task id; ``id`` is derived as ``f"{domain}-{task}-{obs}"``."""

    domain: str
    task: str
    obs: str
    action_repeat: int
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", f"{self.domain}-{self.task}-{self.obs}")


def domains() -> list[str]:
    """All domains in the task table, sorted."""
    return sorted({d for d, _ in ACTION_REPEAT})


def tasks_of(domain: str) -> list[str]:
    """The tasks of ``domain``, sorted."""
    return sorted(t for d, t in ACTION_REPEAT if d == domain)


def list_tasks() -> list[str]:
    """Every available task id (table entries x obs modes), sorted."""
    return sorted(f"{d}-{t}-{o}" for d, t in ACTION_REPEAT for o in OBS_MODES)


def parse_task_id(task_id: str) -> TaskSpec:
    """``'DOMAIN-TASK-OBS'`` -> TaskSpec; ValueError listing what exists if any part is unknown."""
    parts = task_id.split("-")
    if len(parts) != 3:
        raise ValueError(f"task id {task_id!r} is not of the form DOMAIN-TASK-OBS, "
                         f"e.g. 'cartpole-swingup-pos'")
    domain, task, obs = parts
    if domain not in domains():
        raise ValueError(f"unknown domain {domain!r} in {task_id!r}; domains: {domains()}")
    if task not in tasks_of(domain):
        raise ValueError(f"unknown task {task!r} of domain {domain!r} in {task_id!r}; "
                         f"tasks of {domain}: {tasks_of(domain)}")
    if obs not in OBS_MODES:
        raise ValueError(f"unknown obs mode {obs!r} in {task_id!r}; obs modes: {list(OBS_MODES)}")
    return TaskSpec(domain, task, obs, ACTION_REPEAT[(domain, task)])
